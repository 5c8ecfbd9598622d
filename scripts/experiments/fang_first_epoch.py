"""How hard does `fang` push against the benign clients in the first round, per dataset?

Our Fang reading collapses ML-1M (HR@10 0.071, paper 0.398) but only slows ML-100K (0.333,
paper 0.292) and matches Steam. This builds one round of a Fang cell (Mean, 3%, seed 0)
and compares, per item with benign rows, the sum of the attackers' rows with the sum of
the benign rows: their norm ratio, and whether the Mean of all rows points against the
benign sum (cosine < 0), i.e. whether the round moves the item away from where the benign
clients want it.

    python scripts/experiments/fang_first_epoch.py results/data/ml-100k results/data/ml-1m results/data/steam

Measured (1 thread; docs/reproduction/README.md, ML-1M section):
- ML-100K: 29 attackers; median norm ratio 1.63; the Mean points against the benign sum
  for 82.3% of items.
- ML-1M: 186 attackers; 2.17; 93.3%.
- Steam: 116 attackers; 4.61; 99.8%.
"""

import argparse

import numpy as np
import torch

from spattack.attacks import make_attack
from spattack.interactions import Interactions
from spattack.models import MODELS
from spattack.simulation import RunConfig, attack_context


def item_sums(uploads, n_items: int, dim: int) -> torch.Tensor:
    return torch.zeros(n_items, dim, dtype=uploads.grads.dtype).index_add_(0, uploads.items, uploads.grads)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("splits", nargs="+", help="folders with train.tsv/test.tsv/users.tsv/items.tsv")
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = RunConfig(attack="fang", ratio=3.0)
    device = torch.device("cpu")
    for split in args.splits:
        data = Interactions.load(split)
        model = MODELS[cfg.model].factory(data, cfg.dim, cfg.init_std, cfg.l2, cfg.lr, cfg.seed, device)
        ctx = attack_context(data, cfg, model, device)
        with torch.no_grad():
            benign = model.client_step()[0]
            malicious = make_attack(cfg.attack, ctx).uploads(1, benign, model)
        b, m = item_sums(benign, data.n_items, cfg.dim), item_sums(malicious, data.n_items, cfg.dim)
        has_benign = torch.bincount(benign.items, minlength=data.n_items) > 0
        ratio = (m.norm(dim=1) / b.norm(dim=1))[has_benign].numpy()
        against = (torch.nn.functional.cosine_similarity(b + m, b, dim=1) < 0)[has_benign].numpy()
        print(f"{split}: {ctx.n_malicious} attackers; median |attackers' sum| / |benign sum| "
              f"{np.median(ratio):.2f}; Mean points against the benign sum for {100 * against.mean():.1f}% of items")


if __name__ == "__main__":
    main()
