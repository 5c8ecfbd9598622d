"""How long a set of measured training cells takes on `--cores` cores, by the order they start.

    python benchmarks/bench_schedule.py results/benchmarks/train --cores 2

Reads the workflow's benchmark files (`results/benchmarks/train/<dataset>/<model>/<attack>/
<defense>/rho<r>/start<s>/seed<k>.tsv`, wall seconds `s` of each one-thread cell) and
replays them as Snakemake does with one-thread cells: whenever a core is free, the ready
cell of highest priority starts. Prints one Markdown row per priority rule:
- `runtime`: the dataset's runtime estimate alone (the workflow before commit e89ae38);
- `cost`: `spattack.registry.cell_priority` (runtime times the defense's relative cost).
Cells of equal priority start in a random order, `--orders` times over (Snakemake's own
order among them is its scheduler's): the row gives the makespan's min, median and max.
The bound is max(sum / cores, longest cell). Cell start-up outside the timed part (about
3 s a cell, mostly `import torch`) is not in these files, so a real run takes longer.
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
from pathlib import Path

from spattack.registry import DATASETS, cell_priority

RULES = {
    "runtime": lambda dataset, defense: DATASETS[dataset].cell_resources["runtime"],
    "cost": cell_priority,
}


def measured_cells(root: Path) -> list[tuple[str, str, float]]:
    """(dataset, defense, wall seconds) of every benchmark file under `root`."""
    cells = []
    for tsv in sorted(root.glob("*/*/*/*/*/*/*.tsv")):
        dataset, _model, _attack, defense = tsv.relative_to(root).parts[:4]
        header, values = tsv.read_text().splitlines()[:2]
        cells.append((dataset, defense, float(values.split("\t")[header.split("\t").index("s")])))
    if not cells:
        raise SystemExit(f"no benchmark files under {root} (expected <dataset>/<model>/<attack>/<defense>/"
                         f"rho<r>/start<s>/seed<k>.tsv, as the train rule writes them)")
    return cells


def makespan(seconds_in_start_order: list[float], cores: int) -> float:
    """Wall time when each cell starts on the first free core, in the order given."""
    free = [0.0] * cores
    for s in seconds_in_start_order:
        heapq.heappush(free, heapq.heappop(free) + s)
    return max(free)


def replay(cells, priority, cores: int, orders: int, seed: int = 0) -> list[float]:
    """Makespans of `orders` random tie orders, highest priority first."""
    rng = random.Random(seed)
    spans = []
    for _ in range(orders):
        keyed = [(-priority(d, df), rng.random(), s) for d, df, s in cells]
        spans.append(makespan([s for *_, s in sorted(keyed)], cores))
    return spans


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path, help="results/benchmarks/train of a workflow run")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--orders", type=int, default=200, help="random orders of equal-priority cells")
    parser.add_argument("--datasets", default=None, help="comma-separated: only these datasets' cells")
    args = parser.parse_args(argv)
    cells = measured_cells(args.root)
    if args.datasets:
        keep = set(args.datasets.split(","))
        cells = [c for c in cells if c[0] in keep]
    total = sum(s for *_, s in cells)
    bound = max(total / args.cores, max(s for *_, s in cells))
    print(f"{len(cells)} cells, {total / 60:.1f} min of cell time, {args.cores} cores; "
          f"bound {bound / 60:.1f} min\n")
    print("| priority | min | median | max | median over bound |")
    print("|---|---:|---:|---:|---:|")
    for name, priority in RULES.items():
        spans = replay(cells, priority, args.cores, args.orders)
        print(f"| {name} | {min(spans) / 60:.1f} | {statistics.median(spans) / 60:.1f} | "
              f"{max(spans) / 60:.1f} | {statistics.median(spans) / bound:.3f} |")


if __name__ == "__main__":
    main()
