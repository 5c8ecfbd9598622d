"""Tables: Table 2 and Table 3 of the paper next to its numbers, built from the results
(data collection first), and the CSV/Markdown/LaTeX writing they share."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..attacks import ATTACKS
from ..evaluation import METRICS
from ..paperdata import paper_table
from ..provenance import NOT_RECORDED, Runs
from ..registry import label
from ..runio import atomic_write_text, read_summary

METRIC_LABELS = {"hr5": "HR@5", "ndcg5": "nDCG@5", "hr10": "HR@10", "ndcg10": "nDCG@10"}
# Table 3's setting in the paper, beyond the training protocol every cell shares
TABLE3_PROTOCOL = {"model": "fedmf", "defense": "mean", "ratio": 3}
# What each row's numbers come from, over its seeds: distinct values joined by "; "
PROVENANCE_COLUMNS = ["epochs", "device", "code_version"]


def collect_final_metrics(summary_paths: list[str | Path]) -> pd.DataFrame:
    """One row per (dataset, model, attack, defense, ratio, start, metric): the final-epoch
    value averaged over seeds, with its std, the number of seeds, the runs' status and
    `PROVENANCE_COLUMNS` (the epochs, device and code version the summaries record, their
    distinct values joined by '; ', 'not recorded' where a summary lacks one)."""
    rows = []
    for path in summary_paths:
        s = read_summary(path)
        c = s["config"]
        made = {"epochs": c.get("epochs"), "device": s.get("device"), "code_version": s.get("code_version")}
        for m in METRICS:
            rows.append({"dataset": s["dataset"], "model": c["model"], "attack": c["attack"],
                         "defense": c["defense"], "ratio": c["ratio"], "start": c["start"],
                         "seed": c["seed"], "metric": m, "value": s["final"][m], "status": s["status"], **made})
    df = pd.DataFrame(rows)
    keys = ["dataset", "model", "attack", "defense", "ratio", "start", "metric"]
    return df.groupby(keys, sort=False).agg(
        ours=("value", "mean"), std=("value", "std"), seeds=("seed", "nunique"),
        status=("status", lambda s: "diverged" if (s == "diverged").any() else "ok"),
        **{col: (col, join_distinct) for col in PROVENANCE_COLUMNS}).reset_index()


def join_distinct(values: pd.Series) -> str:
    """The distinct values, as text, sorted and joined by '; ' ('not recorded' for None or NaN)."""
    return "; ".join(sorted({NOT_RECORDED if v is None or v != v else str(v) for v in values}))


def drop_pct(df: pd.DataFrame, keys: list[str]) -> np.ndarray:
    """Each row's `ours` against the clean row (attack 'none') with the same `keys`, in
    percent: 100 * (ours - clean) / clean, negative = worse; NaN where `keys` have no
    clean row. ValueError ('duplicate labels') when two clean rows share the `keys`."""
    clean = df[df.attack == "none"].set_index(keys)["ours"]
    rows = list(zip(*(df[k] for k in keys))) if len(keys) > 1 else list(df[keys[0]])
    base = clean.reindex(rows).to_numpy()
    return 100 * (df["ours"].to_numpy() - base) / base


def runs_of(summary_paths: list[str | Path], protocol: dict | None = None) -> Runs:
    """`provenance.Runs` of the cells whose summary.json files are given."""
    return Runs.from_summaries((read_summary(p) for p in summary_paths), protocol)


def table3(summary_paths: list[str | Path], datasets: list[str], attacks: list[str],
           missing_reason: str = "not run here") -> pd.DataFrame:
    """Tidy Table 3: dataset, attack, metric, ours, paper, diff, drop_pct, paper_drop_pct,
    std, seeds, note and `PROVENANCE_COLUMNS`.

    drop_pct is the change against our Clean run in percent (negative = worse). Datasets
    asked for but not run keep their paper values with `note` saying why; attacks the
    paper does not have get rows with an empty `paper`, except the other readings of its
    baselines (`AttackSpec.paper_baseline`), which are compared with the baseline they read."""
    keys = ["dataset", "attack", "metric"]
    measured = ["ours", "std", "seeds", "status", *PROVENANCE_COLUMNS]
    ours = collect_final_metrics(summary_paths) if summary_paths else pd.DataFrame(columns=keys + measured)
    ours = ours[keys + measured]
    grid = pd.DataFrame([(d, a, m) for d in datasets for m in METRICS for a in attacks], columns=keys)
    paper = paper_table("table3").rename(columns={"attack": "paper_attack"})
    grid["paper_attack"] = grid.attack.map(lambda a: getattr(ATTACKS.get(a), "paper_baseline", None) or a)
    df = grid.merge(paper, on=["dataset", "paper_attack", "metric"], how="left").merge(ours, on=keys, how="left")
    df["diff"] = df["ours"] - df["paper"]
    df["drop_pct"] = drop_pct(df, ["dataset", "metric"])
    df["note"] = df["ours"].isna().map({True: missing_reason, False: ""})
    df.loc[df.status == "diverged", "note"] = "diverged"
    df["seeds"] = df["seeds"].astype("Int64")
    cols = ["dataset", "attack", "metric", "ours", "paper", "diff", "drop_pct", "paper_drop_pct",
            "std", "seeds", "note", *PROVENANCE_COLUMNS]
    return df[cols]


def table3_markdown(df: pd.DataFrame, runs: Runs | None = None) -> str:
    """One block per dataset: rows = metrics, columns = attacks, 'ours (paper)' cells,
    under `runs.header()` (what the numbers come from, and where that is not the paper's
    protocol) when `runs` is given."""
    out = [runs.header(), ""] if runs is not None else []
    for ds, part in df.groupby("dataset", sort=False):
        attacks = list(dict.fromkeys(part.attack))
        out.append(f"**{label(ds)}**\n")
        missing = part.ours.isna().all()
        if missing:
            out.append(f"{part.note.iloc[0]}; the paper's values:\n")
        out.append("| metric | " + " | ".join(label(a) for a in attacks) + " |")
        out.append("|---" * (len(attacks) + 1) + "|")
        for m, rows in part.groupby("metric", sort=False):
            cells = []
            for a in attacks:
                r = rows[rows.attack == a].iloc[0]
                paper = "(–)" if pd.isna(r.paper) else f"({r.paper:.4f})"
                if pd.isna(r.ours):
                    cells.append(paper if missing else f"{r.note} {paper}")
                else:
                    drop = "" if a == "none" else f" {r.drop_pct:+.0f}%"
                    flag = " diverged" if r.note == "diverged" else ""
                    spread = f" ± {r['std']:.4f}" if r.seeds > 1 else ""
                    cells.append(f"{r.ours:.4f}{spread}{drop}{flag} {paper}")
            out.append(f"| {METRIC_LABELS[m]} | " + " | ".join(cells) + " |")
        out.append("")
    out.append("Cells: ours (± std over seeds when there are several), % change against our Clean, "
               "(paper). Final epoch, mean over seeds.")
    return "\n".join(out) + "\n"


def table3_latex(df: pd.DataFrame, runs: Runs | None = None) -> str:
    """The same table as LaTeX (booktabs). With `runs`, comment lines above it say what the
    numbers come from, and a first header row says where that is not the paper's protocol."""
    attacks = list(dict.fromkeys(df.attack))
    lines = [f"% {runs.sentence()}", f"% {runs.protocol_note()}"] if runs is not None else []
    lines += [r"\begin{tabular}{ll" + "r" * len(attacks) + "}", r"\toprule"]
    if runs is not None and runs.departures:
        lines.append(rf"\multicolumn{{{len(attacks) + 2}}}{{l}}{{\emph{{{_latex(runs.protocol_note())}}}}} \\")
    lines += ["Dataset & Metric & " + " & ".join(label(a) for a in attacks) + r" \\", r"\midrule"]
    for ds, part in df.groupby("dataset", sort=False):
        for i, (m, rows) in enumerate(part.groupby("metric", sort=False)):
            vals = []
            for a in attacks:
                r = rows[rows.attack == a]
                vals.append("--" if r.empty or pd.isna(r.iloc[0].ours) else f"{r.iloc[0].ours:.4f}")
            name = label(ds) if i == 0 else ""
            lines.append(f"{name} & {METRIC_LABELS[m]} & " + " & ".join(vals) + r" \\")
        lines.append(r"\midrule")
    lines[-1] = r"\bottomrule"
    lines.append(r"\end{tabular}")
    return "\n".join(lines) + "\n"


def _latex(text: str) -> str:
    """`text` (no backslashes) with LaTeX's other special characters escaped."""
    for char in "&%$#_{}":
        text = text.replace(char, "\\" + char)
    return text.replace("~", r"\textasciitilde{}").replace("^", r"\textasciicircum{}")


# ---- writing small tables as CSV and GitHub-flavoured Markdown ----

Formats = dict[str, str | Callable[[object], str]]


def _cell(value, fmt=None) -> str:
    """Text of one Markdown cell: thousands separators, 4 significant digits, '' for NA.

    `fmt` (a format string such as '{:.2f}' or a callable) overrides the default."""
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if fmt is not None:
        return fmt(value) if callable(fmt) else fmt.format(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    return str(value)


def markdown_table(df: pd.DataFrame, title: str | None = None, note: str | None = None,
                   formats: Formats | None = None, source: str | None = None) -> str:
    """`df` as a Markdown table with optional title, `source` (what the numbers come from,
    right under the title), note (under the table) and per-column `formats`."""
    formats = formats or {}
    header = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "|".join("---:" if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
                          else "---" for c in df.columns) + "|"
    rows = ["| " + " | ".join(_cell(v, formats.get(c)) for c, v in zip(df.columns, row)) + " |"
            for row in df.itertuples(index=False)]
    parts = ([f"## {title}", ""] if title else []) + ([source, ""] if source else []) + [header, rule, *rows]
    if note:
        parts += ["", note]
    return "\n".join(parts) + "\n"


def write_table(df: pd.DataFrame, csv_path: str | Path | None, md_path: str | Path | None = None,
                title: str | None = None, note: str | None = None, formats: Formats | None = None,
                md_columns: list[str] | None = None, source: str | None = None) -> None:
    """Write `df` to `csv_path` (all columns) and/or `md_path` (Markdown, `md_columns` only
    if given, `formats` per column, `source` under the title), each atomically; None skips
    a file."""
    if csv_path is not None:
        atomic_write_text(csv_path, df.to_csv(index=False))
    if md_path is not None:
        atomic_write_text(md_path, markdown_table(df[md_columns] if md_columns else df, title, note, formats, source))
