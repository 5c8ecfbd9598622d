"""Coordinate-wise order statistics per item: median and trimmed mean.

Per item and coordinate the rows form a column of values; with heavy rows (multiplicity
c > 1) the column is the expanded one, each heavy value repeated c times. It is never
materialised: the plain values are sorted (padded with the dtype's largest value), and
each heavy value is placed among them by a binary search (`Merged`).
The k-th value of the expanded column is then read off in O(H) per column, H the heavy
rows of the item (usually 0 or 1), whatever c is. The trimmed mean's window starts are
bracketed per column (`_Window`) and found by one bisection over the open columns of all
buckets (`_search`), so a round costs a few hundred tensor operations, not a set per bucket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .groups import BLOCK_ELEMENTS, Bucket, Groups, sort_last, take


@dataclass
class Merged:
    """Each item's sorted expanded column per coordinate, for a bucket of b items.

    plain: (b, d, P) sorted plain values, padding last (the dtype's largest value);
    heavy: (b, d, H) heavy values; weight: (b, 1, H) multiplicities (0 on padding);
    start: (b, d, H) where each heavy value's run begins in the expanded column
    (0-based; a run goes before plain values equal to it, runs of equal values in upload
    order).
    """

    plain: torch.Tensor
    heavy: torch.Tensor
    weight: torch.Tensor
    start: torch.Tensor

    @classmethod
    def of(cls, bucket: Bucket) -> "Merged":
        rows, _ = bucket.plain_rows(torch.finfo(bucket.groups.plain.grads.dtype).max)
        heavy_rows, weight = bucket.heavy_rows()
        return cls.of_values(rows.transpose(1, 2), heavy_rows.transpose(1, 2), weight.unsqueeze(1))

    @classmethod
    def of_values(cls, plain: torch.Tensor, heavy: torch.Tensor, weight: torch.Tensor) -> "Merged":
        """From unsorted plain values (b, d, P), heavy values (b, d, H) and their
        multiplicities (b, 1, H)."""
        plain = sort_last(plain).contiguous()  # searchsorted copies a non-contiguous one anyway
        heavy = heavy.contiguous()
        # a run's start: the plain values below it (a binary search in the sorted column),
        # then the copies of the heavy values below it or equal and uploaded earlier (an
        # exclusive running sum after a stable sort)
        start = torch.searchsorted(plain, heavy)
        if heavy.shape[2] > 1:
            by = torch.sort(heavy, dim=2, stable=True).indices
            w = weight.expand_as(heavy).gather(2, by)
            start += torch.empty_like(by).scatter_(2, by, w.cumsum(2) - w)
        return cls(plain, heavy, weight, start)

    def select(self, k: torch.Tensor) -> torch.Tensor:
        """(b, d) the value at 0-based position k (b, 1) or (b, d) of each expanded column."""
        if self.heavy.shape[2] == 0:
            return take(self.plain, k.expand(-1, self.plain.shape[1]) if k.dim() == 2 else k)
        before, hit = _locate(k.expand(self.plain.shape[0], self.plain.shape[1]), self.start, self.weight)
        if self.heavy.shape[2] == 1:  # the usual case: no search for the run that holds k
            value, hit = self.heavy.squeeze(2), hit.squeeze(2)
        else:
            value, hit = self.heavy.gather(2, hit.to(torch.int8).argmax(2, keepdim=True)).squeeze(2), hit.any(2)
        plain = take(self.plain, before.clamp(0, self.plain.shape[2] - 1))
        return torch.where(hit, value, plain)

    def plain_before(self, k: torch.Tensor) -> torch.Tensor:
        """(b, d) how many plain values lie at positions < k (b, d) of the expanded column."""
        return _plain_before(k, self.start, self.weight)

    def median(self, totals: torch.Tensor) -> torch.Tensor:
        """(b, d) mean of the two middle values (the same value twice for odd counts)."""
        lo = self.select(((totals - 1) // 2).unsqueeze(1))
        hi = self.select((totals // 2).unsqueeze(1))
        return lo / 2 + hi / 2  # not (lo + hi) / 2: that overflows for huge finite values


def _plain_before(k: torch.Tensor, start: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """(...) how many plain values lie before position k (...) of expanded columns, given
    their heavy runs' starts and multiplicities (..., H). Used on a bucket's columns
    (`Merged`) and on the flat columns of `_search` alike."""
    return k - _heavy_before(k.unsqueeze(-1) - start, weight)


def _heavy_before(at: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """(...) the heavy copies before a position that lies `at` (..., H) into each run."""
    return at.clamp(min=0).minimum(weight).sum(-1)


def _locate(k: torch.Tensor, start: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`_plain_before`, and which heavy run holds position k (..., H; at most one)."""
    at = k.unsqueeze(-1) - start  # how far into each run (negative: before it)
    return k - _heavy_before(at, weight), (at >= 0) & (at < weight)


def median(items: torch.Tensor, grads: torch.Tensor, n_items: int, counts: torch.Tensor | None = None) -> torch.Tensor:
    """Coordinate-wise median per item (mean of the two middle values for even counts)."""
    groups = Groups.of(items, grads, n_items, counts)
    out = groups.zeros()
    for bucket in _buckets(groups, grads):
        out[bucket.ids] = Merged.of(bucket).median(bucket.totals)
    return out


def trimmed_mean(items: torch.Tensor, grads: torch.Tensor, n_items: int, f: int,
                 counts: torch.Tensor | None = None) -> torch.Tensor:
    """Per item and coordinate, the mean of the n_j - f values closest to the median.

    The kept values are a window [l, l + n - f) of the sorted (expanded) column s. Window
    l - 1 gives way to window l when its left end s[l - 1] is to be dropped before
    s[l - 1 + n - f], the value just past its right end: when s[l - 1] is strictly
    farther from the median, or both lie below it. That holds for l = 1..L and fails
    after, so L is found by bisection over [0, f] (narrowed in `_Window.of`), for the
    columns of all buckets at once. Of a value below and a value above the median at
    equal distance, the one above is dropped first. Items with n_j <= f get their median.
    """
    f = check_f(f)
    groups = Groups.of(items, grads, n_items, counts)
    out = groups.zeros()
    windows = []
    for bucket in _buckets(groups, grads):
        merged = Merged.of(bucket)
        totals = bucket.totals
        med = merged.median(totals)
        trim = totals > f
        if not bool(trim.any()):
            out[bucket.ids] = med
            continue
        window = _Window.of(bucket.ids, merged, totals, med, trim, f)
        if bool(window.open.any()):
            windows.append(window)  # kept, with its sorted values, for the shared search
        else:
            out[bucket.ids] = window.result()
    _search(windows)
    for w in windows:
        out[w.ids] = w.result()
    return out


@dataclass
class _Window:
    """A bucket's columns and the bracket [lo, hi] (b, d) of each column's window start."""

    ids: torch.Tensor
    merged: Merged
    med: torch.Tensor  # (b, d)
    trim: torch.Tensor  # (b,) items with more than f rows
    keep: torch.Tensor  # (b, 1) window length n - f
    lo: torch.Tensor
    hi: torch.Tensor
    open: torch.Tensor  # (b, d) lo < hi: the columns `_search` bisects

    @classmethod
    def of(cls, ids, merged: Merged, totals, med, trim, f: int) -> "_Window":
        n = totals.clamp_min(f + 1).unsqueeze(1)
        keep = n - f
        # L lies in [l_min, l_max], the windows that hold a middle position: past n // 2 the
        # left end is never the farther one; while the value just past the window is at or
        # below the lower middle, the left end is dropped, unless both equal the median, and
        # then so do all values up to the lower middle: window l_min holds the same values
        l_min = ((n - 1) // 2 - keep + 1).clamp_min(0)
        l_max = torch.where(trim.unsqueeze(1), (n // 2).clamp_max(f), l_min)
        if merged.heavy.shape[2]:
            # where one heavy run holds every window in range, all hold the same values: the
            # first will do; where a run of the median's value can hold a window, the window
            # starts with the run (values below are farther; the run's copies, at distance 0,
            # are never dropped first): attacked items with fewer benign rows than attackers
            inside = (merged.start <= l_min.unsqueeze(2)) & (merged.start + merged.weight >= (l_max + keep).unsqueeze(2))
            l_max = torch.where(inside.any(2), l_min, l_max)
            at_median = (merged.heavy == med.unsqueeze(2)) & (merged.weight >= keep.unsqueeze(2))
            fixed = at_median.any(2)
            if merged.heavy.shape[2] == 1:  # the usual case
                run = merged.start.squeeze(2)
            else:  # not amin: on CPU torch's int64 amin over a last dimension takes ~0.2 us a value
                run = torch.where(at_median, merged.start, torch.iinfo(merged.start.dtype).max).min(2).values
            l_min = torch.where(fixed, torch.maximum(run.minimum(l_max), l_min), l_min)
            l_max = torch.where(fixed, l_min, l_max)
        lo, hi = l_min.expand(med.shape).contiguous(), l_max.expand(med.shape).contiguous()
        return cls(ids, merged, med, trim, keep, lo, hi, hi > lo)

    def result(self) -> torch.Tensor:
        """(b, d) the trimmed mean of the items with more than f rows, the median of the others."""
        return torch.where(self.trim.unsqueeze(1), self.mean(), self.med)

    def mean(self) -> torch.Tensor:
        """(b, d) mean of the window [lo, lo + keep) of each expanded column."""
        merged, lo, med = self.merged, self.lo, self.med
        end = lo + self.keep
        # every kept value is divided by n - f before summing: no overflow
        inv = (1 / self.keep.to(med.dtype)).unsqueeze(2)
        slot = torch.arange(merged.plain.shape[2], device=med.device)
        first, last = merged.plain_before(lo).unsqueeze(2), merged.plain_before(end).unsqueeze(2)
        if bool((last > first).any()):
            total = torch.where((slot >= first) & (slot < last), merged.plain * inv, 0).sum(2)
        else:  # every window lies in a heavy run
            total = torch.zeros_like(med)
        for h in range(merged.heavy.shape[2]):
            start = merged.start[:, :, h]
            overlap = ((start + merged.weight[:, :, h]).minimum(end) - start.maximum(lo)).clamp_min(0)
            total += merged.heavy[:, :, h] * (overlap.to(med.dtype) * inv.squeeze(2))
        return total


def _search(windows: list[_Window]) -> None:
    """Sets each column's `lo` to its window start L: one bisection over the columns of all
    buckets whose bracket is open (a round's few hundred tensor operations, not one set
    per bucket), reading the expanded columns from one flat buffer: the open columns'
    sorted plain values, then their heavy values."""
    if not windows:
        return
    device = windows[0].med.device
    heavy = max(w.merged.heavy.shape[2] for w in windows)
    plain, heavy_values, offset = [], [], 0
    cols = {name: [] for name in ("base", "width", "start", "weight", "lo", "hi", "keep", "med")}
    for w in windows:
        m, open_ = w.merged, w.open
        every = bool(open_.all())

        def pick(x):  # (b, d, ...) -> (A, ...), the open columns
            x = x.expand(*open_.shape, *x.shape[2:])
            return x.reshape(open_.numel(), *x.shape[2:]) if every else x[open_]

        a, width = int(open_.sum()), m.plain.shape[2]
        plain.append(pick(m.plain).reshape(-1))
        cols["base"].append(offset + torch.arange(a, device=device) * width)
        offset += a * width
        cols["width"].append(torch.full((a,), width, device=device))
        pad = (0, heavy - m.heavy.shape[2])  # weight 0: no run
        heavy_values.append(torch.nn.functional.pad(pick(m.heavy), pad))
        cols["start"].append(torch.nn.functional.pad(pick(m.start), pad))
        cols["weight"].append(torch.nn.functional.pad(pick(m.weight), pad))
        for name in ("lo", "hi", "med", "keep"):
            cols[name].append(pick(getattr(w, name)))
    flat = torch.cat(plain + [torch.cat(heavy_values).reshape(-1)])  # all plain values, then all heavy ones
    lo, hi, keep, med = (torch.cat(cols[name]) for name in ("lo", "hi", "keep", "med"))
    runs = offset + torch.arange(lo.numel() * heavy, device=device).view(lo.numel(), heavy)  # (A, H) where each heavy value is
    # the left and the right ends are read in one call: every column twice
    base, width, start, weight, runs = (torch.cat(x * 2) for x in (cols["base"], cols["width"], cols["start"],
                                                                     cols["weight"], [runs]))

    def read(k: torch.Tensor) -> torch.Tensor:
        before, inside = _locate(k, start, weight)
        plain = base + before.clamp(min=0).minimum(width - 1)
        return flat[plain + (inside * (runs - plain.unsqueeze(1))).sum(1)]

    for _ in range(math.ceil(math.log2(int((hi - lo).max()) + 1))):
        mid = (lo + hi + 1) // 2
        left, past = read(torch.cat([(mid - 1).clamp_min(0), mid - 1 + keep])).chunk(2)
        ok = (lo < hi) & (((left - med).abs() > (past - med).abs()) | (past < med))
        lo, hi = torch.where(ok, mid, lo), torch.where(ok | (lo >= hi), hi, mid - 1)
    for w, found in zip(windows, lo.split([int(w.open.sum()) for w in windows])):
        w.lo[w.open] = found


def check_f(f) -> int:
    if int(f) != f or f < 0:
        raise ValueError(f"f must be a non-negative integer (rows to trim / malicious rows assumed), got {f!r}")
    return int(f)


def _block(grads: torch.Tensor) -> int | None:
    """Cache-sized blocks on CPU; one block per bucket on GPUs."""
    return BLOCK_ELEMENTS // max(1, grads.shape[1]) if grads.device.type == "cpu" else None


def _buckets(groups: Groups, grads: torch.Tensor):
    """Buckets of (2^(e-1), 2^e] cut in four: the padding, which is gathered and sorted
    like the rows, falls from 45% of ML-1M's rows to 9%."""
    return groups.buckets(splits=4, block_elements=_block(grads))
