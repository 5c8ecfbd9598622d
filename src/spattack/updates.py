"""The batch of sparse uploads of one federated round."""

from __future__ import annotations

from collections.abc import Callable

import torch


class SparseUpdates:
    """Rows of (item, gradient) uploaded in one round, each with the clients that sent it.

    A row may stand for c identical uploads from c clients (its multiplicity, `counts`):
    colluding attackers that upload one value for an item send it once with its count,
    so a round costs what its distinct rows cost, not attackers x items. Every aggregator
    gives on such a batch the result it gives on the expanded batch (`expanded()`), in
    which each row is repeated `counts` times in place.

    clients: int64 (sum of counts,): the senders of every row, row by row: row r was sent
        by clients[o_r : o_r + counts[r]], o_r = counts[:r].sum(). With counts None (one
        sender per row) it is aligned with the rows. May be given as a function that
        builds it: it is then built on first use (aggregators do not need it).
    items: int64 (n_rows,); grads: float (n_rows, d).
    counts: int64 (n_rows,) >= 1, or None for all ones.
    """

    def __init__(self, clients: torch.Tensor | Callable[[], torch.Tensor], items: torch.Tensor,
                 grads: torch.Tensor, counts: torch.Tensor | None = None, room: "UploadBuffer | None" = None):
        self._clients = clients
        self.items, self.grads, self.counts = items, grads, counts
        self._room = room  # storage right after these rows, for `concat`

    @property
    def clients(self) -> torch.Tensor:
        if callable(self._clients):
            self._clients = self._clients()
        return self._clients

    def __len__(self) -> int:
        return int(self.items.numel())

    def weights(self) -> torch.Tensor:
        """int64 (n_rows,) the multiplicity of every row (ones where `counts` is None)."""
        return torch.ones_like(self.items) if self.counts is None else self.counts

    def row_of_upload(self) -> torch.Tensor:
        """int64 (sum of counts,) the row each entry of `clients` sent."""
        rows = torch.arange(len(self), device=self.items.device)
        return rows if self.counts is None else rows.repeat_interleave(self.counts)

    def expanded(self) -> "SparseUpdates":
        """The same uploads with one row per sender (multiplicity one everywhere)."""
        if self.counts is None:
            return self
        return SparseUpdates(self.clients, self.items.repeat_interleave(self.counts),
                             self.grads.repeat_interleave(self.counts, dim=0))

    @staticmethod
    def empty(dim: int, device: torch.device | str = "cpu", dtype=torch.float32) -> "SparseUpdates":
        """A batch with no rows."""
        long = torch.empty(0, dtype=torch.long, device=device)
        return SparseUpdates(long, long.clone(), torch.empty(0, dim, dtype=dtype, device=device))

    @staticmethod
    def concat(*batches: "SparseUpdates") -> "SparseUpdates":
        """Append batches (e.g. benign rows then malicious rows). When the first batch
        comes from an `UploadBuffer` with room for the others, they are written there and
        the first batch's rows are not copied."""
        batches = [b for b in batches if len(b)] or list(batches[:1])
        if len(batches) == 1:
            return batches[0]
        senders = [b._clients for b in batches]  # not the batches: their grads may be freed
        clients = lambda: torch.cat([s() if callable(s) else s for s in senders])  # noqa: E731
        with_counts = any(b.counts is not None for b in batches)
        first, rest = batches[0], batches[1:]
        if first._room is not None and first._room.fits(first, rest):
            items, grads, counts = first._room.append(first, rest)
            return SparseUpdates(clients, items, grads, counts if with_counts else None)
        counts = torch.cat([b.weights() for b in batches]) if with_counts else None
        return SparseUpdates(clients, torch.cat([b.items for b in batches]), torch.cat([b.grads for b in batches]),
                             counts)


class UploadBuffer:
    """Storage reused every round for a fixed batch of plain rows (the benign uploads)
    plus `room` rows after them, where `SparseUpdates.concat` appends other batches (an
    attack's) without copying the first: at ML-1M's size that copy costs about as much as
    a clean round's aggregation."""

    def __init__(self, items: torch.Tensor, dim: int, room: int, dtype=torch.float32):
        n, device = items.numel(), items.device
        self.rows, self.room = n, room
        self.grads = torch.empty(n + room, dim, dtype=dtype, device=device)
        if room:  # item ids and counts of the appended rows go after the fixed rows'
            self.items = torch.empty(n + room, dtype=torch.long, device=device)
            self.items[:n] = items
            self.counts = torch.ones(n + room, dtype=torch.long, device=device)
        else:
            self.items = items

    def batch(self, clients: torch.Tensor, grads: torch.Tensor) -> SparseUpdates:
        """The fixed rows with gradients `grads` (a view of `self.grads[:rows]`)."""
        return SparseUpdates(clients, self.items[: self.rows], grads, None, room=self)

    def fits(self, first: SparseUpdates, rest: list[SparseUpdates]) -> bool:
        return (self.room and first.grads.data_ptr() == self.grads.data_ptr() and len(first) == self.rows
                and sum(len(b) for b in rest) <= self.room and all(b.grads.dtype == self.grads.dtype for b in rest))

    def append(self, first: SparseUpdates, rest: list[SparseUpdates]):
        """(items, grads, counts) of the first batch followed by `rest`, in this storage."""
        end = self.rows
        for b in rest:
            span = slice(end, end + len(b))
            self.items[span] = b.items
            self.grads[span] = b.grads
            self.counts[span] = b.weights()
            end += len(b)
        return self.items[:end], self.grads[:end], self.counts[:end]
