"""Seconds per epoch of a dense (-D) attack's cell against the clean cell, per defense.

    python benchmarks/bench_attack_overhead.py --split results/data/steam --epochs 5
    python benchmarks/bench_attack_overhead.py --split results/data/ml-1m --defenses krum --ratio 15

Every cell runs in its own process (2 threads by default), clean and attacked in turn,
--pairs times. Prints one Markdown row per defense: the median over pairs of each cell's
seconds per epoch in all, the attacked cell's by stage (client step, attack, aggregation,
evaluation), and the ratio attacked / clean of the medians. Target: at most 1.3. On the
small datasets an epoch takes 0.02-0.2 s and one pair's ratio moves by about 0.2 from run
to run: take 3 pairs or more.

Seconds per epoch are taken from epoch 3 on (--warm-up 2): an attacked run allocates its
upload buffer twice, in epoch 1 and again, with room for the attack's rows, in epoch 2
(about 0.3 s each on ML-1M, once per run), which in a 5-epoch benchmark would weigh 40
times what it does in a 200-epoch cell. The last column gives the ratio over all epochs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

from bench_machine import run_child

DEFENSES = ["mean", "median", "trimmed_mean", "krum", "norm"]


def run_cell(args, attack: str, defense: str) -> dict:
    """{"all": seconds per epoch by stage over every epoch, "steady": the same from epoch
    warm_up + 1 on}."""
    import torch

    from spattack import simulation
    from spattack.interactions import Interactions

    torch.set_num_threads(args.threads)
    data = Interactions.load(args.split)
    ratio = args.ratio if attack != "none" else 0
    cfg = simulation.RunConfig(attack=attack, defense=defense, ratio=ratio, epochs=args.epochs,
                               threads=args.threads, device=args.device)
    totals = []  # each epoch's running sums by stage
    end_epoch = simulation.EpochTimes.end_epoch

    def record(times):
        totals.append({k: v * times.epochs for k, v in times.per_epoch().items()})
        end_epoch(times)

    simulation.EpochTimes.end_epoch = record
    simulation.simulate(data, cfg, progress=False)
    last, warm = totals[-1], totals[args.warm_up - 1] if args.warm_up else dict.fromkeys(totals[-1], 0.0)
    steady = len(totals) - args.warm_up
    return {"all": {k: v / len(totals) for k, v in last.items()},
            "steady": {k: (last[k] - warm[k]) / steady for k in last}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--split", required=True, help="folder with train.tsv/test.tsv/users.tsv/items.tsv")
    p.add_argument("--attack", default="spattack-l-d")
    p.add_argument("--ratio", type=float, default=15.0)
    p.add_argument("--defenses", default=",".join(DEFENSES))
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--warm-up", type=int, default=2, help="epochs left out of the seconds per epoch")
    p.add_argument("--pairs", type=int, default=1, help="clean and attacked cells run alternately, this many times")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--cell", nargs=2, help=argparse.SUPPRESS)  # child mode: ATTACK DEFENSE
    args = p.parse_args()
    if not 0 <= args.warm_up < args.epochs:
        p.error(f"--warm-up must be at least 0 and below --epochs ({args.epochs}), got {args.warm_up}")
    if args.pairs < 1:
        p.error(f"--pairs must be at least 1, got {args.pairs}")
    if args.cell:
        print(json.dumps(run_cell(args, *args.cell)))
        return
    print(f"{args.split}: {args.attack} at {args.ratio}% vs clean, {args.epochs} epochs, {args.threads} threads, "
          f"median of {args.pairs} pair(s)\n")
    print(f"Seconds per epoch from epoch {args.warm_up + 1} on; the last column over all {args.epochs} epochs.\n")
    print("| defense | clean s/epoch | attacked s/epoch | client | attack | aggregate | evaluate | ratio "
          "| ratio, all epochs |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    attacks = ("none", args.attack)
    for defense in args.defenses.split(","):
        runs = {attack: [] for attack in attacks}
        for _ in range(args.pairs):
            for attack in attacks:
                runs[attack].append(run_child(__file__, *sys.argv[1:], "--cell", attack, defense))
        clean, hit = (statistics.median(sum(r["steady"].values()) for r in runs[a]) for a in attacks)
        clean_all, hit_all = (statistics.median(sum(r["all"].values()) for r in runs[a]) for a in attacks)
        s = {stage: statistics.median(r["steady"][stage] for r in runs[args.attack])
             for stage in runs[args.attack][0]["steady"]}
        print(f"| {defense} | {clean:.3f} | {hit:.3f} | {s['client']:.3f} | {s['attack']:.3f} | {s['aggregate']:.3f} "
              f"| {s['evaluate']:.3f} | {hit / clean:.2f} | {hit_all / clean_all:.2f} |", flush=True)

if __name__ == "__main__":
    main()
