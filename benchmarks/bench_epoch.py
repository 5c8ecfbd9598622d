"""Seconds per FedMF epoch, split into client step / aggregation / evaluation, per aggregator.

Each (dataset, aggregator) runs in its own process so that its peak memory is its own.

    python benchmarks/bench_epoch.py --dataset ml-100k --split results/data/ml-100k
    python benchmarks/bench_epoch.py --dataset ml-1m --synthetic 6040,3706,166

`--split` reads a split written by the workflow; `--synthetic USERS,ITEMS,PER_USER`
builds a dataset of that shape (for ML-1M, whose full ratings file may be missing).
Prints one Markdown row per aggregator.
"""

from __future__ import annotations

import argparse
import json
import sys

from bench_machine import run_child

AGGREGATORS = ["mean", "median", "trimmed_mean", "krum", "norm"]


def run_one(args) -> dict:
    import torch

    from spattack.interactions import Interactions
    from spattack.simulation import RunConfig, simulate
    from spattack.synthetic import synthetic_interactions

    torch.set_num_threads(args.threads)
    if args.split:
        data = Interactions.load(args.split)
    else:
        users, items, per_user = map(int, args.synthetic.split(","))
        data = synthetic_interactions(users, items, per_user, n_groups=20)
    # trimmed mean and Krum assume as many attackers as 3% would bring, so they do real work
    from spattack.malicious import n_malicious
    cfg = RunConfig(defense=args.defense, epochs=args.epochs, device=args.device, threads=args.threads,
                    defense_f=n_malicious(data.n_users, 3.0))
    result = simulate(data, cfg, progress=False)
    s = result.summary
    return {"per_epoch": s["seconds_per_epoch"], "peak_rss_mb": s["peak_rss_mb"],
            "peak_gpu_mb": s["peak_gpu_mb"], "device": s["device"], "rows": int(len(data.indices) * 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True, help="label for the table")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--split", help="folder with train.tsv/test.tsv/users.tsv/items.tsv")
    src.add_argument("--synthetic", help="USERS,ITEMS,PER_USER")
    p.add_argument("--aggregators", default=",".join(AGGREGATORS))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--defense", help=argparse.SUPPRESS)  # child mode
    args = p.parse_args()
    if args.defense:
        print(json.dumps(run_one(args)))
        return
    print(f"| dataset | aggregator | client s | aggregate s | evaluate s | epoch s | peak RSS MB | device |")
    print("|---|---|---|---|---|---|---|---|")
    for agg in args.aggregators.split(","):
        r = run_child(__file__, *sys.argv[1:], "--defense", agg)
        e = r["per_epoch"]
        total = e["client"] + e["aggregate"] + e["evaluate"]
        print(f"| {args.dataset} | {agg} | {e['client']:.4f} | {e['aggregate']:.4f} | {e['evaluate']:.4f} "
              f"| {total:.4f} | {r['peak_rss_mb']:.0f} | {r['device']} |", flush=True)


if __name__ == "__main__":
    main()
