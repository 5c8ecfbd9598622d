"""Seconds per aggregation of one round's uploads: vectorised aggregators vs a per-item loop.

    python benchmarks/bench_aggregators.py --dataset-shape ml-100k --threads 2 --repeat 5
    python benchmarks/bench_aggregators.py --items 3706 --rows 2000000 --max-count 6000
    python benchmarks/bench_aggregators.py --dataset-shape steam --attackers 662 --no-loop
    python benchmarks/bench_aggregators.py --dataset-shape ml-100k --aggregators \
        multi_krum,bulyan,geometric_median,centered_clipping,nnm_median,nnm_krum

Uploads come from the leave-one-out split in results/data/<shape> when it exists (every
user uploads its positives plus as many uniform negatives), else from a synthetic
power-law item degree distribution with the dataset's number of items, rows and largest
item count. Prints a Markdown table: median seconds over the repeats, and the largest
|vectorised - loop| difference as a check that both compute the same thing. By default
the paper's five defenses; --aggregators names any with a loop version in
loop_aggregators.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from loop_aggregators import LOOP_AGGREGATORS, loop_aggregate  # noqa: E402

from spattack.aggregators import DEFENSES, aggregate  # noqa: E402

# items, upload rows per round (~2 per training positive), largest item count, users
SHAPES = {
    "ml-100k": (1682, 198_000, 1_200, 943),
    "ml-1m": (3706, 2_000_000, 6_000, 6040),
    "steam": (5134, 222_000, 3_000, 3753),
}


def power_law_counts(n_items: int, rows: int, max_count: int) -> np.ndarray:
    """Item counts ~ rank^-a summing to about `rows`, with `a` set so the top item has `max_count`."""
    ranks = np.arange(1, n_items + 1, dtype=np.float64)
    lo, hi = 0.0, 5.0
    for _ in range(60):
        a = (lo + hi) / 2
        w = ranks ** -a
        lo, hi = (a, hi) if rows * w[0] / w.sum() < max_count else (lo, a)
    return np.minimum(np.round(rows * w / w.sum()).astype(np.int64), max_count)


def synthetic_uploads(n_items: int, rows: int, max_count: int, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    counts = rng.permutation(power_law_counts(n_items, rows, max_count))
    items = rng.permutation(np.repeat(np.arange(n_items), counts))
    grads = rng.normal(scale=0.01, size=(items.size, dim)).astype(np.float32)
    return torch.as_tensor(items), torch.as_tensor(grads)


def split_uploads(split_dir: Path, dim: int, seed: int = 0):
    from spattack.interactions import Interactions

    data = Interactions.load(split_dir)
    rng = np.random.default_rng(seed)
    items = np.concatenate([data.indices, rng.integers(0, data.n_items, size=data.indices.size)])
    grads = rng.normal(scale=0.01, size=(items.size, dim)).astype(np.float32)
    return data.n_items, data.n_users, torch.as_tensor(rng.permutation(items)), torch.as_tensor(grads)


def timed(fn, repeat: int) -> tuple[float, torch.Tensor]:
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds)), out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset-shape", choices=sorted(SHAPES), default="ml-100k")
    p.add_argument("--items", type=int, help="override the shape's number of items")
    p.add_argument("--rows", type=int, help="override the shape's rows per round")
    p.add_argument("--max-count", type=int, help="override the shape's largest item count")
    p.add_argument("--users", type=int, help="override the shape's users (f = 3%% of them)")
    p.add_argument("--f", type=int, help="rows trimmed / malicious rows assumed (default 3%% of users)")
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--loop-repeat", type=int, default=1, help="repeats of the (slow) loop baseline")
    p.add_argument("--no-loop", action="store_true", help="skip the loop baseline")
    p.add_argument("--aggregators", default="mean,median,trimmed_mean,krum,norm",
                   help=f"comma-separated, of: {','.join(LOOP_AGGREGATORS)}")
    p.add_argument("--data-root", default="results/data")
    p.add_argument("--attackers", type=int, default=0,
                   help="append one random row per item sent by this many attackers (a row with that count), as "
                        "Spattack-D uploads it; the loop gets the expanded copies (f defaults to it)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    n_items, rows, max_count, users = SHAPES[args.dataset_shape]
    split = Path(args.data_root) / args.dataset_shape
    custom = any(v is not None for v in (args.items, args.rows, args.max_count))
    if (split / "train.tsv").exists() and not custom:
        n_items, users, items, grads = split_uploads(split, args.dim)
        source = f"split {split}"
    else:
        n_items, rows, max_count = args.items or n_items, args.rows or rows, args.max_count or max_count
        items, grads = synthetic_uploads(n_items, rows, max_count, args.dim)
        source = "synthetic power law"
    users = args.users or users
    f = args.f if args.f is not None else args.attackers or int(0.03 * users)
    counts = None
    if args.attackers:  # one row per item sent by every attacker, as Spattack-D uploads it
        shared = torch.randn(n_items, args.dim, generator=torch.Generator().manual_seed(1)).to(grads) * 0.01
        counts = torch.cat([torch.ones_like(items), torch.full((n_items,), args.attackers)])
        items = torch.cat([items, torch.arange(n_items)])
        grads = torch.cat([grads, shared])
    per_item = torch.bincount(items, minlength=n_items, weights=None if counts is None else counts.double())
    print(f"{args.dataset_shape} ({source}): {n_items} items, {items.numel()} rows "
          f"({int(per_item.sum())} uploads), d={args.dim}, "
          f"max uploads/item {int(per_item.max())}, items without rows {int((per_item == 0).sum())}, "
          f"f={f}, {args.attackers} attackers, {args.threads} threads, median of {args.repeat} "
          f"(loop: {args.loop_repeat})\n")
    print("| aggregator | vectorised s | loop s | speed-up | max abs diff |")
    print("|---|---:|---:|---:|---:|")
    for name in args.aggregators.split(","):
        params = DEFENSES[name].bind(f=f, clip=1.0)
        aggregate(name, items, grads, n_items, counts=counts, **params)  # warm-up
        vec_s, vec = timed(lambda: aggregate(name, items, grads, n_items, counts=counts, **params), args.repeat)
        if args.no_loop:
            print(f"| {name} | {vec_s:.4f} | - | - | - |")
            continue
        expanded = (items, grads) if counts is None else (items.repeat_interleave(counts),
                                                          grads.repeat_interleave(counts, dim=0))
        loop_s, loop = timed(lambda: loop_aggregate(name, *expanded, n_items, **params), args.loop_repeat)
        diff = float((vec - loop).abs().max())
        print(f"| {name} | {vec_s:.4f} | {loop_s:.3f} | {loop_s / vec_s:.0f}x | {diff:.1e} |")


if __name__ == "__main__":
    main()
