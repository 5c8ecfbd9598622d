"""The batch of sparse uploads of one federated round."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class SparseUpdates:
    """Rows of (client, item, gradient) uploaded in one round.

    Benign clients and attackers produce batches of this form; `concat` appends them so
    every aggregator sees all rows of an item the same way, whoever sent them.
    """

    clients: torch.Tensor  # int64 (n_rows,)
    items: torch.Tensor  # int64 (n_rows,)
    grads: torch.Tensor  # float (n_rows, d)

    def __len__(self) -> int:
        return int(self.items.numel())

    @staticmethod
    def empty(dim: int, device: torch.device | str = "cpu", dtype=torch.float32) -> "SparseUpdates":
        """A batch with no rows."""
        long = torch.empty(0, dtype=torch.long, device=device)
        return SparseUpdates(long, long.clone(), torch.empty(0, dim, dtype=dtype, device=device))

    @staticmethod
    def concat(*batches: "SparseUpdates") -> "SparseUpdates":
        """Append batches (e.g. benign rows then malicious rows)."""
        return SparseUpdates(
            torch.cat([b.clients for b in batches]),
            torch.cat([b.items for b in batches]),
            torch.cat([b.grads for b in batches]),
        )
