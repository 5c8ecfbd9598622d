"""Attacks: a registry from config names to attack classes.

An attack is an object with `uploads(epoch, benign, model) -> SparseUpdates`: the rows
its malicious clients upload this round, appended to the benign batch before
aggregation. Malicious client ids are n_benign .. n_benign + n_malicious - 1. A value
that several attackers upload for one item is one row with their number as its
multiplicity (`SparseUpdates`): the server's cost then follows the distinct rows.
A new attack is one class and one `AttackSpec` entry in `ATTACKS` (docs/extending.md).

Models with dense weights (FedGNN) make every client upload one dense row as well (a
SparseUpdates whose rows all belong to item 0, width `ctx.dense_dim`); for those the
loop also calls `dense_uploads(epoch, benign_dense, model) -> SparseUpdates`, after
`uploads` of the same epoch. Each attack module documents its dense rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from ..aggregators import DEFENSES
from ..malicious import n_malicious  # noqa: F401  (re-exported)
from ..named import Registry
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
    clips: bool | None = None  # the defense clips rows to grad_limit; None = as its DEFENSES entry says

    @property
    def server_clip(self) -> float | None:
        """The L2 bound the server clips every row to before aggregating, or None."""
        clips = self.clips
        if clips is None:
            entry = DEFENSES.get(self.defense)
            clips = entry is not None and "clip" in entry.params
        return self.grad_limit if clips else None

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


class Attack(Protocol):
    """What the simulator calls on an attack (see the module docstring)."""

    def uploads(self, epoch: int, benign: SparseUpdates, model) -> SparseUpdates:
        """The malicious rows of this round (clients n_benign.., item rows of width dim)."""

    def dense_uploads(self, epoch: int, benign: SparseUpdates, model) -> SparseUpdates:
        """The malicious dense rows of this round (only called for models with dense weights)."""


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
from .adaptive import EvadeH, EvadeL, EvadeO  # noqa: E402

@dataclass(frozen=True)
class AttackSpec:
    """Everything about one registered attack.

    cls: built with an `AttackContext`; has `uploads(epoch, benign, model)` and, for models
        with dense weights, `dense_uploads(epoch, benign_dense, model)` (module docstring).
    label: its name in tables and figures.
    sparse: each attacker uploads only some items, so the malicious rows per item vary;
        defenses that assume a fixed number of them (`DefenseSpec.fixed_f`) refuse it.
    omniscient: knows the benign uploads of the round (Fig. 3 runs it at the config's
        `omniscient_ratios`, the others at `limited_ratios`).
    paper_baseline: the paper's attack this one is another reading of; Table 3 compares
        it with that attack's number.
    short_label: its label in captions' lists (default: `label`).
    """

    cls: type
    label: str
    sparse: bool = False
    omniscient: bool = False
    paper_baseline: str | None = None
    short_label: str = ""


ATTACKS: Registry = Registry("attack", {
    "none": AttackSpec(NoAttack, "Clean"),
    "labelflip": AttackSpec(LabelFlip, "LabelFlip"),
    "fedattack": AttackSpec(FedAttack, "FedAttack"),
    "labelflip-dense": AttackSpec(LabelFlipDense, "LabelFlip (dense rows)", paper_baseline="labelflip"),
    "fedattack-dense": AttackSpec(FedAttackDense, "FedAttack (dense rows)", paper_baseline="fedattack"),
    "gaussian": AttackSpec(Gaussian, "Gaussian"),
    "lie": AttackSpec(LIE, "LIE"),
    "cluster": AttackSpec(Cluster, "Cluster"),
    "fang": AttackSpec(Fang, "Fang"),
    "fang-full": AttackSpec(FangFull, "Fang (exact extremes)", paper_baseline="fang"),
    "spattack-o-d": AttackSpec(SpattackOD, "Spattack O-D", short_label="O-D", omniscient=True),
    "spattack-o-s": AttackSpec(SpattackOS, "Spattack O-S", short_label="O-S", sparse=True, omniscient=True),
    "spattack-l-d": AttackSpec(SpattackLD, "Spattack L-D", short_label="L-D"),
    "spattack-l-s": AttackSpec(SpattackLS, "Spattack L-S", short_label="L-S", sparse=True),
    "evade-o": AttackSpec(EvadeO, "Evade-O (adaptive)", short_label="Evade-O", sparse=True, omniscient=True),
    "evade-l": AttackSpec(EvadeL, "Evade-L (adaptive)", short_label="Evade-L", sparse=True),
    "evade-h": AttackSpec(EvadeH, "Evade-H (adaptive)", short_label="Evade-H", sparse=True, omniscient=True),
    "nan": AttackSpec(NonFinite, "NaN rows"),
    "inf": AttackSpec(InfAttack, "inf rows"),
})


def refusal(defense: str, attack: str) -> str | None:
    """Why the registered `defense` does not run against `attack`, or None if it does."""
    d, a = DEFENSES[defense], ATTACKS.entry(attack)
    if d.fixed_f and a.sparse:
        return (f"{defense} assumes a fixed number of malicious rows per item, which the sparse attack "
                f"{attack} does not upload; the paper does not run this pair. Use a defense without a "
                f"fixed f (e.g. mean, median, norm) with {attack}, or a dense attack with {defense}.")
    return None


def make_attack(name: str, ctx: AttackContext):
    """Instantiate the attack registered under `name` for the run described by `ctx`.

    Raises ValueError for an unknown name or a pair the defense refuses (`refusal`)."""
    entry = ATTACKS.entry(name)
    reason = refusal(ctx.defense, name) if ctx.defense in DEFENSES else None
    if reason:
        raise ValueError(reason)
    return entry.cls(ctx)
