"""Does a leaky benign sum explain the paper's above-random Spattack-O?

The authors' server sums the benign rows with an indexed `+=`, which does not accumulate
repeated indices. A client that drew a negative twice uploads two rows for that item: one
with only the L2 term, one with the pair gradient too. Which write survives the `+=` is
unspecified; on CPU the last (the pair row, so only an L2 term leaks) survives almost
always (repeated_index_race.py), a GPU kernel writes both rows concurrently. When the first survives, the pair
gradient is missing from the sum the omniscient attacker cancels. This runs one
Spattack-O cell in which, every epoch, each such (client, item) row leaks its pair
gradient with probability `--leak-fraction` (1.0: the worst case, every one leaks).

    python scripts/experiments/leaky_omniscient_sum.py results/data/ml-1m --leak-fraction 0.25

Measured (Spattack O-D, Mean, 3%, seed 0, 200 epochs, every row leaking) HR@10 against
the run without leak: Steam 0.0911 vs 0.0903 (paper 0.1287), ML-100K 0.2354 vs 0.1156
(paper 0.0944), ML-1M 0.3702 vs 0.0977 (paper 0.1679). Other fractions:
docs/reproduction/README.md (ML-1M section).
"""

import argparse
import json

import numpy as np
import torch

from spattack.attacks import ATTACKS, spattack
from spattack.fedmf import sample_train_negatives
from spattack.interactions import Interactions
from spattack.simulation import RunConfig, simulate
from spattack.updates import SparseUpdates


def twice_drawn_negatives(data: Interactions, seed: int) -> torch.Tensor:
    """Sorted keys client * n_items + item of the negatives a client drew more than once,
    with the negatives FedMF draws for `seed`."""
    negatives = sample_train_negatives(data, np.random.default_rng(seed))
    keys, counts = np.unique(data.train_users.astype(np.int64) * data.n_items + negatives, return_counts=True)
    return torch.as_tensor(keys[counts > 1])


def leaky_attack(base: type, data: Interactions, seed: int, fraction: float) -> type:
    """The Spattack-O class `base` (`SpattackOD`, `SpattackOS`) with the twice-drawn
    negatives' pair gradients left out of B_j, each with probability `fraction`, drawn
    afresh every epoch."""
    if not (issubclass(base, spattack.Spattack) and base.omniscient):
        raise ValueError(f"the leak is in the benign sum that Spattack-O cancels; {base.__name__} is not one")
    repeated = twice_drawn_negatives(data, seed)

    class LeakySpattack(base):
        def __init__(self, ctx):
            super().__init__(ctx)
            self.leak_gen = torch.Generator().manual_seed(seed)

        def uploads(self, epoch, benign, model):
            key = benign.clients * data.n_items + benign.items
            hit = torch.isin(key, repeated) & (torch.rand(key.shape, generator=self.leak_gen) < fraction)
            leaked = benign.grads[hit] - self.ctx.l2 * model.item_emb[benign.items[hit]]
            sums = spattack.benign_item_sums(benign, self.ctx).index_add_(0, benign.items[hit], leaked, alpha=-1)
            per_item = -sums / self.attackers_per_item
            return SparseUpdates(self.senders, self.items, per_item[self.items].to(benign.grads.dtype), self.counts)

    return LeakySpattack


def run(data: Interactions, cfg: RunConfig, fraction: float) -> dict:
    """One Spattack-O cell with the leak; returns its final metrics."""
    attack = leaky_attack(ATTACKS.entry(cfg.attack).cls, data, cfg.seed, fraction)
    return simulate(data, cfg, progress=False, attack=attack).summary["final"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("split", help="folder with train.tsv/test.tsv/users.tsv/items.tsv")
    p.add_argument("--attack", default="spattack-o-d", choices=["spattack-o-d", "spattack-o-s"])
    p.add_argument("--ratio", type=float, default=3.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--leak-fraction", type=float, default=1.0,
                   help="probability that a twice-drawn negative's pair gradient leaks, per epoch")
    args = p.parse_args()
    data = Interactions.load(args.split)
    print(f"{twice_drawn_negatives(data, args.seed).numel()} (client, item) rows with a twice-drawn negative")
    cfg = RunConfig(attack=args.attack, ratio=args.ratio, seed=args.seed, threads=args.threads)
    print(json.dumps(run(data, cfg, args.leak_fraction)))


if __name__ == "__main__":
    main()
