"""Figures: Fig. 2(c) (item degrees, head vs tail, fitted power law), the Prop. 2 plot,
and Figs. 3, 4 and 5 from the cells' outputs (tidy data first, then plots); saved
atomically with a note of what the runs were."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from ..analysis.degrees import PowerLawFit  # noqa: E402
from ..evaluation import random_ranking_metrics  # noqa: E402
from ..registry import label, ordered  # noqa: E402
from ..runio import atomic_path, read_metrics, read_summary  # noqa: E402
from .tables import METRIC_LABELS, PROVENANCE_COLUMNS, collect_final_metrics, drop_pct, join_distinct  # noqa: E402

TAIL_COLOR, HEAD_COLOR, FIT_COLOR = "#d62728", "#2ca02c", "#1f1f1f"


def save_figure(fig: plt.Figure, *paths: str | Path) -> None:
    """Save `fig` to every path (format from the suffix) through `runio.atomic_path`, then
    close it. Raises what `savefig` raises (ValueError for an unknown suffix) and OSError
    as `atomic_path` does; the file being written is then left as it was."""
    for path in paths:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=200, bbox_inches="tight")
    plt.close(fig)


def add_note(fig: plt.Figure, note: str | None) -> None:
    """Print `note` (what the figure was computed from) under the figure, wrapped to its
    width; in red when it says the data depart from the paper's protocol. None: nothing."""
    if not note:
        return
    text = note.replace("**", "")
    fig.text(0.5, -0.04, textwrap.fill(text, int(16 * fig.get_figwidth())), ha="center", va="top", fontsize=7,
             color="#b00000" if "Not the paper's protocol" in text else "0.3")


def _panels(n: int, width: float = 4.6, height: float = 3.8):
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    return fig, axes[0]


def plot_degree_distribution(degrees: dict[str, np.ndarray], fits: dict[str, PowerLawFit],
                             head_degree: int, note: str | None = None) -> plt.Figure:
    """Fig. 2(c): share of items with each degree (log-log), tail (< head_degree) in red,
    head in green, the fitted C x^-beta (solid from xmin on, dotted below), tail share
    annotated; `note` (see `add_note`) under it."""
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.95):
        fig, axes = _panels(len(degrees))
        for ax, (ds, deg) in zip(axes, degrees.items()):
            deg = np.asarray(deg)
            values, counts = np.unique(deg[deg > 0], return_counts=True)
            share = counts / len(deg)
            tail = values < head_degree
            lo, hi = 0.8, max(values.max() * 1.25, head_degree * 1.5)
            ax.axvspan(lo, head_degree, color=TAIL_COLOR, alpha=0.08, lw=0)
            ax.axvspan(head_degree, hi, color=HEAD_COLOR, alpha=0.10, lw=0)
            ax.scatter(values[tail], share[tail], s=10, color=TAIL_COLOR, alpha=0.75, lw=0, label="tail items")
            ax.scatter(values[~tail], share[~tail], s=10, color=HEAD_COLOR, alpha=0.9, lw=0, label="head items")
            ax.axvline(head_degree, color="0.35", ls="--", lw=1)
            fit = fits.get(ds)
            if fit is not None:
                x_in = np.geomspace(fit.xmin, hi, 100)
                ax.plot(x_in, fit.pdf(x_in), color=FIT_COLOR, lw=1.6,
                        label=rf"$p(x)=Cx^{{-\beta}}$, $\beta$={fit.beta:.2f}, $x_{{min}}$={fit.xmin:g}")
                if fit.xmin > 1:
                    x_out = np.geomspace(1, fit.xmin, 30)
                    ax.plot(x_out, fit.pdf(x_out), color=FIT_COLOR, lw=1.2, ls=":")
            t = (deg < head_degree).mean()
            zero = int((deg == 0).sum())
            text = f"{100 * t:.1f}% of items: degree < {head_degree}\n{100 * (1 - t):.1f}%: degree ≥ {head_degree}"
            if zero:
                text += f"\n({zero} items of degree 0 not drawn)"
            ax.text(0.97, 0.97, text, transform=ax.transAxes, ha="right", va="top", fontsize=9,
                    bbox=dict(boxstyle="round", fc="white", ec="0.7", alpha=0.9))
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlim(lo, hi)
            ax.set_ylim(share.min() / 3, min(1.0, share.max() * 4))
            ax.set_xlabel("item degree x (interactions, train + test)")
            ax.set_ylabel("share of items with degree x")
            ax.set_title(f"{label(ds)}: {len(deg):,} items")
            ax.legend(loc="lower left", fontsize=8, frameon=True)
        fig.tight_layout()
    add_note(fig, note)
    return fig


def plot_prop2(table: pd.DataFrame, note: str | None = None) -> plt.Figure:
    """Prop. 2: predicted lower bound vs measured share of breakable items, per dataset.

    `table` is the concatenation of `prop2_table` outputs with a `dataset` column. Bound
    points outside the fit's range (threshold < xmin) are drawn hollow. `note` (see
    `add_note`) goes under the figure."""
    datasets = list(dict.fromkeys(table["dataset"]))
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.95):
        fig, axes = _panels(len(datasets), width=4.4)
        for ax, ds in zip(axes, datasets):
            t = table[table["dataset"] == ds].sort_values("rho_pct")
            x = t["rho_pct"].to_numpy(dtype=float)
            ax.plot(x, 100 * t["measured"], "o-", color=TAIL_COLOR, lw=1.8, label="measured: degree < threshold")
            bound = 100 * t["bound"].to_numpy(dtype=float)
            valid = t["bound_valid"].to_numpy(dtype=bool)
            ax.plot(x, np.clip(bound, 0, None), "--", color=FIT_COLOR, lw=1.2)
            ax.plot(x[valid], bound[valid], "s", color=FIT_COLOR, label="Prop. 2 lower bound")
            if (~valid).any():
                ax.plot(x[~valid], np.clip(bound[~valid], 0, None), "s", mfc="white", color=FIT_COLOR,
                        label="bound outside fit (threshold < xmin)")
            for xi, yi, n in zip(x, 100 * t["measured"], t["n_mal"]):
                ax.annotate(f"{n}", (xi, yi), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7,
                            color=TAIL_COLOR)
            ax.set_ylim(0, 109)
            ax.set_xticks(x)
            ax.set_xlabel(r"malicious clients $\rho$ (%); red numbers: $\tilde n$")
            ax.set_ylabel("items that can be broken down (%)")
            a = t["alpha"].iloc[0]
            ax.set_title(f"{label(ds)} (α = {a:g}, β = {t['beta'].iloc[0]:.2f})")
            ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
    add_note(fig, note)
    return fig


# ---- Figs. 3, 4 and 5 ----

# the paper's setting of Fig. 4 and Fig. 5, beyond the training protocol every cell shares
FIG4_PROTOCOL = {"model": "fedgnn", "ratio": 10}
FIG5_PROTOCOL = {"model": "fedmf", "defense": "mean", "ratio": 10}


def fig3_data(summary_paths: list[str | Path]) -> pd.DataFrame:
    """Tidy final metrics per (dataset, attack, defense, ratio, metric), mean over seeds,
    with `tables.PROVENANCE_COLUMNS`; the clean runs are kept with attack `none`."""
    df = collect_final_metrics(summary_paths)
    return df[["dataset", "attack", "defense", "ratio", "metric", "ours", "std", "seeds", "status",
               *PROVENANCE_COLUMNS]]


def plot_fig3(df: pd.DataFrame, metric: str = "hr10", n_negatives: int = 99, note: str | None = None) -> plt.Figure:
    """One panel per (dataset, Spattack variant): x = malicious %, one line per defense,
    y = the final `metric`; the clean run under Mean is the dashed line, an untrained
    model the dotted one. Bands are +-1 std over seeds when there are several. `note`
    (what the runs were, `provenance.Runs.header`) goes under the figure."""
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.1)
    attacks = ordered("attack", set(df.attack) - {"none"})
    datasets = ordered("dataset", df.dataset)
    defenses = ordered("defense", df[df.attack != "none"].defense)
    fig, axes = plt.subplots(len(datasets), len(attacks), figsize=(3.4 * len(attacks), 2.9 * len(datasets)),
                             squeeze=False, sharey="row")
    palette = dict(zip(defenses, sns.color_palette("colorblind", len(defenses))))
    random_level = random_ranking_metrics(n_negatives)[metric]
    for r, ds in enumerate(datasets):
        part = df[(df.dataset == ds) & (df.metric == metric)]
        clean = part[(part.attack == "none") & (part.defense == "mean")].ours
        for c, attack in enumerate(attacks):
            ax = axes[r][c]
            cells = part[part.attack == attack]
            for defense in [d for d in defenses if d in set(cells.defense)]:
                line = cells[cells.defense == defense].sort_values("ratio")
                ax.plot(line.ratio, line.ours, marker="o", color=palette[defense], label=label(defense))
                if (line.seeds > 1).any():
                    ax.fill_between(line.ratio, line.ours - line["std"], line.ours + line["std"],
                                    color=palette[defense], alpha=0.2)
            if len(clean):
                ax.axhline(clean.iloc[0], color="0.3", ls="--", lw=1, label="Clean (Mean)")
            ax.axhline(random_level, color="0.6", ls=":", lw=1, label="untrained")
            ax.set_title(f"{label(ds)} · {label(attack)}")
            ax.set_xlabel("malicious clients ρ (%)")
            ax.set_xticks(sorted(cells.ratio.unique()))
            if c == 0:
                ax.set_ylabel(METRIC_LABELS[metric])
    handles = {}
    for ax in fig.axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    order = [label(d) for d in defenses] + ["Clean (Mean)", "untrained"]
    handles = dict(sorted(handles.items(), key=lambda kv: order.index(kv[0])))
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), frameon=False,
               bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    add_note(fig, note)
    return fig


def fig5_data(metrics_paths: list[str | Path]) -> pd.DataFrame:
    """Per-epoch metrics of every cell with its attack and start epoch, mean over seeds,
    with `tables.PROVENANCE_COLUMNS` of the cells behind each row."""
    frames = []
    for path in metrics_paths:
        s = read_summary(Path(path).with_name("summary.json"))
        m = read_metrics(path)
        c = s["config"]
        frames.append(m.assign(dataset=s["dataset"], attack=c["attack"], start=c["start"], seed=c["seed"],
                               epochs=c.get("epochs"), device=s.get("device"), code_version=s.get("code_version")))
    df = pd.concat(frames, ignore_index=True)
    keys = ["dataset", "attack", "start", "epoch"]
    return df.groupby(keys).agg(hr10=("hr10", "mean"), ndcg10=("ndcg10", "mean"),
                                hr10_std=("hr10", "std"), seeds=("seed", "nunique"),
                                **{col: (col, join_distinct) for col in PROVENANCE_COLUMNS}).reset_index()


def plot_fig5(df: pd.DataFrame, metric: str = "hr10", note: str | None = None) -> plt.Figure:
    """HR@10 vs epoch, one panel per attack, one line per start epoch, clean as reference;
    `note` (`provenance.Runs.header`) under the figure."""
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
        ax.set_title(f"{label(ds)} · {label(attack)}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(METRIC_LABELS[metric])
    axes[0][-1].legend(frameon=False)
    fig.tight_layout()
    add_note(fig, note)
    return fig


FIG4_SETTINGS = {"mean": "No Defense (Mean)", "median": "Defense (Median)"}
FIG4_ATTACKS = ["none", "spattack-l-s", "spattack-l-d", "spattack-o-s", "spattack-o-d"]
FIG4_METRICS = ["hr10", "ndcg10"]
FIG4_COLORS = {"none": "#4d4d4d", "spattack-l-s": "#9ecae1", "spattack-l-d": "#3182bd",
               "spattack-o-s": "#fdae6b", "spattack-o-d": "#e6550d"}


def fig4_data(summary_paths: list[str | Path], metrics: list[str] = FIG4_METRICS) -> pd.DataFrame:
    """Tidy Fig. 4: one row per (dataset, defense, attack, metric), final epoch, mean over
    seeds, with `setting` (No Defense (Mean) / Defense (Median)) and `drop_pct`, the
    change against the clean run under the same defense in percent (negative = worse)."""
    df = collect_final_metrics(summary_paths)
    df = df[df.metric.isin(metrics)].copy()
    df["drop_pct"] = drop_pct(df, ["dataset", "defense", "metric"])
    df["setting"] = df.defense.map(lambda d: FIG4_SETTINGS.get(d, label(d)))
    rank = {a: i for i, a in enumerate(FIG4_ATTACKS)}
    df = df.assign(_d=df.defense.map(lambda d: list(FIG4_SETTINGS).index(d) if d in FIG4_SETTINGS else 9),
                   _a=df.attack.map(lambda a: rank.get(a, 99)), _m=df.metric.map(metrics.index))
    df = df.sort_values(["dataset", "_m", "_d", "_a"], kind="stable")
    cols = ["dataset", "model", "defense", "setting", "attack", "ratio", "metric", "ours", "std", "seeds",
            "status", "drop_pct", *PROVENANCE_COLUMNS]
    return df[cols].reset_index(drop=True)


def plot_fig4(df: pd.DataFrame, note: str | None = None) -> plt.Figure:
    """One panel per dataset: groups of bars = (metric, setting), one bar per attack
    (Clean and the Spattack variants). Bars of diverged runs are hatched. `note`
    (`provenance.Runs.header`) goes under the figure."""
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.1)
    datasets = ordered("dataset", df.dataset)
    attacks = [a for a in FIG4_ATTACKS if a in set(df.attack)] + sorted(set(df.attack) - set(FIG4_ATTACKS))
    settings = [d for d in FIG4_SETTINGS if d in set(df.defense)] + sorted(set(df.defense) - set(FIG4_SETTINGS))
    groups = [(m, d) for m in FIG4_METRICS if m in set(df.metric) for d in settings]
    width = 0.8 / max(len(attacks), 1)
    fig, axes = plt.subplots(1, len(datasets), figsize=((1.3 * len(groups) + 1.2) * len(datasets), 3.8), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        part = df[df.dataset == ds]
        for a_i, attack in enumerate(attacks):
            xs, ys, hatch = [], [], []
            for g_i, (metric, defense) in enumerate(groups):
                row = part[(part.attack == attack) & (part.metric == metric) & (part.defense == defense)]
                if len(row):
                    xs.append(g_i - 0.4 + width * (a_i + 0.5))
                    ys.append(float(row.ours.iloc[0]))
                    hatch.append("//" if (row.status == "diverged").any() else "")
            bars = ax.bar(xs, ys, width=0.95 * width, color=FIG4_COLORS.get(attack, f"C{a_i}"),
                          label=label(attack), edgecolor="white", linewidth=0.4)
            for bar, h in zip(bars, hatch):
                bar.set_hatch(h)
        for boundary in range(len(settings), len(groups), len(settings)):
            ax.axvline(boundary - 0.5, color="0.6", lw=0.8)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([f"{METRIC_LABELS[m]}\n{FIG4_SETTINGS.get(d, label(d))}" for m, d in groups], fontsize=8)
        ax.set_xlim(-0.5, len(groups) - 0.5)
        attacked = part[part.attack != "none"]
        rho = f", ρ = {attacked.ratio.iloc[0]:g}%" if len(attacked) else ""
        model = label(part.model.iloc[0]) if len(part) else ""
        ax.set_title(f"{label(ds)} · {model}{rho}")
        ax.set_ylabel("final-epoch metric")
    handles = [Patch(color=FIG4_COLORS.get(a, f"C{i}"), label=label(a)) for i, a in enumerate(attacks)]
    if (df.status == "diverged").any():
        handles.append(Patch(facecolor="white", edgecolor="0.3", hatch="//",
                             label="diverged (last finite epoch)"))
    ncol = len(handles) if len(datasets) > 1 else 3
    fig.legend(handles=handles, loc="lower center", ncol=ncol, frameon=False, bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.08 if ncol == len(handles) else 0.14, 1, 1))
    add_note(fig, note)
    return fig


__all__ = ["fig3_data", "plot_fig3", "fig4_data", "plot_fig4", "fig5_data", "plot_fig5", "save_figure"]
