"""The defense benchmark (beyond the paper): every aggregator against every attack at one
ratio, final HR@10 relative to the clean run under the same aggregator (tidy data first,
then one heatmap per dataset)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..registry import label, ordered
from .figures import add_note, plt, sns
from .tables import PROVENANCE_COLUMNS, collect_final_metrics


def defense_benchmark(summary_paths: list[str | Path]) -> pd.DataFrame:
    """One row per (dataset, defense, attack): final HR@10 and nDCG@10 as mean and std over
    the seeds, the number of seeds, the clean HR@10 of the same defense, and
    `hr10_rel` = mean HR@10 / mean clean HR@10 of that defense (NaN without a clean run);
    registry order of datasets, defenses and attacks."""
    df = collect_final_metrics(summary_paths)
    keys = ["dataset", "model", "defense", "attack", "ratio"]
    hr = df[df.metric == "hr10"].rename(columns={"ours": "hr10_mean", "std": "hr10_std"})
    ndcg = df[df.metric == "ndcg10"].rename(columns={"ours": "ndcg10_mean", "std": "ndcg10_std"})
    wide = hr.merge(ndcg[[*keys, "ndcg10_mean", "ndcg10_std"]], on=keys, how="left")
    clean = wide[wide.attack == "none"].set_index(["dataset", "defense"])["hr10_mean"]
    wide["clean_hr10"] = clean.reindex(list(zip(wide.dataset, wide.defense))).to_numpy()
    wide["hr10_rel"] = wide.hr10_mean / wide.clean_hr10
    rank = {kind: {n: i for i, n in enumerate(ordered(kind, wide[kind]))} for kind in ("dataset", "defense", "attack")}
    wide = wide.sort_values(["dataset", "defense", "attack"], key=lambda s: s.map(rank[s.name]), kind="stable")
    cols = ["dataset", "model", "defense", "attack", "ratio", "seeds", "hr10_mean", "hr10_std", "ndcg10_mean",
            "ndcg10_std", "clean_hr10", "hr10_rel", "status", *PROVENANCE_COLUMNS]
    return wide[cols].reset_index(drop=True)


def plot_defense_heatmap(df: pd.DataFrame, dataset: str, note: str | None = None) -> plt.Figure:
    """Rows: defenses; columns: the clean run (its HR@10, a grey column of its own), then
    every attack by its short label (final HR@10 / clean HR@10 of that defense, annotated;
    blank where the defense refuses the attack or the cell was not run, and the title then
    says so). `note` goes under the figure."""
    part = df[df.dataset == dataset]
    defenses = ordered("defense", part.defense)
    attacks = [a for a in ordered("attack", part.attack) if a != "none"]
    rel = part.pivot_table(index="defense", columns="attack", values="hr10_rel").reindex(index=defenses,
                                                                                        columns=attacks)
    clean = part[part.attack == "none"].set_index("defense")["hr10_mean"].reindex(defenses)
    sns.set_theme(style="white", context="paper", font_scale=1.0)
    height = 0.6 + 0.42 * len(defenses)
    fig, (left, right) = plt.subplots(1, 2, figsize=(1.6 + 0.62 * (len(attacks) + 1), height + 1.0),
                                      gridspec_kw={"width_ratios": [1.3, max(len(attacks), 1)], "wspace": 0.04})
    fig.subplots_adjust(bottom=1.0 / (height + 1.0), top=1 - 0.5 / (height + 1.0))
    sns.heatmap(clean.to_frame("Clean\nHR@10"), ax=left, annot=True, fmt=".3f", cmap="Greys", vmin=0, vmax=2,
                cbar=False, annot_kws={"fontsize": 7})
    left.set_yticklabels([label(d) for d in defenses], rotation=0)
    left.set_ylabel("")
    sns.heatmap(rel, ax=right, annot=True, fmt=".2f", cmap="RdYlGn", vmin=0, vmax=1.1, mask=rel.isna(),
                cbar_kws={"label": "final HR@10 / clean HR@10\n(same defense)"}, annot_kws={"fontsize": 7},
                linewidths=0.3, linecolor="white")
    right.set_xticklabels([label(a, short=True) for a in attacks], rotation=45, ha="right")
    right.set_yticks([])
    right.set_ylabel("")
    right.set_xlabel("")
    seeds = sorted(set(part.seeds))
    ratio = part[part.attack != "none"].ratio
    rho = f"ρ = {ratio.iloc[0]:g}%" if len(ratio) else ""
    blank = " · blank: refused or not run" if rel.isna().to_numpy().any() else ""
    fig.suptitle(f"{label(dataset)} · {label(part.model.iloc[0])} · {rho} · "
                 f"seeds per cell: {', '.join(map(str, seeds))}{blank}", fontsize=9)
    add_note(fig, note)
    return fig


__all__ = ["defense_benchmark", "plot_defense_heatmap"]
