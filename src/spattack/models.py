"""Federated recommendation models: the interface the simulator drives, and their registry.

A new model is a class that satisfies `FederatedModel` and one `ModelSpec` entry in
`MODELS` (docs/extending.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from .fedgnn import FedGNN
from .fedmf import FedMF, PairBatch
from .named import Registry
from .updates import SparseUpdates


class FederatedModel(Protocol):
    """What `simulation.simulate` and the attacks use of a model.

    user_emb (n_users, dim) and item_emb (n_items, dim) float tensors; `pairs` the
    clients' training pairs (`fedmf.PairBatch`). Models with dense weights (FedGNN) also
    have `dense` (dense_dim,) and `dense_dim`, and a `dense_step`.
    """

    user_emb: torch.Tensor
    item_emb: torch.Tensor
    pairs: PairBatch

    def client_step(self, room: int = 0) -> tuple[SparseUpdates, SparseUpdates | None]:
        """Every benign client's local step: its item rows, and its dense rows (all of
        item 0) or None for a model without dense weights. `room`: rows an attack will
        append this round (a hint; a model may ignore it)."""

    def server_step(self, aggregated: torch.Tensor) -> None:
        """Apply the (n_items, dim) aggregate of the item rows."""

    def scores(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """(B, K) scores of items[b, k] for users[b]."""


# factory(data, dim, init_std, l2, lr, seed, device) -> FederatedModel
ModelFactory = Callable[..., FederatedModel]


@dataclass(frozen=True)
class ModelSpec:
    """One registered model: its factory (called as `factory(data, dim, init_std, l2, lr,
    seed, device)`, `interactions.Interactions` data, `torch.device` device) and its label
    in tables and figures."""

    factory: ModelFactory
    label: str


MODELS: Registry = Registry("model", {
    "fedmf": ModelSpec(FedMF, "FedMF"),
    "fedgnn": ModelSpec(FedGNN, "FedGNN"),
})
