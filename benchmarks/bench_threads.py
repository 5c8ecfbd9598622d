"""Two cores, two ways: one training cell on two threads, or two one-thread cells at once.

    python benchmarks/bench_threads.py --split results/data/ml-1m --epochs 6 --pairs 2

For each cell (model, attack, defense, ratio), alternating `--pairs` times: the cell alone
in a process with 2 threads, then two copies of it at once, each in a process with 1
thread. Prints one Markdown row per cell: seconds per epoch (all stages, set-up left out)
of each way, and how many more epochs the two one-thread copies train in the same time,
2 t(2 threads) / t(1 thread, two at once): above 1, one thread per cell does more work on
two cores. This is what `threads` in config.yaml is set from.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

from bench_machine import child_result, start_child

CELLS = ["fedmf/none/mean/0", "fedmf/spattack-l-d/median/10", "fedmf/spattack-l-d/trimmed_mean/10",
         "fedmf/spattack-o-d/krum/5", "fedmf/spattack-l-d/norm/10", "fedgnn/none/mean/0"]


def run_cell(args, cell: str, threads: int) -> float:
    import torch

    from spattack.interactions import Interactions
    from spattack.simulation import RunConfig, simulate

    torch.set_num_threads(threads)
    model, attack, defense, ratio = cell.split("/")
    data = Interactions.load(args.split)
    cfg = RunConfig(model=model, attack=attack, defense=defense, ratio=float(ratio), epochs=args.epochs,
                    threads=threads)
    return sum(simulate(data, cfg, progress=False).summary["seconds_per_epoch"].values())


def start(cell: str, threads: int):
    return start_child(__file__, *sys.argv[1:], "--child", cell, threads)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--split", required=True, help="folder with train.tsv/test.tsv/users.tsv/items.tsv")
    p.add_argument("--cells", default=",".join(CELLS), help="model/attack/defense/ratio, comma-separated")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--pairs", type=int, default=2, help="alternations of the two ways per cell")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)  # child mode: CELL THREADS
    args = p.parse_args()
    if args.child:
        print(json.dumps(run_cell(args, args.child[0], int(args.child[1]))))
        return
    print(f"{args.split}: {args.epochs} epochs, {args.pairs} pairs; seconds per epoch\n")
    print("| cell | 2 threads, alone | 1 thread, two at once | epochs per second, two at once / alone |")
    print("|---|---:|---:|---:|")
    for cell in args.cells.split(","):
        alone, shared = [], []
        for _ in range(args.pairs):
            alone.append(child_result(start(cell, 2)))
            both = [start(cell, 1), start(cell, 1)]
            shared += [child_result(proc) for proc in both]
        t2, t1 = statistics.median(alone), statistics.median(shared)
        print(f"| {cell} | {t2:.3f} | {t1:.3f} | {2 * t2 / t1:.2f} |", flush=True)


if __name__ == "__main__":
    main()
