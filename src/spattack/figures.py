"""Figures 3 and 5 of the paper from the cells' outputs (tidy data first, then plots)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .analysis.plots import NAMES, save_figure  # noqa: E402
from .evaluation import random_ranking_metrics  # noqa: E402
from .runio import read_metrics, read_summary  # noqa: E402
from .tables import ATTACK_LABELS, METRIC_LABELS, collect_final_metrics  # noqa: E402

DEFENSE_LABELS = {"mean": "Mean", "median": "Median", "trimmed_mean": "TrimM", "krum": "Krum", "norm": "Norm"}
DEFENSE_ORDER = list(DEFENSE_LABELS)


def fig3_data(summary_paths: list[str | Path]) -> pd.DataFrame:
    """Tidy final metrics per (dataset, attack, defense, ratio, metric), mean over seeds;
    the clean runs are kept with attack `none`."""
    df = collect_final_metrics(summary_paths)
    return df[["dataset", "attack", "defense", "ratio", "metric", "ours", "std", "seeds", "status"]]


def plot_fig3(df: pd.DataFrame, metric: str = "hr10", n_negatives: int = 99) -> plt.Figure:
    """One panel per (dataset, Spattack variant): x = malicious %, one line per defense,
    y = the final `metric`; the clean run under Mean is the dashed line, an untrained
    model the dotted one. Bands are +-1 std over seeds when there are several."""
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.1)
    attacks = [a for a in ATTACK_LABELS if a.startswith("spattack") and a in set(df.attack)]
    datasets = [d for d in NAMES if d in set(df.dataset)]
    fig, axes = plt.subplots(len(datasets), len(attacks), figsize=(3.4 * len(attacks), 2.9 * len(datasets)),
                             squeeze=False, sharey="row")
    palette = dict(zip(DEFENSE_ORDER, sns.color_palette("colorblind", len(DEFENSE_ORDER))))
    random_level = random_ranking_metrics(n_negatives)[metric]
    for r, ds in enumerate(datasets):
        part = df[(df.dataset == ds) & (df.metric == metric)]
        clean = part[(part.attack == "none") & (part.defense == "mean")].ours
        for c, attack in enumerate(attacks):
            ax = axes[r][c]
            cells = part[part.attack == attack]
            for defense in [d for d in DEFENSE_ORDER if d in set(cells.defense)]:
                line = cells[cells.defense == defense].sort_values("ratio")
                ax.plot(line.ratio, line.ours, marker="o", color=palette[defense], label=DEFENSE_LABELS[defense])
                if (line.seeds > 1).any():
                    ax.fill_between(line.ratio, line.ours - line["std"], line.ours + line["std"],
                                    color=palette[defense], alpha=0.2)
            if len(clean):
                ax.axhline(clean.iloc[0], color="0.3", ls="--", lw=1, label="Clean (Mean)")
            ax.axhline(random_level, color="0.6", ls=":", lw=1, label="untrained")
            ax.set_title(f"{NAMES[ds]} · {ATTACK_LABELS[attack]}")
            ax.set_xlabel("malicious clients ρ (%)")
            ax.set_xticks(sorted(cells.ratio.unique()))
            if c == 0:
                ax.set_ylabel(METRIC_LABELS[metric])
    handles, labels = {}, {}
    for ax in fig.axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), frameon=False,
               bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def fig5_data(metrics_paths: list[str | Path]) -> pd.DataFrame:
    """Per-epoch metrics of every cell with its attack and start epoch, mean over seeds."""
    frames = []
    for path in metrics_paths:
        s = read_summary(Path(path).with_name("summary.json"))
        m = read_metrics(path)
        c = s["config"]
        frames.append(m.assign(dataset=s["dataset"], attack=c["attack"], start=c["start"], seed=c["seed"]))
    df = pd.concat(frames, ignore_index=True)
    keys = ["dataset", "attack", "start", "epoch"]
    return df.groupby(keys).agg(hr10=("hr10", "mean"), ndcg10=("ndcg10", "mean"),
                                hr10_std=("hr10", "std"), seeds=("seed", "nunique")).reset_index()


def plot_fig5(df: pd.DataFrame, metric: str = "hr10") -> plt.Figure:
    """HR@10 vs epoch, one panel per attack, one line per start epoch, clean as reference."""
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.1)
    attacks = [a for a in df.attack.unique() if a != "none"]
    fig, axes = plt.subplots(1, len(attacks), figsize=(4.6 * len(attacks), 3.6), squeeze=False, sharey=True)
    clean = df[df.attack == "none"]
    starts = sorted(df[df.attack != "none"].start.unique())
    palette = dict(zip(starts, sns.color_palette("viridis", len(starts))))
    for ax, attack in zip(axes[0], attacks):
        if len(clean):
            ax.plot(clean.epoch, clean[metric], color="0.3", ls="--", lw=1.2, label="Clean")
        for start in starts:
            run = df[(df.attack == attack) & (df.start == start)]
            ax.plot(run.epoch, run[metric], color=palette[start], lw=1.2, label=f"start {start}")
        ds = df.dataset.iloc[0]
        ax.set_title(f"{NAMES.get(ds, ds)} · {ATTACK_LABELS.get(attack, attack)}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(METRIC_LABELS[metric])
    axes[0][-1].legend(frameon=False)
    fig.tight_layout()
    return fig


__all__ = ["fig3_data", "plot_fig3", "fig5_data", "plot_fig5", "save_figure"]
