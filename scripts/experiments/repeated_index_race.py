"""How often does `x[items] += rows` keep the first of two repeated rows?

The authors' server sums the benign rows with this indexed `+=`, whose result PyTorch
leaves undefined when `items` repeats an index (see leaky_omniscient_sum.py). Their client
uploads its positives and once-drawn negatives sorted, so a twice-drawn negative gives two
adjacent rows; the pair gradient sits in the second. This replays each client's layout on
the chosen device, with row k holding the value k + 1 in every column, and counts, per
column, which row survived: the share of "first" is the leak fraction f of
leaky_omniscient_sum.py.

    python scripts/experiments/repeated_index_race.py results/data/ml-1m --device cuda

Measured on CPU (torch 2.13, seed 0): with 1 thread f = 0 (ML-1M, 54,867 repeated runs);
with 2 threads the writes race on CPU too, but the last row still wins almost always
(f = 0.0001-0.001 on ML-1M, 0.0002 on ML-100K's 6,211 runs, varying between runs). On an
H200 (torch 2.11.0+cu130) the first row survives often: f = 0.36-0.37 on ML-1M, 0.37-0.38
on ML-100K, 0.35-0.39 on Steam (docs/gpu/, and docs/reproduction/README.md, ML-1M section).
"""

import argparse
import json
from contextlib import contextmanager

import numpy as np
import torch

from spattack.fedmf import sample_train_negatives
from spattack.interactions import Interactions


def client_layouts(data: Interactions, seed: int) -> list[np.ndarray]:
    """Per client, its positives and the negatives FedMF draws for `seed`, sorted."""
    negatives = sample_train_negatives(data, np.random.default_rng(seed))
    users = data.train_users
    bounds = np.searchsorted(users, np.arange(data.n_users + 1))
    return [np.sort(np.concatenate([data.indices[a:b], negatives[a:b]])) for a, b in zip(bounds[:-1], bounds[1:])]


def survivors(items: torch.Tensor, n_items: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply `x[items] += rows` (row k = k + 1) to zeros; per repeated run of an index,
    return the first position of the run and the surviving position of every column."""
    rows = torch.arange(1, len(items) + 1, dtype=torch.float32, device=items.device)
    x = torch.zeros(n_items, dim, device=items.device)
    x[items] += rows.unsqueeze(1).expand(-1, dim)
    first = torch.nonzero(torch.diff(items) == 0).flatten()
    first = first[(first == 0) | (items[first - 1] != items[first])]  # start of each run
    return first, x[items[first]].long() - 1


@contextmanager
def nondeterministic():
    """PyTorch's default kernels, as in the authors' code (it sets only cudnn.deterministic).
    `torch.use_deterministic_algorithms(True)`, which our simulation sets on CUDA and which
    stays set for the process, makes the indexed `+=` keep the last row on the GPU too."""
    before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(False)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


def measure(layouts: list[np.ndarray], n_items: int, dim: int, device: str) -> dict:
    """Share of columns of repeated rows in which the first row survived, with PyTorch's
    default (nondeterministic) kernels."""
    runs = first_wins = 0
    with nondeterministic():
        for layout in layouts:
            items = torch.as_tensor(layout, device=device)
            first, survived = survivors(items, n_items, dim)
            runs += len(first)
            first_wins += int((survived == first.unsqueeze(1)).sum())
    return {"repeated_runs": runs, "first_wins_fraction": first_wins / max(runs * dim, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("split", help="folder with train.tsv/test.tsv/users.tsv/items.tsv")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    data = Interactions.load(args.split)
    layouts = client_layouts(data, args.seed)
    for r in range(args.repeats):
        print(json.dumps({"device": args.device, "repeat": r, **measure(layouts, data.n_items, args.dim, args.device)}))


if __name__ == "__main__":
    main()
