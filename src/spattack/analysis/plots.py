"""Fig. 2(c) (item-degree distribution, head vs tail, fitted power law) and the Prop. 2 plot."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from ..registry import label  # noqa: E402
from ..runio import atomic_path  # noqa: E402
from .degrees import PowerLawFit  # noqa: E402

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
