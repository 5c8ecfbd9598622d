"""Attacks: a registry from config names to attack classes.

An attack is an object with `uploads(epoch, benign, model) -> SparseUpdates`: the rows
its malicious clients upload this round, appended to the benign batch before
aggregation. Malicious client ids are n_benign .. n_benign + n_malicious - 1. A value
that several attackers upload for one item is one row with their number as its
multiplicity (`SparseUpdates`): the server's cost then follows the distinct rows.
A new attack is one class plus one registry line.

Models with dense weights (FedGNN) make every client upload one dense row as well (a
SparseUpdates whose rows all belong to item 0, width `ctx.dense_dim`); for those the
loop also calls `dense_uploads(epoch, benign_dense, model) -> SparseUpdates`, after
`uploads` of the same epoch. Each attack module documents its dense rule.
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
    dense_dim: int = 0  # width of the model's dense row (FedGNN's GNN weights); 0 = none

    @property
    def malicious_ids(self) -> torch.Tensor:
        return torch.arange(self.n_benign, self.n_benign + self.n_malicious, device=self.device)

    def generator(self, salt: int = 0) -> torch.Generator:
        """A CPU generator seeded for this attack (draws are moved to the device)."""
        return torch.Generator().manual_seed(self.seed * 1_000_003 + salt)

    def dense_rows(self, values: torch.Tensor) -> SparseUpdates:
        """Every malicious client uploads `values[c, j]` (n_malicious, n_items, dim) for
        every item j; or `values[j]` (n_items, dim), which all of them send, as one row
        per item with multiplicity n_malicious."""
        n_mal, n_items = self.n_malicious, self.n_items
        if values.dim() == 2:
            return self.shared_rows(torch.arange(n_items, device=self.device), values)
        clients = self.malicious_ids.repeat_interleave(n_items)
        items = torch.arange(n_items, device=self.device).repeat(n_mal)
        return SparseUpdates(clients, items, values.reshape(n_mal * n_items, self.dim))

    def shared_rows(self, items: torch.Tensor, values: torch.Tensor) -> SparseUpdates:
        """Every malicious client uploads values[r] for item items[r]: one row each, with
        multiplicity n_malicious."""
        ids = self.malicious_ids
        return SparseUpdates(lambda: ids.repeat(items.numel()), items, values,
                             torch.full_like(items, self.n_malicious))

    def dense_param_rows(self, values: torch.Tensor) -> SparseUpdates:
        """Every malicious client uploads `values[c]` (n_malicious, dense_dim), or all of
        them `values` (dense_dim,) or (1, dense_dim), as their dense row (item 0)."""
        values = values.reshape(-1, self.dense_dim)
        if values.shape[0] == 1:
            return self.shared_rows(torch.zeros(1, dtype=torch.long, device=self.device), values)
        clients = self.malicious_ids
        return SparseUpdates(clients, torch.zeros_like(clients), values.expand(self.n_malicious, -1))


class NoAttack:
    """Clean training: no malicious client uploads anything."""

    def __init__(self, ctx: AttackContext):
        self.ctx = ctx

    def uploads(self, epoch: int, benign: SparseUpdates, model) -> SparseUpdates:
        return SparseUpdates.empty(self.ctx.dim, self.ctx.device, benign.grads.dtype)

    def dense_uploads(self, epoch: int, benign: SparseUpdates, model) -> SparseUpdates:
        return SparseUpdates.empty(self.ctx.dense_dim, self.ctx.device, benign.grads.dtype)


from .data_poisoning import FedAttack, FedAttackDense, LabelFlip, LabelFlipDense  # noqa: E402
from .model_poisoning import LIE, Cluster, Fang, FangFull, Gaussian  # noqa: E402
from .spattack import InfAttack, NonFinite, SpattackLD, SpattackLS, SpattackOD, SpattackOS  # noqa: E402

ATTACKS: dict[str, type] = {
    "none": NoAttack,
    "labelflip": LabelFlip,
    "fedattack": FedAttack,
    "labelflip-dense": LabelFlipDense,
    "fedattack-dense": FedAttackDense,
    "gaussian": Gaussian,
    "lie": LIE,
    "cluster": Cluster,
    "fang": Fang,
    "fang-full": FangFull,
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
