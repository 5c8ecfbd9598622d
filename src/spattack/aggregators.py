"""Sparse robust aggregation: every aggregator runs per item, over the rows uploaded for it.

The server receives a batch of rows (item, gradient); item j's result is computed from
the n_j rows of item j only (the paper's sparse aggregation). All aggregators are
vectorised over items: rows are ordered by item (stable, so rows of one item keep their
upload order) and items are bucketed by row count, (2^(e-1), 2^e] (Krum: quarters of
it), each bucket padded to its own largest count, so one item with thousands of rows
does not pad the many small ones. A bucket is one batched tensor op: the Python loop
runs over the ~log2(max n_j) buckets, never over items or rows. The same code runs on
CPU and CUDA (the device of the inputs); on CPU, sorting and selection go through
numpy's vectorised kernels, several times faster than torch's there.

Definitions (n_j = rows of item j after dropping non-finite rows):

- An item with no row gets a zero row.
- Non-finite input: `mean` uses every row, so a NaN/inf row makes its item non-finite
  (the training loop detects the divergence). The robust aggregators (`median`,
  `trimmed_mean`, `krum`, `norm`) first drop every row holding any NaN or +-inf value;
  an item whose rows are all dropped gets a zero row. They never output NaN.
- `median`: coordinate-wise; mean of the two middle values for even n_j.
- `trimmed_mean(f)`: per coordinate, drop the f values farthest from the coordinate's
  median and average the n_j - f others. Of two values equally far from the median, the
  larger one is dropped first. When f >= n_j nothing would remain (the authors average
  an empty set and get NaN): the item falls back to its coordinate-wise median.
- `krum(f)`: each row is scored by the sum of squared L2 distances to its m nearest
  other rows, with m = n_j - f - 2 if n_j > f + 2, m = n_j - f if f < n_j <= f + 2 and
  m = n_j - 1 if n_j <= f (PROTOCOL.md's rule, not monotone in n_j: with f = 2, four rows
  score 2 neighbours, five rows 1), clamped to [1, n_j - 1]. The row with the lowest
  score is returned unchanged; ties go to the earliest uploaded row; a single row is
  returned as is. Distances come from the Gram matrix of the item's rows after centring
  on their mean and scaling by a power of two (which cannot overflow). An item whose rows
  are mostly copies of each other (colluding attackers upload one row many times) is
  scored on its distinct rows, each weighted by its number of copies: the same choice
  (up to rounding at near-ties), at a cost that grows with the distinct rows instead of
  all rows (one Steam round under Spattack-D at 15%: 2.0 s instead of 30.6 s, 2 threads).
- `norm(clip=1.0)`: every row is scaled to L2 norm <= clip, then averaged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch

# Krum materialises (bucket items, P, P) distance blocks: cap one block's elements.
KRUM_BLOCK_ELEMENTS = 1 << 24
# Sort and select with numpy on CPU tensors (False: torch's kernels, as on CUDA).
NUMPY_ON_CPU = True
# Krum works on an item's distinct rows when they are at most this share of its rows.
DISTINCT_SHARE = 0.2


def aggregate(name: str, items: torch.Tensor, grads: torch.Tensor, n_items: int, **params) -> torch.Tensor:
    """Aggregate the uploaded rows of every item with the aggregator `name`.

    items: int64 (n_rows,), grads: float (n_rows, d). Returns (n_items, d) on the device
    and in the dtype of `grads`. `params` go to the aggregator: `f` for trimmed_mean and
    krum, `clip` for norm.
    """
    if name not in AGGREGATORS:
        raise ValueError(f"unknown aggregator '{name}'; valid names: {', '.join(sorted(AGGREGATORS))}")
    return AGGREGATORS[name](items, grads, n_items, **params)


def mean(items: torch.Tensor, grads: torch.Tensor, n_items: int) -> torch.Tensor:
    """Coordinate-wise mean per item; non-finite rows propagate."""
    out = grads.new_zeros(n_items, grads.shape[1]).index_add_(0, items, grads)
    counts = torch.bincount(items, minlength=n_items).clamp_min_(1)
    return out.div_(counts.unsqueeze(1).to(grads.dtype))


def median(items: torch.Tensor, grads: torch.Tensor, n_items: int) -> torch.Tensor:
    """Coordinate-wise median per item (mean of the two middle values for even counts)."""
    groups = _Groups.of(items, grads, n_items)
    out = groups.zeros()
    for bucket in groups.buckets():
        out[bucket.ids] = bucket.median(bucket.sorted_columns())
    return out


def trimmed_mean(items: torch.Tensor, grads: torch.Tensor, n_items: int, f: int) -> torch.Tensor:
    """Per item and coordinate, the mean of the n_j - f values closest to the median.

    Values are sorted per column, so the kept values are a window of the sorted column,
    found with f comparisons (see `_window_mean`). Of a value below and a value above the
    median at equal distance, the one above is dropped first. Items with n_j <= f get
    their median.
    """
    f = _check_f(f)
    groups = _Groups.of(items, grads, n_items)
    out = groups.zeros()
    for bucket in groups.buckets():
        columns = bucket.sorted_columns()
        med = bucket.median(columns)
        trim = bucket.counts > f
        if bool(trim.any()):
            trimmed = _window_mean(columns, bucket.counts.clamp_min(f + 1), med, f)
            med = torch.where(trim.unsqueeze(1), trimmed, med)
        out[bucket.ids] = med
    return out


def krum(items: torch.Tensor, grads: torch.Tensor, n_items: int, f: int) -> torch.Tensor:
    """Per item, the uploaded row closest (summed squared distance) to its m nearest rows."""
    f = _check_f(f)
    groups = _Groups.of(items, grads, n_items)
    out = groups.zeros()
    distinct = _distinct_rows(groups)
    if distinct is not None:  # items made mostly of repeated rows: Krum over distinct rows
        _krum_distinct(out, groups.counts, *distinct, f)
        done = torch.zeros(n_items, dtype=torch.bool, device=out.device)
        done[distinct[0]] = True
        groups = replace(groups, counts=torch.where(done, 0, groups.counts))
    # finer buckets: the padding costs (P / n)^2 here
    buckets = list(groups.buckets(splits=4, block_elements=KRUM_BLOCK_ELEMENTS))
    # one buffer for every block's distances: fresh large tensors cost page faults
    work = groups.grads.new_empty(max((b.ids.numel() * b.width**2 for b in buckets), default=0))
    for bucket in buckets:
        block = (bucket.ids.numel(), bucket.width, bucket.width)
        best = _krum_choice(bucket.rows(), bucket.counts, f, work[: math.prod(block)].view(block))
        out[bucket.ids] = groups.row(bucket.ids, best)
    return out


def _distinct_rows(groups: "_Groups") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """The distinct rows of the items whose rows are mostly repeats (at most DISTINCT_SHARE
    of an item's rows distinct): (item, row values, multiplicity) per distinct row, ordered
    by item and, within an item, by first upload. None when no item qualifies.

    Colluding attackers often upload the same row (every Spattack-D attacker uploads one
    row per item), which makes Krum's pairwise distances mostly repeats. Rows are sorted by
    item, then by a hash of their values (stable: upload order among equal hashes); equal
    hashes pick the candidate items, and neighbours in that order that are equal bit for
    bit form one group. Equal rows that do not end up side by side stay apart, which costs
    speed, never exactness.
    """
    n_items = groups.counts.numel()
    if groups.order.numel() == 0:
        return None
    item = torch.repeat_interleave(torch.arange(n_items, device=groups.grads.device), groups.counts)
    weights = torch.randn(groups.grads.shape[1], generator=torch.Generator().manual_seed(0)).to(groups.grads)
    key = item + (0.25 + 0.5 * torch.sigmoid(groups.grads @ weights)[groups.order].double())
    by = torch.argsort(key, stable=True)  # positions in item order
    key = key[by]
    new_hash = torch.cat([key.new_ones(1, dtype=torch.bool), key[1:] != key[:-1]])
    candidates = torch.bincount(item[by][new_hash], minlength=n_items) <= DISTINCT_SHARE * groups.counts
    by = by[candidates[item[by]]]
    if by.numel() == 0:
        return None
    rows, item = groups.grads[groups.order[by]], item[by]
    starts = torch.ones(by.numel(), dtype=torch.bool, device=rows.device)
    starts[1:] = (item[1:] != item[:-1]) | (rows[1:] != rows[:-1]).any(1)
    multiplicity = torch.bincount(torch.cumsum(starts, 0) - 1)
    first = by[starts]  # a group's first member is its earliest upload (stable sort)
    repeated = torch.bincount(item[starts], minlength=n_items) <= DISTINCT_SHARE * groups.counts
    keep = repeated[item[starts]]
    order = torch.argsort(first[keep])
    return item[starts][keep][order], rows[starts][keep][order], multiplicity[keep][order]


def _krum_distinct(out: torch.Tensor, counts: torch.Tensor, items: torch.Tensor, rows: torch.Tensor,
                   multiplicity: torch.Tensor, f: int) -> None:
    """Krum into `out` for the items of `items`, from each item's distinct rows, each
    counted `multiplicity` times (`counts`: all rows per item): a row's m nearest rows are
    taken from the multiset, its own copies (at distance 0) first."""
    distinct = _Groups.of(items, rows, counts.numel())
    weight = multiplicity[distinct.order]  # aligned with distinct.grads[distinct.order]
    for bucket in distinct.buckets(splits=4, block_elements=KRUM_BLOCK_ELEMENTS):
        valid = bucket.valid
        x = _scaled_centred(bucket.rows(), valid, bucket.counts)
        b, width, _ = x.shape
        pos = torch.where(valid, bucket.starts.unsqueeze(1) + torch.arange(width, device=x.device), 0)
        mult = torch.where(valid, weight[pos], 0)
        dist = _squared_distances(x).clamp_min_(0)
        # copies of a row are at distance 0 from it; padding is never a neighbour
        others = mult.unsqueeze(1) - torch.eye(width, dtype=mult.dtype, device=x.device)
        dist = dist.masked_fill_(others == 0, torch.inf)
        dist.diagonal(dim1=1, dim2=2).zero_()
        dist, order = dist.sort(dim=2)
        counted = others.expand(b, width, width).gather(2, order)
        before = counted.cumsum(2) - counted
        m = krum_neighbours(counts[bucket.ids], f).view(b, 1, 1)
        take = (m - before).clamp(min=0).minimum(counted)
        score = torch.where(take > 0, take * dist, 0).sum(2).masked_fill_(~valid, torch.inf)
        out[bucket.ids] = distinct.row(bucket.ids, score.argmin(1))


def norm(items: torch.Tensor, grads: torch.Tensor, n_items: int, clip: float = 1.0) -> torch.Tensor:
    """Clip every finite row to L2 norm <= clip, then take the per-item mean."""
    items, grads = _finite_rows(items, grads)
    return mean(items, clip_rows(grads, clip), n_items)


def clip_rows(grads: torch.Tensor, clip: float) -> torch.Tensor:
    """Scale each row to L2 norm <= clip (rows already within the bound are unchanged).

    Rows of finite values whose norm overflows the dtype are clipped in their own
    direction too (their norm is taken after dividing by their largest |value|).
    """
    norms = torch.linalg.vector_norm(grads, dim=1, keepdim=True)
    over = norms > clip
    if not bool(over.any()):
        return grads
    if bool(torch.isinf(norms).any()):
        amax = grads.abs().amax(1, keepdim=True)
        unit = grads / torch.where(amax > 0, amax, 1)
        unit_norm = torch.linalg.vector_norm(unit, dim=1, keepdim=True)
        return torch.where(over, unit * (clip / torch.where(over, unit_norm, 1)), grads)
    return torch.where(over, grads * (clip / torch.where(over, norms, 1)), grads)


AGGREGATORS: dict[str, Callable[..., torch.Tensor]] = {
    "mean": mean,
    "median": median,
    "trimmed_mean": trimmed_mean,
    "krum": krum,
    "norm": norm,
}


def krum_neighbours(counts: torch.Tensor, f: int) -> torch.Tensor:
    """Number m of nearest rows scored by Krum for items with `counts` rows (see module doc)."""
    m = torch.where(counts > f + 2, counts - f - 2, torch.where(counts > f, counts - f, counts - 1))
    return torch.minimum(m.clamp_min(1), counts - 1).clamp_min(0)


def _check_f(f) -> int:
    if int(f) != f or f < 0:
        raise ValueError(f"f must be a non-negative integer (rows to trim / malicious rows assumed), got {f!r}")
    return int(f)


def _finite_rows(items: torch.Tensor, grads: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows holding no NaN/inf value."""
    if bool(torch.isfinite(grads.sum())):  # cheap test; an overflowing sum takes the exact path
        return items, grads
    finite = torch.isfinite(grads).all(1)
    return items[finite], grads[finite]


@dataclass
class _Groups:
    """The finite rows, their order by item (stable), per-item counts and start offsets."""

    grads: torch.Tensor  # (n_kept, d)
    order: torch.Tensor  # int64 (n_kept,): grads[order] lists item 0's rows, then item 1's...
    counts: torch.Tensor  # int64 (n_items,)
    starts: torch.Tensor  # int64 (n_items,): offsets into `order`

    @classmethod
    def of(cls, items: torch.Tensor, grads: torch.Tensor, n_items: int) -> "_Groups":
        items, grads = _finite_rows(items, grads)
        counts = torch.bincount(items, minlength=n_items)
        return cls(grads, torch.argsort(items, stable=True), counts, torch.cumsum(counts, 0) - counts)

    def zeros(self) -> torch.Tensor:
        return self.grads.new_zeros(self.counts.numel(), self.grads.shape[1])

    def row(self, ids: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Row number index[b] (in upload order) of item ids[b]."""
        return self.grads[self.order[self.starts[ids] + index]]

    def buckets(self, splits: int = 1, block_elements: int | None = None) -> Iterator["_Bucket"]:
        """Items with rows, grouped by count: (2^(e-1), 2^e] cut into `splits` equal
        ranges. With `block_elements`, groups are split into blocks of at most
        block_elements / P^2 items (Krum's P x P distances)."""
        present = torch.nonzero(self.counts).squeeze(1)
        if present.numel() == 0:
            return
        # counts in (2^(e-1), 2^e] have c - 1 = mantissa * 2^e, mantissa in [0.5, 1)
        mantissa, exponent = torch.frexp((self.counts[present] - 1).double())
        level = exponent * splits + ((mantissa - 0.5) * 2 * splits).floor().long().clamp_min(0)
        for key in torch.unique(level).tolist():
            ids = present[level == key]
            counts = self.counts[ids]
            width = int(counts.max())
            step = ids.numel() if block_elements is None else max(1, block_elements // (width * width))
            for lo in range(0, ids.numel(), step):
                yield _Bucket(self, ids[lo:lo + step], counts[lo:lo + step], width)


@dataclass
class _Bucket:
    """Items whose rows are padded to a common width P."""

    groups: _Groups
    ids: torch.Tensor  # (b,) item ids
    counts: torch.Tensor  # (b,) rows per item, 1..P
    width: int  # P

    @property
    def starts(self) -> torch.Tensor:
        return self.groups.starts[self.ids]

    @property
    def valid(self) -> torch.Tensor:
        """(b, P) True on real rows, False on padding."""
        return torch.arange(self.width, device=self.ids.device) < self.counts.unsqueeze(1)

    def rows(self, fill: float = 0.0) -> torch.Tensor:
        """(b, P, d) rows of each item in upload order, padding set to `fill`."""
        valid = self.valid
        pos = torch.where(valid, self.starts.unsqueeze(1) + torch.arange(self.width, device=self.ids.device), 0)
        rows = self.groups.grads.index_select(0, self.groups.order[pos].view(-1)).view(*pos.shape, -1)
        return rows if bool(valid.all()) else rows.masked_fill_(~valid.unsqueeze(2), fill)

    def sorted_columns(self) -> torch.Tensor:
        """(b, d, P) each item's column of values sorted ascending, padding last (the
        dtype's largest finite value, so that products with zero weights stay zero)."""
        return _sort_last(self.rows(torch.finfo(self.groups.grads.dtype).max).transpose(1, 2))

    def median(self, columns: torch.Tensor) -> torch.Tensor:
        """(b, d) mean of the two middle values (the same value twice for odd counts)."""
        lo = _take(columns, (self.counts - 1) // 2)
        hi = _take(columns, self.counts // 2)
        return lo / 2 + hi / 2  # not (lo + hi) / 2: that overflows for huge finite values


def _sort_last(x: torch.Tensor) -> torch.Tensor:
    """Sort along the last dimension. On CPU numpy's vectorised sort is several times
    faster than torch.sort; both give the same values."""
    if NUMPY_ON_CPU and x.device.type == "cpu":
        return torch.from_numpy(np.sort(x.numpy(), axis=-1))
    return torch.sort(x, dim=-1).values


def _kth_largest_(x: torch.Tensor, k: int) -> torch.Tensor:
    """(..., 1) k-th largest value along the last dimension; may reorder x along it.

    On CPU numpy's vectorised in-place partition is several times faster than torch.topk."""
    if NUMPY_ON_CPU and x.device.type == "cpu":
        x.numpy().partition(x.shape[-1] - k, axis=-1)
        return x[..., -k, None].clone()
    return torch.topk(x, k, dim=-1, sorted=False).values.amin(-1, keepdim=True)


def _take(columns: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """columns[b, :, index[b]] for every b."""
    return columns.gather(2, index.view(-1, 1, 1).expand(-1, columns.shape[1], 1)).squeeze(2)


def _window_mean(columns: torch.Tensor, counts: torch.Tensor, med: torch.Tensor, f: int) -> torch.Tensor:
    """Mean of the n - f sorted values closest to `med`, per item (b) and column (d).

    The kept values are a window [l, l + n - f) of the sorted column s. Window l - 1 gives
    way to window l when its left end s[l - 1] is to be dropped before s[l - 1 + n - f],
    the value just past its right end: when s[l - 1] is strictly farther from the median,
    or both lie below it. That holds for l = 1..L and fails after, so L = the count of l.
    """
    b, d, width = columns.shape
    keep = counts - f
    steps = torch.arange(f, device=columns.device)
    low = columns[:, :, :f]  # the f candidates to drop at the low end
    past = columns.gather(2, (steps + keep.view(b, 1, 1)).expand(b, d, f))  # s[l - 1 + n - f]
    med = med.unsqueeze(2)
    start = (((low - med).abs() > (past - med).abs()) | (past < med)).sum(2, keepdim=True)
    # The window is summed in three disjoint parts of [0, n): the low end [0, f), the
    # middle [f, n - f) (always kept, one batched product over the full width) and the high
    # end [max(f, n - f), n). Values are divided by n - f before summing (no overflow).
    inv = (1 / keep.to(columns.dtype)).view(b, 1, 1)
    end = start + keep.view(b, 1, 1)
    total = torch.where((steps >= start) & (steps < end), low * inv, 0).sum(2)
    high_start = torch.clamp(keep, min=f).view(b, 1, 1)
    high_pos = high_start + steps
    high = columns.gather(2, high_pos.clamp(max=width - 1).expand(b, d, f))
    total += torch.where((high_pos < counts.view(b, 1, 1)) & (high_pos < end), high * inv, 0).sum(2)
    pos = torch.arange(width, device=columns.device)
    middle = ((pos >= f) & (pos < keep.view(b, 1))).to(columns.dtype) * inv.view(b, 1)
    return total + torch.bmm(columns, middle.unsqueeze(2)).squeeze(2)


def _scaled_centred(x: torch.Tensor, valid: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Each item's rows of a zero-padded (b, P, d) block scaled by a power of two and
    centred on their mean. Neither changes which row Krum picks, but they keep the
    Gram-matrix distances finite (huge finite rows) and accurate (rows of one item share an
    offset, e.g. the weight decay term)."""
    amax = x.abs().amax((1, 2), keepdim=True)
    x = x * torch.ldexp(torch.ones_like(amax), -torch.frexp(amax).exponent)
    return torch.where(valid.unsqueeze(2), x - x.sum(1, keepdim=True) / counts.view(-1, 1, 1).to(x.dtype), 0)


def _squared_distances(x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """(b, P, P) |x_i|^2 + |x_j|^2 - 2 x_i.x_j for each item's rows of a (b, P, d) block."""
    sq = (x * x).sum(2)
    return torch.add(sq.unsqueeze(2), sq.unsqueeze(1), out=out).baddbmm_(x, x.transpose(1, 2), alpha=-2)


def _krum_choice(x: torch.Tensor, counts: torch.Tensor, f: int, dist: torch.Tensor) -> torch.Tensor:
    """(b,) index of the Krum row of each item in a zero-padded (b, P, d) block; `dist`
    is a (b, P, P) buffer to work in."""
    b, width, _ = x.shape
    valid = torch.arange(width, device=x.device) < counts.unsqueeze(1)
    x = _scaled_centred(x, valid, counts)
    # |x_i|^2 + |x_j|^2 - 2 x_i.x_j must be exactly symmetric: equal scores must tie
    # exactly (two rows always do) for the earliest row to win. CPU BLAS gives a symmetric
    # x x^T bit for bit (a test checks it); GPU kernels need not.
    _squared_distances(x, out=dist)
    if dist.device.type != "cpu":
        dist = torch.minimum(dist, dist.transpose(1, 2))
    dist.diagonal(dim1=1, dim2=2).zero_()
    shortest = int(counts.min())  # columns before it are real rows for every item
    if shortest < width:
        dist[:, :, shortest:].masked_fill_(~valid[:, None, shortest:], 0)
    # Self and padding are 0 and real distances >= 0 (up to rounding), so the m-th smallest
    # real distance t is the r-th largest entry, r = n - m. Summing min(dist, t) over the
    # row (in any order) gives the m smallest plus (n - 1 - m) * t.
    m = krum_neighbours(counts, f)
    rank = counts - m
    k = int(rank.max())
    if bool((rank == k).all()):
        t = _kth_largest_(dist, k)
    else:
        t = torch.topk(dist, k, dim=2).values.gather(2, (rank - 1).view(b, 1, 1).expand(b, width, 1))
    t = t.clamp_min_(0)
    surplus = (counts - 1 - m).view(b, 1, 1).to(x.dtype)
    score = dist.clamp_(max=t).sum(2, keepdim=True) - surplus * t
    return score.squeeze(2).masked_fill_(~valid, torch.inf).argmin(1)
