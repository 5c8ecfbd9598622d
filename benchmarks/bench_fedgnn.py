"""Seconds per epoch of FedGNN against FedMF on the same split, CPU, clean training.

    python benchmarks/bench_fedgnn.py --split results/data/ml-100k
    python benchmarks/bench_fedgnn.py --reference ../shared/data/reference-splits/ml-100k --n-items 1682
    python benchmarks/bench_fedgnn.py --synthetic 6040,3706,166 --threads 2

Runs the real training loop (`simulate`, Mean) for both models, alternating FedMF and
FedGNN `--repeat` times in one process so a busy machine slows both alike, and prints
one Markdown row per model with the median per-epoch seconds of each stage (client step,
aggregation incl. FedGNN's dense rows, evaluation) and the FedGNN / FedMF ratio.
"""

from __future__ import annotations

import argparse
import functools
import statistics

import numpy as np


def load(args):
    from spattack.interactions import Interactions
    from spattack.synthetic import synthetic_interactions

    if args.split:
        return Interactions.load(args.split)
    if args.reference:
        from spattack.data.reference import read_reference

        train = read_reference(f"{args.reference}/train.txt")
        test = read_reference(f"{args.reference}/test.txt")
        n_users = int(max(train.user.max(), test.user.max()) + 1)
        n_items = max(args.n_items or 0, int(max(train.item.max(), test.item.max()) + 1))
        return Interactions.from_pairs(train[["user", "item"]].to_numpy(), test[["user", "item"]].to_numpy(),
                                       n_users, n_items)
    users, items, per_user = map(int, args.synthetic.split(","))
    return synthetic_interactions(users, items, per_user, n_groups=20)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--split", help="folder with train.tsv/test.tsv/users.tsv/items.tsv (workflow split)")
    src.add_argument("--reference", help="folder with the authors' train.txt/test.txt")
    src.add_argument("--synthetic", help="USERS,ITEMS,PER_USER")
    p.add_argument("--n-items", type=int, help="item count for --reference (default: max id + 1)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--neighbours", type=int, help="FedGNN neighbour users per item (default: the model's)")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()

    import torch

    from spattack import fedgnn, simulation

    factories = {"fedmf": None, "fedgnn": None}
    if args.neighbours is not None:
        factories["fedgnn"] = functools.partial(fedgnn.FedGNN, neighbours=args.neighbours)
    data = load(args)
    stages = ("client", "aggregate", "evaluate")
    runs = {"fedmf": [], "fedgnn": []}
    for _ in range(args.repeat):
        for model in runs:
            cfg = simulation.RunConfig(model=model, epochs=args.epochs, device=args.device, threads=args.threads)
            result = simulation.simulate(data, cfg, progress=False, model=factories[model])
            runs[model].append(result.summary["seconds_per_epoch"])
    med = {m: {s: statistics.median(r[s] for r in rs) for s in stages} for m, rs in runs.items()}
    for m in med:
        med[m]["epoch"] = sum(med[m][s] for s in stages)
    print(f"{data.n_users} users, {data.n_items} items, {len(data.indices)} training interactions; "
          f"{args.epochs} epochs x {args.repeat} repeats, {args.threads} thread(s), {args.device}, "
          f"torch {torch.__version__}, median seconds per epoch")
    print("| model | client s | aggregate s | evaluate s | epoch s | x FedMF |")
    print("|---|---|---|---|---|---|")
    for m in med:
        e = med[m]
        print(f"| {m} | {e['client']:.4f} | {e['aggregate']:.4f} | {e['evaluate']:.4f} | {e['epoch']:.4f} "
              f"| {e['epoch'] / med['fedmf']['epoch']:.2f} |", flush=True)
    spread = {m: np.ptp([sum(r[s] for s in stages) for r in rs]) for m, rs in runs.items()}
    print("(spread of the epoch time over repeats: " + ", ".join(f"{m} {v:.4f} s" for m, v in spread.items()) + ")")


if __name__ == "__main__":
    main()
