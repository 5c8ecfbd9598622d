"""Seconds per clean FedMF epoch (Mean) and peak memory as the data grows: synthetic data of
ML-1M's degree profile (`spattack.synthetic.power_law_interactions`) at each size.

    python benchmarks/bench_scale.py --sizes 100000,1000000,10000000 --epochs 3

Each size runs in its own process (2 threads by default), so that its peak RSS is its own.
Prints one Markdown row per size: users, items, upload rows, seconds per epoch by stage
and in all, seconds per epoch per million training pairs (flat = linear cost), set-up
seconds (data, pairs, evaluator) and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import time

from bench_machine import run_child


def run_size(n: int, epochs: int, threads: int) -> dict:
    import torch

    from spattack.simulation import RunConfig, simulate
    from spattack.synthetic import power_law_interactions

    torch.set_num_threads(threads)
    start = time.perf_counter()
    data = power_law_interactions(n)
    made = time.perf_counter() - start
    s = simulate(data, RunConfig(epochs=epochs, threads=threads), progress=False).summary
    return {"pairs": int(data.indices.size), "users": data.n_users, "items": data.n_items, "data_s": made,
            "per_epoch": s["seconds_per_epoch"], "wall_s": s["wall_s"], "peak_rss_mb": s["peak_rss_mb"],
            "epochs": epochs}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="100000,1000000,10000000", help="training pairs, comma-separated")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)  # child mode
    args = p.parse_args()
    if args.size:
        print(json.dumps(run_size(args.size, args.epochs, args.threads)))
        return
    print(f"clean FedMF under Mean, {args.epochs} epochs, {args.threads} threads\n")
    print("| pairs | users | items | client s | aggregate s | evaluate s | epoch s | epoch s per 1M pairs "
          "| set-up s | peak RSS MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in map(int, args.sizes.split(",")):
        r = run_child(__file__, "--size", n, "--epochs", args.epochs, "--threads", args.threads)
        e = r["per_epoch"]
        epoch = e["client"] + e["aggregate"] + e["evaluate"]
        setup = r["wall_s"] - epoch * r["epochs"] - e["evaluate"] + r["data_s"]  # + the epoch-0 evaluation
        print(f"| {r['pairs']:,} | {r['users']:,} | {r['items']:,} | {e['client']:.3f} | {e['aggregate']:.3f} "
              f"| {e['evaluate']:.3f} | {epoch:.3f} | {epoch / r['pairs'] * 1e6:.3f} | {setup:.1f} "
              f"| {r['peak_rss_mb']:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
