"""Tables of the paper built from the cells' summaries, next to the paper's numbers."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

from .evaluation import METRICS
from .runio import read_summary

DATASET_LABELS = {"ml-100k": "ML-100K", "ml-1m": "ML-1M", "steam": "Steam"}
ATTACK_LABELS = {
    "none": "Clean", "labelflip": "LabelFlip", "fedattack": "FedAttack", "gaussian": "Gaussian",
    "lie": "LIE", "cluster": "Cluster", "fang": "Fang", "spattack-l-s": "Spattack L-S",
    "spattack-l-d": "Spattack L-D", "spattack-o-s": "Spattack O-S", "spattack-o-d": "Spattack O-D",
    "labelflip-dense": "LabelFlip (dense rows)", "fedattack-dense": "FedAttack (dense rows)",
    "fang-full": "Fang (exact extremes)",
}
# Other readings of the paper's baselines (docs/reproduction): compared with the paper's
# number for the baseline they read.
PAPER_ATTACK = {"labelflip-dense": "labelflip", "fedattack-dense": "fedattack", "fang-full": "fang"}
METRIC_LABELS = {"hr5": "HR@5", "ndcg5": "nDCG@5", "hr10": "HR@10", "ndcg10": "nDCG@10"}


def paper_values(name: str) -> pd.DataFrame:
    """A table transcribed from the paper (`table2`, `table3`), shipped with the package."""
    with resources.files("spattack.paperdata").joinpath(f"{name}.csv").open() as f:
        return pd.read_csv(f)


def collect_final_metrics(summary_paths: list[str | Path]) -> pd.DataFrame:
    """One row per (dataset, attack, defense, ratio, start, metric): the final-epoch value
    averaged over seeds, with its std, the number of seeds and the runs' status."""
    rows = []
    for path in summary_paths:
        s = read_summary(path)
        c = s["config"]
        for m in METRICS:
            rows.append({"dataset": s["dataset"], "model": c["model"], "attack": c["attack"],
                         "defense": c["defense"], "ratio": c["ratio"], "start": c["start"],
                         "seed": c["seed"], "metric": m, "value": s["final"][m], "status": s["status"]})
    df = pd.DataFrame(rows)
    keys = ["dataset", "model", "attack", "defense", "ratio", "start", "metric"]
    return df.groupby(keys, sort=False).agg(
        ours=("value", "mean"), std=("value", "std"), seeds=("seed", "nunique"),
        status=("status", lambda s: "diverged" if (s == "diverged").any() else "ok")).reset_index()


def table3(summary_paths: list[str | Path], datasets: list[str], attacks: list[str],
           missing_reason: str = "not run here") -> pd.DataFrame:
    """Tidy Table 3: dataset, attack, metric, ours, paper, diff, drop_pct, paper_drop_pct.

    drop_pct is the change against our Clean run in percent (negative = worse). Datasets
    asked for but not run keep their paper values with `note` saying why; attacks the
    paper does not have get rows with an empty `paper`, except the other readings of its
    baselines (`PAPER_ATTACK`), which are compared with the baseline they read."""
    keys = ["dataset", "attack", "metric"]
    ours = collect_final_metrics(summary_paths) if summary_paths else pd.DataFrame(
        columns=keys + ["ours", "std", "seeds", "status"])
    ours = ours[keys + ["ours", "std", "seeds", "status"]]
    grid = pd.DataFrame([(d, a, m) for d in datasets for m in METRICS for a in attacks], columns=keys)
    paper = paper_values("table3").rename(columns={"attack": "paper_attack"})
    grid["paper_attack"] = grid.attack.map(lambda a: PAPER_ATTACK.get(a, a))
    df = grid.merge(paper, on=["dataset", "paper_attack", "metric"], how="left").merge(ours, on=keys, how="left")
    clean = df[df.attack == "none"].set_index(["dataset", "metric"])["ours"]
    df["diff"] = df["ours"] - df["paper"]
    base = clean.reindex(list(zip(df.dataset, df.metric))).to_numpy()
    df["drop_pct"] = 100 * (df["ours"].to_numpy() - base) / base
    df["note"] = df["ours"].isna().map({True: missing_reason, False: ""})
    df.loc[df.status == "diverged", "note"] = "diverged"
    df["seeds"] = df["seeds"].astype("Int64")
    cols = ["dataset", "attack", "metric", "ours", "paper", "diff", "drop_pct", "paper_drop_pct",
            "std", "seeds", "note"]
    return df[cols]


def table3_markdown(df: pd.DataFrame) -> str:
    """One block per dataset: rows = metrics, columns = attacks, 'ours (paper)' cells."""
    out = []
    for ds, part in df.groupby("dataset", sort=False):
        attacks = list(dict.fromkeys(part.attack))
        out.append(f"**{DATASET_LABELS.get(ds, ds)}**\n")
        missing = part.ours.isna().all()
        if missing:
            out.append(f"{part.note.iloc[0]}; the paper's values:\n")
        out.append("| metric | " + " | ".join(ATTACK_LABELS.get(a, a) for a in attacks) + " |")
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


def table3_latex(df: pd.DataFrame) -> str:
    """The same table as LaTeX (booktabs)."""
    attacks = list(dict.fromkeys(df.attack))
    lines = [r"\begin{tabular}{ll" + "r" * len(attacks) + "}", r"\toprule",
             "Dataset & Metric & " + " & ".join(ATTACK_LABELS.get(a, a) for a in attacks) + r" \\", r"\midrule"]
    for ds, part in df.groupby("dataset", sort=False):
        for i, (m, rows) in enumerate(part.groupby("metric", sort=False)):
            vals = []
            for a in attacks:
                r = rows[rows.attack == a]
                vals.append("--" if r.empty or pd.isna(r.iloc[0].ours) else f"{r.iloc[0].ours:.4f}")
            label = DATASET_LABELS.get(ds, ds) if i == 0 else ""
            lines.append(f"{label} & {METRIC_LABELS[m]} & " + " & ".join(vals) + r" \\")
        lines.append(r"\midrule")
    lines[-1] = r"\bottomrule"
    lines.append(r"\end{tabular}")
    return "\n".join(lines) + "\n"
