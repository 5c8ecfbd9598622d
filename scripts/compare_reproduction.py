"""Compare a rerun's final metrics with the committed ones in docs/reproduction/.

    python scripts/compare_reproduction.py --results results --out docs/reproduction/RERUN.md

Committed per-cell summaries (docs/reproduction/clean/*.summary.json) are compared to the
bit; committed tables at the precision they were written with (table3: 4 decimals;
fig3, fig4: 6). Prints, and writes with --out, one Markdown section per source: how many
final metrics were compared, how many are identical, the largest absolute difference, and
every cell that moved by more than --tolerance (default 0.005, the seed-0 noise allowance).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from spattack.runio import atomic_write_text

DOCS = Path("docs/reproduction")
METRICS = ("hr5", "ndcg5", "hr10", "ndcg10")


def summaries(results: Path) -> list[dict]:
    """Committed clean summaries against the rerun's summary.json of the same cell."""
    rows = []
    for committed in sorted((DOCS / "clean").glob("*.summary.json")):
        old = json.loads(committed.read_text())
        c = old["config"]
        dataset = old.get("dataset") or committed.name.split("-seed")[0].removesuffix("-fedgnn")
        new_path = (results / "runs" / dataset / c["model"] / c["attack"] / c["defense"] / f"rho{c['ratio']:g}"
                    / f"start{c['start']}" / f"seed{c['seed']}" / "summary.json")
        if not new_path.exists():
            continue
        new = json.loads(new_path.read_text())
        for m in METRICS:
            rows.append({"cell": f"{dataset}/{c['model']}/seed{c['seed']}", "metric": m,
                         "committed": old["final"][m], "rerun": new["final"][m]})
    return rows


def table(committed: Path, rerun: Path, keys: list[str], value: str, decimals: int) -> list[dict]:
    """Rows of a committed table against the rerun's, at the committed precision."""
    if not (committed.exists() and rerun.exists()):
        return []
    old, new = pd.read_csv(committed), pd.read_csv(rerun)
    both = old.merge(new, on=keys, suffixes=("_old", "_new"))
    both = both[both[f"{value}_new"].notna()]  # a committed cell the rerun has not run
    return [{"cell": "/".join(str(r[k]) for k in keys if k != "metric"), "metric": r.get("metric", value),
             "committed": r[f"{value}_old"], "rerun": round(float(r[f"{value}_new"]), decimals)}
            for _, r in both.iterrows()]


def section(title: str, rows: list[dict], tolerance: float, exact: str) -> str:
    if not rows:
        return f"## {title}\n\nNo cell of the rerun matches a committed one.\n"
    df = pd.DataFrame(rows)
    diff = (df["rerun"] - df["committed"]).abs()
    moved = df[diff > tolerance].assign(diff=diff[diff > tolerance])
    lines = [f"## {title}", "", f"{len(df)} final metrics of {df['cell'].nunique()} cells compared {exact}: "
             f"{int((diff == 0).sum())} identical, largest difference {diff.max():.6f}, "
             f"{len(moved)} beyond {tolerance}.", ""]
    if len(moved):
        lines += ["| cell | metric | committed | rerun | difference |", "|---|---|---:|---:|---:|"]
        lines += [f"| {r.cell} | {r.metric} | {r.committed:.6f} | {r.rerun:.6f} | {r.diff:.6f} |"
                  for r in moved.itertuples()]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default="results")
    p.add_argument("--tolerance", type=float, default=0.005)
    p.add_argument("--out", help="also write the report here")
    args = p.parse_args()
    results = Path(args.results)
    tables = results / "tables"
    cell = ["dataset", "attack", "defense", "ratio", "metric"]
    sources = [
        ("Clean cells with a committed summary.json", summaries(results), "to the bit"),
        ("Table 3", table(DOCS / "table3" / "table3.csv", tables / "table3.csv", ["dataset", "attack", "metric"],
                          "ours", 4), "at 4 decimals"),
        ("Fig. 3, ML-100K", table(DOCS / "fig3" / "fig3.csv", tables / "fig3.csv", cell, "ours", 6), "at 6 decimals"),
        ("Fig. 3, Steam", table(DOCS / "fig3-steam" / "fig3.csv", tables / "fig3.csv", cell, "ours", 6),
         "at 6 decimals"),
        ("Fig. 3, ML-1M", table(DOCS / "fig3-ml-1m" / "fig3.csv", tables / "fig3.csv", cell, "ours", 6),
         "at 6 decimals"),
        ("Fig. 4", table(DOCS / "fig4" / "fig4.csv", tables / "fig4.csv",
                         ["dataset", "model", "defense", "attack", "ratio", "metric"], "ours", 6), "at 6 decimals"),
    ]
    report = "\n".join(section(title, rows, args.tolerance, exact) for title, rows, exact in sources)
    print(report)
    if args.out:
        atomic_write_text(args.out, f"# Rerun against the committed numbers\n\n{report}")


if __name__ == "__main__":
    main()
