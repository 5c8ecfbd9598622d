"""Attacks: a registry from config names to attack classes.

An attack is an object with `uploads(epoch, benign, model) -> SparseUpdates`: the rows
its malicious clients upload this round, appended to the benign batch before
aggregation. Malicious client ids are n_benign .. n_benign + n_malicious - 1.
A new attack is one class plus one registry line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..malicious import n_malicious  # noqa: F401  (re-exported)
from ..updates import SparseUpdates


@dataclass
class AttackContext:
    """What an attack may know about the federation it joins."""

    n_benign: int
    n_malicious: int
    n_items: int
    dim: int
    popularity: np.ndarray  # item degree over train + test
    max_items_per_client: int  # the largest number of items one benign client uploads
    profile_size: int  # median number of training positives of a benign client
    defense: str
    grad_limit: float
    lr: float
    l2: float
    init_std: float
    seed: int
    device: torch.device

    @property
    def malicious_ids(self) -> torch.Tensor:
        return torch.arange(self.n_benign, self.n_benign + self.n_malicious, device=self.device)

    def generator(self, salt: int = 0) -> torch.Generator:
        """A CPU generator seeded for this attack (draws are moved to the device)."""
        return torch.Generator().manual_seed(self.seed * 1_000_003 + salt)

    def dense_rows(self, values: torch.Tensor) -> SparseUpdates:
        """Every malicious client uploads `values[c, j]` (or `values[j]`) for every item j."""
        n_mal, n_items = self.n_malicious, self.n_items
        if values.dim() == 2:
            values = values.unsqueeze(0).expand(n_mal, n_items, self.dim)
        clients = self.malicious_ids.repeat_interleave(n_items)
        items = torch.arange(n_items, device=self.device).repeat(n_mal)
        return SparseUpdates(clients, items, values.reshape(n_mal * n_items, self.dim))


class NoAttack:
    """Clean training: no malicious client uploads anything."""

    def __init__(self, ctx: AttackContext):
        self.ctx = ctx

    def uploads(self, epoch: int, benign: SparseUpdates, model) -> SparseUpdates:
        return SparseUpdates.empty(self.ctx.dim, self.ctx.device, benign.grads.dtype)


from .data_poisoning import FedAttack, LabelFlip  # noqa: E402
from .model_poisoning import LIE, Cluster, Fang, Gaussian  # noqa: E402
from .spattack import InfAttack, NonFinite, SpattackLD, SpattackLS, SpattackOD, SpattackOS  # noqa: E402

ATTACKS: dict[str, type] = {
    "none": NoAttack,
    "labelflip": LabelFlip,
    "fedattack": FedAttack,
    "gaussian": Gaussian,
    "lie": LIE,
    "cluster": Cluster,
    "fang": Fang,
    "spattack-o-d": SpattackOD,
    "spattack-o-s": SpattackOS,
    "spattack-l-d": SpattackLD,
    "spattack-l-s": SpattackLS,
    "nan": NonFinite,
    "inf": InfAttack,
}


def make_attack(name: str, ctx: AttackContext):
    """Instantiate the attack registered under `name`."""
    try:
        cls = ATTACKS[name]
    except KeyError:
        raise ValueError(f"unknown attack '{name}'; choose one of: {', '.join(sorted(ATTACKS))}") from None
    return cls(ctx)
