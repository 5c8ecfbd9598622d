"""A round's rows grouped by item, and items bucketed by row count for batched kernels.

Rows of multiplicity one (`plain`) and rows sent by several clients (`heavy`, see
`SparseUpdates`) are kept apart: an item's plain rows fill a padded block of width P,
its few heavy rows a block of width H (usually 0 or 1) with their multiplicities, so a
kernel's cost follows the distinct rows. Items are bucketed by plain count,
(2^(e-1), 2^e] cut into `splits` equal ranges, each bucket padded to its own widths:
one item with thousands of rows does not pad the many small ones, and the Python loop
runs over ~log2(max n_j) buckets, never over items or rows. Buckets are cut into blocks
of at most `block_elements` padded values, which keeps every intermediate in cache.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch

from ..device import rows_at

# Sort with numpy on CPU tensors (several times faster than torch.sort there); False:
# torch's kernels, as on CUDA.
NUMPY_ON_CPU = True
# Padded values per block of the order-statistic kernels (median, trimmed mean).
BLOCK_ELEMENTS = 1 << 20


def finite_mask(grads: torch.Tensor) -> torch.Tensor | None:
    """(n_rows,) True on the rows holding no NaN/inf value; None when all are finite."""
    if bool(torch.isfinite(grads.sum())):  # cheap test; an overflowing sum takes the exact path
        return None
    return torch.isfinite(grads).all(1)


@dataclass
class _Part:
    """The rows of one kind (plain or heavy) of a round's batch, ordered by item (stable:
    upload order within). Both parts index the same `grads`: splitting copies no rows."""

    grads: torch.Tensor  # (n, d) the batch's finite rows, both kinds
    index: torch.Tensor  # (n,) position of each row in the round's batch
    weight: torch.Tensor | None  # (n,) multiplicity; None: all ones
    order: torch.Tensor  # (m,) this kind's rows: grads[order] lists item 0's rows, then item 1's...
    counts: torch.Tensor  # (n_items,) rows of this kind per item
    starts: torch.Tensor  # (n_items,) offsets into `order`

    @classmethod
    def of(cls, items, grads, index, weight, n_items: int, rows: torch.Tensor | None = None) -> "_Part":
        """rows: the row numbers of this kind (None: every row)."""
        own = items if rows is None else items[rows]
        counts = torch.bincount(own, minlength=n_items)
        order = stable_argsort(own)
        return cls(grads, index, weight, order if rows is None else rows[order], counts, torch.cumsum(counts, 0) - counts)

    def positions(self, ids: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(b, width) row numbers (into `grads`) of items `ids`, and the mask of real rows."""
        slot = torch.arange(width, device=ids.device)
        valid = slot < self.counts[ids].unsqueeze(1)
        pos = torch.where(valid, self.starts[ids].unsqueeze(1) + slot, 0)
        return self.order[pos] if self.order.numel() else pos, valid


@dataclass
class Groups:
    """The finite rows of a round, grouped by item. See the module docstring."""

    plain: _Part
    heavy: _Part
    totals: torch.Tensor  # (n_items,) rows of the expanded batch per item

    @classmethod
    def of(cls, items: torch.Tensor, grads: torch.Tensor, n_items: int,
           counts: torch.Tensor | None = None) -> "Groups":
        index = torch.arange(items.numel(), device=items.device)
        keep = finite_mask(grads)
        if keep is not None:
            items, grads, index = items[keep], grads[keep], index[keep]
            counts = None if counts is None else counts[keep]
        if counts is None or not bool((counts > 1).any()):
            plain = _Part.of(items, grads, index, None, n_items)
            return cls(plain, _Part.of(items, grads, index, None, n_items, rows=index[:0]), plain.counts)
        many = counts > 1
        plain = _Part.of(items, grads, index, None, n_items, rows=torch.nonzero(~many).squeeze(1))
        heavy = _Part.of(items, grads, index, counts, n_items, rows=torch.nonzero(many).squeeze(1))
        totals = plain.counts + torch.zeros_like(plain.counts).index_add_(0, items[many], counts[many])
        return cls(plain, heavy, totals)

    @property
    def n_items(self) -> int:
        return self.totals.numel()

    def zeros(self) -> torch.Tensor:
        g = self.plain.grads
        return g.new_zeros(self.n_items, g.shape[1])

    def buckets(self, splits=1, block_elements: int | None = None,
                cost=lambda width, heavy: width + heavy) -> Iterator["Bucket"]:
        """Items with rows, grouped by plain count ((2^(e-1), 2^e] cut into `splits`
        equal ranges, an int or a function of the exponents e (int64 tensor) giving one
        per item, at most 4096; items with heavy rows only form a group of their own), in
        blocks of at most `block_elements` / cost(P, H) items (at least one)."""
        present = torch.nonzero(self.totals).squeeze(1)
        if present.numel() == 0:
            return
        n = self.plain.counts[present]
        # counts in (2^(e-1), 2^e] have n - 1 = mantissa * 2^e, mantissa in [0.5, 1)
        mantissa, exponent = torch.frexp((n - 1).double())
        per = splits(exponent) if callable(splits) else torch.full_like(exponent, splits)
        level = exponent * 4096 + ((mantissa - 0.5) * 2 * per).floor().long().clamp_min(0)
        level = torch.where(n == 0, -1, level)
        for key in torch.unique(level).tolist():
            ids = present[level == key]
            width = max(1, int(self.plain.counts[ids].max()))  # >= 1: kernels index into it
            heavy = int(self.heavy.counts[ids].max())
            step = ids.numel() if block_elements is None else max(1, block_elements // max(1, cost(width, heavy)))
            for lo in range(0, ids.numel(), step):
                yield Bucket(self, ids[lo:lo + step], width, heavy)


@dataclass
class Bucket:
    """Items whose plain rows are padded to width P and heavy rows to width H."""

    groups: Groups
    ids: torch.Tensor  # (b,) item ids
    width: int  # P
    heavy_width: int  # H

    @property
    def n_plain(self) -> torch.Tensor:
        """(b,) plain rows per item."""
        return self.groups.plain.counts[self.ids]

    @property
    def totals(self) -> torch.Tensor:
        """(b,) rows of the expanded batch per item."""
        return self.groups.totals[self.ids]

    def plain_rows(self, fill: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """(b, P, d) plain rows of each item in upload order, padding set to `fill`, and
        the (b, P) mask of real rows."""
        pos, valid = self.groups.plain.positions(self.ids, self.width)
        return _gather(self.groups.plain, pos, valid, fill), valid

    def heavy_rows(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(b, H, d) heavy rows (padding 0) and (b, H) their multiplicities (padding 0)."""
        part = self.groups.heavy
        pos, valid = part.positions(self.ids, self.heavy_width)
        weight = torch.where(valid, part.weight[pos], 0) if part.order.numel() else pos
        return _gather(part, pos, valid, 0.0), weight

    def upload_index(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(b, P) and (b, H) positions of the rows in the round's batch (padding: -1)."""
        out = []
        for part, width in ((self.groups.plain, self.width), (self.groups.heavy, self.heavy_width)):
            pos, valid = part.positions(self.ids, width)
            out.append(torch.where(valid, part.index[pos], -1) if part.order.numel() else pos - 1)
        return out[0], out[1]


def _gather(part: _Part, pos: torch.Tensor, valid: torch.Tensor, fill: float) -> torch.Tensor:
    """(b, width, d) the rows at `pos` (b, width) of `part.positions`, `fill` where not valid."""
    d = part.grads.shape[1]
    if part.order.numel() == 0:
        return part.grads.new_full((*pos.shape, d), fill)
    rows = rows_at(part.grads, pos)
    padding = torch.nonzero(~valid.view(-1)).squeeze(1)  # only the padding is written, not the whole block
    return rows.view(-1, d).index_fill_(0, padding, fill).view(*pos.shape, d) if padding.numel() else rows


def use_numpy(x: torch.Tensor) -> bool:
    """Whether the kernels on `x` go through numpy (CPU tensors, unless NUMPY_ON_CPU is off)."""
    return NUMPY_ON_CPU and x.device.type == "cpu"


@cache
def _pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(threads, thread_name_prefix="spattack-rows")


def in_threads(job, rows: np.ndarray) -> None:
    """job(rows[a:b]) over consecutive slices of `rows`, in torch.get_num_threads()
    threads when the array is large enough to pay for them (numpy's sort and partition
    release the GIL)."""
    threads = min(torch.get_num_threads(), os.cpu_count() or 1, max(1, rows.size >> 16), max(1, rows.shape[0]))
    if threads == 1:
        job(rows)
        return
    cuts = np.linspace(0, rows.shape[0], threads + 1).astype(int)
    list(_pool(threads).map(lambda i: job(rows[cuts[i]:cuts[i + 1]]), range(threads)))


def sort_last(x: torch.Tensor) -> torch.Tensor:
    """Sort along the last dimension. On CPU numpy's vectorised sort (see `in_threads`)
    is several times faster than torch.sort; both give the same values."""
    if not use_numpy(x):
        return torch.sort(x, dim=-1).values
    a = np.array(x.numpy(), order="C")  # a copy: sorted in place below
    if a.size:
        in_threads(lambda rows: rows.sort(axis=-1), a.reshape(-1, a.shape[-1]))
    return torch.from_numpy(a)


def stable_argsort(keys: torch.Tensor) -> torch.Tensor:
    """(n,) int64 indices that sort the integer `keys` (n,), equal keys in their order.

    A round's benign uploads come sorted by item (`PairBatch`) and attacks append sorted
    runs: on CPU numpy's timsort finds the runs and merges them (ML-1M's 1.93M rows: 4 ms,
    against 120 ms for torch's sort). Keys with more than one descent in 64 (no long runs;
    timsort is then about 2x slower than torch) go to torch's sort."""
    if not use_numpy(keys):
        return torch.argsort(keys, stable=True)
    a = keys.numpy()
    if np.count_nonzero(a[1:] < a[:-1]) * 64 > a.size:
        return torch.argsort(keys, stable=True)
    return torch.from_numpy(np.argsort(a, kind="stable").astype(np.int64, copy=False))


def take(columns: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """columns[b, c, index[b, c]] (index (b, c) or (b,), broadcast over c)."""
    if index.dim() == 1:
        index = index.view(-1, 1).expand(-1, columns.shape[1])
    return columns.gather(2, index.unsqueeze(2)).squeeze(2)
