"""Seconds per clean FedMF epoch (Mean) and peak memory as the data grows: synthetic data of
ML-1M's degree profile (`spattack.synthetic.power_law_interactions`) at each size.

    python benchmarks/bench_scale.py --sizes 100000,1000000,10000000 --epochs 3

Each size runs in its own process (2 threads by default), so that its peak RSS is its own.
Prints one Markdown row per size: users, items, seconds per epoch by stage and in all over
epochs 2 on (the steady state of a long run), the same per million training pairs (flat =
linear cost), the first epoch (it also allocates the upload buffer and builds caches),
set-up seconds (data, pairs, evaluator) and peak RSS.
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
    first = s["seconds_first_epoch"]
    later = {k: (v * epochs - first[k]) / (epochs - 1) for k, v in s["seconds_per_epoch"].items()}
    return {"pairs": int(data.indices.size), "users": data.n_users, "items": data.n_items, "data_s": made,
            "later": later, "first": sum(first.values()), "wall_s": s["wall_s"], "peak_rss_mb": s["peak_rss_mb"],
            "epochs": epochs}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="100000,1000000,10000000", help="training pairs, comma-separated")
    p.add_argument("--epochs", type=int, default=3, help="at least 2: epoch 1 is reported apart")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)  # child mode
    args = p.parse_args()
    if args.size:
        print(json.dumps(run_size(args.size, args.epochs, args.threads)))
        return
    if args.epochs < 2:
        p.error("--epochs must be at least 2 (epoch 1 is reported apart from the later ones)")
    print(f"clean FedMF under Mean, {args.epochs} epochs, {args.threads} threads; stages: epochs 2 to {args.epochs}\n")
    print("| pairs | users | items | client s | aggregate s | evaluate s | epoch s | epoch s per 1M pairs "
          "| first epoch s | set-up s | peak RSS MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in map(int, args.sizes.split(",")):
        r = run_child(__file__, "--size", n, "--epochs", args.epochs, "--threads", args.threads)
        e = r["later"]
        epoch = e["client"] + e["aggregate"] + e["evaluate"]
        # + the epoch-0 evaluation
        setup = r["wall_s"] - epoch * (r["epochs"] - 1) - r["first"] - e["evaluate"] + r["data_s"]
        print(f"| {r['pairs']:,} | {r['users']:,} | {r['items']:,} | {e['client']:.3f} | {e['aggregate']:.3f} "
              f"| {e['evaluate']:.3f} | {epoch:.3f} | {epoch / r['pairs'] * 1e6:.3f} | {r['first']:.3f} "
              f"| {setup:.1f} | {r['peak_rss_mb']:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
