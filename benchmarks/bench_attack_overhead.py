"""Seconds per epoch of a dense (-D) attack's cell against the clean cell, per defense.

    python benchmarks/bench_attack_overhead.py --split results/data/steam --epochs 5
    python benchmarks/bench_attack_overhead.py --split results/data/ml-1m --defenses krum --ratio 15

Every cell runs in its own process (2 threads by default), clean and attacked in turn.
Prints one Markdown row per defense: each cell's seconds per epoch by stage and in all
(client step, attack, aggregation, evaluation) and the ratio attacked / clean. Target:
at most 1.3.
"""

from __future__ import annotations

import argparse
import json
import sys

from bench_machine import run_child

DEFENSES = ["mean", "median", "trimmed_mean", "krum", "norm"]


def run_cell(args, attack: str, defense: str) -> dict:
    import torch

    from spattack.interactions import Interactions
    from spattack.simulation import RunConfig, simulate

    torch.set_num_threads(args.threads)
    data = Interactions.load(args.split)
    ratio = args.ratio if attack != "none" else 0
    cfg = RunConfig(attack=attack, defense=defense, ratio=ratio, epochs=args.epochs, threads=args.threads,
                    device=args.device)
    return simulate(data, cfg, progress=False).summary["seconds_per_epoch"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--split", required=True, help="folder with train.tsv/test.tsv/users.tsv/items.tsv")
    p.add_argument("--attack", default="spattack-l-d")
    p.add_argument("--ratio", type=float, default=15.0)
    p.add_argument("--defenses", default=",".join(DEFENSES))
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--cell", nargs=2, help=argparse.SUPPRESS)  # child mode: ATTACK DEFENSE
    args = p.parse_args()
    if args.cell:
        print(json.dumps(run_cell(args, *args.cell)))
        return
    print(f"{args.split}: {args.attack} at {args.ratio}% vs clean, {args.epochs} epochs, {args.threads} threads\n")
    print("| defense | clean s/epoch | attacked s/epoch | client | attack | aggregate | evaluate | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for defense in args.defenses.split(","):
        seconds = {}
        for attack in ("none", args.attack):
            seconds[attack] = run_child(__file__, *sys.argv[1:], "--cell", attack, defense)
        clean, hit = (sum(seconds[a].values()) for a in ("none", args.attack))
        s = seconds[args.attack]
        print(f"| {defense} | {clean:.3f} | {hit:.3f} | {s['client']:.3f} | {s['attack']:.3f} | {s['aggregate']:.3f} "
              f"| {s['evaluate']:.3f} | {hit / clean:.2f} |", flush=True)


if __name__ == "__main__":
    main()
