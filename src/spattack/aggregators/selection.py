"""Aggregators that select rows by their Krum score: Multi-Krum and Bulyan, per item on
the expanded multiset of its finite rows (see the package docstring).

Multi-Krum ranks the rows with `krum_scores`, which scores exactly only the rows whose
bounds do not settle which side of the cut they fall on. Bulyan's repeated Krum removes one
expanded row at a time and rescores (`repeated_krum`): from one (Q, Q) distance matrix
per item, sorted once per row, a row's score is its summed distance to the other
remaining rows minus its s largest ones (s = n - 1 - m, at most f + 1), in float64; the
rows whose s largest contained the removed row trade its distance for the next one in
their order, and rows within rounding of the best are rescored exactly, so that ties
are ties.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .distance import krum_neighbours, krum_scores
from .groups import Bucket, Groups, use_numpy
from .order import check_f, median, trimmed_mean
from .pairwise import distinct_rows, reorder, squared_distances, take_lowest, weighted_mean

# Entries of the (b, Q, Q) blocks of Bulyan's selection (about 40 bytes each: distances
# and sorted distances in float64, their columns and places), on the CPU on any device.
BULYAN_BLOCK_ELEMENTS = 1 << 22


def multi_krum(items: torch.Tensor, grads: torch.Tensor, n_items: int, f: int,
               counts: torch.Tensor | None = None) -> torch.Tensor:
    """Multi-Krum per item (Blanchard et al., NeurIPS 2017, "Machine learning with
    adversaries: Byzantine tolerant gradient descent"): the mean of the
    k = n_j - f rows of lowest Krum score, k clamped to [1, n_j].

    The score is `krum`'s (summed squared L2 distance to the m nearest other rows, m by
    `krum_neighbours`); rows are ranked by score, equal scores by upload order, and the
    k first expanded rows are averaged (copies of a row share its score and its place).
    As in `krum`, scores tie exactly on rows of small integers; two different rows whose
    scores are equal only in exact arithmetic (e.g. mutual nearest neighbours when m = 1)
    are ordered by rounding. With k = 1 (n_j <= f + 1) this is `krum`'s row; with f = 0
    the mean. items int64 (n_rows,), grads float (n_rows, d), counts int64 (n_rows,) or
    None. Returns (n_items, d) in the dtype and on the device of `grads`; items without
    finite rows get 0. Raises ValueError if f is not a non-negative integer. Cost: n_j^2
    distances per item, once; on the CPU, items of more than 128 rows and 1.75 f
    expanded rows select a threshold only on the rows near the cut
    (`distance._ranked_sums`), the others on every row.
    """
    f = check_f(f)
    groups = Groups.of(items, grads, n_items, counts)
    out = groups.zeros()
    for bucket in groups.buckets(splits=4):
        rows, weight, order = distinct_rows(bucket)
        totals = bucket.totals
        keep = (totals - f).clamp_min(1)
        if f == 0:  # every row is kept (a clean run's f): the mean, without scoring
            score = torch.zeros(weight.shape, dtype=rows.dtype, device=rows.device)
        else:
            score = krum_scores(rows, weight, bucket.width, totals, f, keep=keep)
        rows, weight, score = reorder(order, rows, weight, score)
        out[bucket.ids] = weighted_mean(rows, take_lowest(score, weight, keep), keep)
    return out


def bulyan(items: torch.Tensor, grads: torch.Tensor, n_items: int, f: int,
           counts: torch.Tensor | None = None) -> torch.Tensor:
    """Bulyan per item (El Mhamdi, Guerraoui & Rouault, ICML 2018, "The hidden
    vulnerability of distributed learning in Byzantium").

    When n_j >= 4f + 3: (1) select theta = n_j - 2f rows by repeated Krum: score the
    remaining rows as `krum` does (its neighbour rule on the remaining count), move the
    row of lowest score (equal scores: the earliest uploaded) to the selection, repeat;
    a row sent c times is c rows, removed one at a time. (2) per coordinate, average the
    beta = theta - 2f selected values closest to the selection's coordinate-wise median:
    `trimmed_mean` with 2f on the selection (of two values equally far from the median,
    the larger is dropped first). When n_j < 4f + 3 (too few rows for Bulyan's
    guarantee; f = 0 needs 3): the coordinate-wise median of the item's rows. items
    int64 (n_rows,), grads float (n_rows, d), counts int64 (n_rows,) or None. Returns
    (n_items, d) in the dtype and on the device of `grads`; items without finite rows
    get 0. Raises ValueError if f is not a non-negative integer.

    Cost per item: n_j^2 d for the distances and n_j^2 log n_j to sort them once, then
    theta steps of O(n_j) work, so O(n_j^2 (d + log n_j)) in all; but the steps are
    Python-level (some 50 small tensor operations each), as many per block of items as
    its largest theta, and run on the CPU whatever the device: one ML-100K round (f = 28,
    555 items with >= 115 rows, up to 643) takes 2.2 s on 2 idle CPU threads, against
    0.33 s for Multi-Krum (README, Speed).
    """
    f = check_f(f)
    out = median(items, grads, n_items, counts)
    groups = Groups.of(items, grads, n_items, counts)
    enough = groups.totals >= 4 * f + 3
    if not bool(enough.any()):
        return out
    chosen_items, chosen_rows, chosen_counts = [], [], []
    for bucket in groups.buckets(splits=4, block_elements=BULYAN_BLOCK_ELEMENTS, cost=lambda p, h: (p + h) ** 2):
        ids = bucket.ids[enough[bucket.ids]]
        if ids.numel() == 0:
            continue
        bucket = Bucket(groups, ids, bucket.width, bucket.heavy_width)
        rows, weight, order = distinct_rows(bucket)
        rows, weight = reorder(order, rows, weight)
        totals = bucket.totals
        if f == 0:  # theta = n_j: every row is selected, whatever the order
            picked = weight
        else:
            # The selection is sequential: theta steps of small operations, each a round trip
            # to a GPU (on an H200, 0.935 s for an ML-100K round against 0.359 s with the
            # selection on its CPU: docs/gpu/README.md), so it runs on the CPU whatever the
            # device; the distances do not.
            cpu = torch.device("cpu")
            picked = repeated_krum(squared_distances(rows, weight).to(cpu), weight.to(cpu), totals.to(cpu), f,
                                   (totals - 2 * f).to(cpu)).to(rows.device)
        taken = picked > 0
        chosen_items.append(ids.unsqueeze(1).expand_as(picked)[taken])
        chosen_rows.append(rows[taken])
        chosen_counts.append(picked[taken])
    selected = torch.cat(chosen_items)
    trimmed = trimmed_mean(selected, torch.cat(chosen_rows), n_items, 2 * f, counts=torch.cat(chosen_counts))
    return torch.where(enough.unsqueeze(1), trimmed, out)


def repeated_krum(dist: torch.Tensor, weight: torch.Tensor, totals: torch.Tensor, f: int,
                  theta: torch.Tensor) -> torch.Tensor:
    """(b, Q) how many copies of each row theta (b,) rounds of Krum select, removing the
    chosen copy after each. dist (b, Q, Q) symmetric squared distances of each item's
    distinct rows (columns in upload order, 0 on the diagonal and padding), weight
    (b, Q) their multiplicities, totals (b,) their sum.

    Row i's score is T_i - E_i: T_i its summed distance to the other remaining copies,
    E_i the sum of the s largest of them (s = n - 1 - m, n the remaining count). Each
    row's distances are sorted once (largest first) and E_i's span is kept as a boundary
    (the sorted place of the last column it takes copies from, and how many). Removing a
    copy of row r lowers T by dist[r]; where r lies within E_i's span, E_i gives r's
    distance back and takes one more copy past the boundary, moving it on over removed
    rows. Only when s changes is E recomputed from the sorted distances. T - E carries
    rounding, so the rows within its error bound of the lowest are rescored exactly, as
    the sum of their m smallest distances in increasing order (equal multisets of
    distances give equal sums: ties stay ties, and go to the earliest upload).
    """
    b, q = weight.shape
    weight = weight.clone()
    dist = dist.double()  # sums in float64: their rounding rarely leaves two rows within the error bound
    total = torch.bmm(dist, weight.unsqueeze(2).to(dist.dtype)).squeeze(2)  # own copies sit at distance 0
    column = _sorted_columns(dist)
    top = dist.gather(2, column)
    # place[b, r, i]: where row r comes in row i's order
    place = torch.empty_like(column).scatter_(2, column, torch.arange(q, device=column.device).expand_as(column))
    place = place.transpose(1, 2).contiguous()
    # |T - E - score| <= (Q + 3 theta + f + 4) eps max T (sums of Q terms; per step, one
    # update of T and at most two of E)
    error = (q + 3 * theta + f + 4).unsqueeze(1).to(top.dtype) * torch.finfo(top.dtype).eps
    slack = 2 * error * total.amax(1, keepdim=True)
    counts = torch.arange(int(totals.max()) + 1, device=totals.device)
    surplus = counts - 1 - krum_neighbours(counts, f)  # s for each remaining count n
    n = totals.clone()
    sorted_rows = _SortedRows(top, column, weight, top.new_zeros(b, q), torch.zeros_like(weight),
                              torch.zeros_like(weight))
    sorted_rows.largest(surplus[n], weight > 0)
    picked = torch.zeros_like(weight)
    every = torch.arange(b, device=weight.device)
    for step in range(int(theta.max())):
        active = (step < theta).long()
        approx = (total - sorted_rows.excluded).masked_fill_(weight == 0, torch.inf)
        near = approx <= approx.amin(1, keepdim=True) + slack
        if bool((near.sum(1) == 1).all()):
            pick = approx.argmin(1)
        else:
            item, row = torch.nonzero(near, as_tuple=True)
            score = torch.full_like(approx, torch.inf)
            score[item, row] = sorted_rows.smallest(item, row, (n - 1 - surplus[n])[item])
            pick = score.argmin(1)  # the first minimum: the earliest uploaded row
        picked[every, pick] += active
        weight[every, pick] -= active
        s = surplus[n]
        n -= active
        lost = dist[every, pick]  # (b, Q) each row's distance to the removed copy
        total -= lost * active.unsqueeze(1).to(dist.dtype)
        live = (weight > 0) & active.bool().unsqueeze(1)
        changed = surplus[n] != s
        if bool(changed.any()):
            sorted_rows.largest(surplus[n], live & changed.unsqueeze(1))
            live &= ~changed.unsqueeze(1)
        short = sorted_rows.give_back(place[every, pick], lost, live)
        if short is not None:
            sorted_rows.largest(surplus[n], short)
    return picked


def _sorted_columns(dist: torch.Tensor) -> torch.Tensor:
    """(b, Q, Q) int64: each row's columns by decreasing distance (numpy's sort on CPU)."""
    if not use_numpy(dist):
        return torch.sort(dist, dim=2, descending=True, stable=True).indices
    return torch.from_numpy(np.argsort(-dist.numpy(), axis=2))


@dataclass
class _SortedRows:
    """Each row's distances sorted largest first (top, with their columns), counted by
    the remaining copies (weight: the row's own copies less itself), and the sum of each
    row's s largest (excluded) with its span: it takes every copy of the columns at
    sorted places < boundary and `used` copies of the column at `boundary` (-1: none)."""

    top: torch.Tensor  # (b, Q, Q)
    column: torch.Tensor  # (b, Q, Q)
    weight: torch.Tensor  # (b, Q), updated by the caller
    excluded: torch.Tensor  # (b, Q) float64
    boundary: torch.Tensor  # (b, Q) int64
    used: torch.Tensor  # (b, Q) int64

    def copies(self, item: torch.Tensor, row: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(c, width) the first `width` sorted distances of rows (item, row) and (c,
        width) their copies."""
        b, q = self.weight.shape
        flat = item * q + row
        cols = self.column.view(b * q, q)[:, :width].index_select(0, flat)
        own = cols == row.unsqueeze(1)
        copies = self.weight.view(-1).take(cols + (item * q).unsqueeze(1)) - own.long()
        return self.top.view(b * q, q)[:, :width].index_select(0, flat), copies.clamp_min_(0)

    def copies_at(self, item: torch.Tensor, row: torch.Tensor, place: torch.Tensor) -> torch.Tensor:
        """(c, w) the copies of the columns at sorted places `place` (c, w) of rows (item, row)."""
        b, q = self.weight.shape
        cols = self.column.view(-1).take((item * q + row).unsqueeze(1) * q + place)
        own = cols == row.unsqueeze(1)
        return (self.weight.view(-1).take(cols + (item * q).unsqueeze(1)) - own.long()).clamp_min_(0)

    def largest(self, s: torch.Tensor, rows: torch.Tensor) -> None:
        """For the rows marked in `rows` (b, Q): the sum of their s (b,) largest distances
        and its span, from the sorted distances."""
        item, row = torch.nonzero(rows, as_tuple=True)
        if item.numel() == 0:
            return
        need = s[item]
        width = min(self.top.shape[2], 2 * int(need.max()) + 4)
        while True:  # removed rows (0 copies) can sit among the largest: widen until s are covered
            values, w = self.copies(item, row, width)
            cum = w.cumsum(1)
            if width == self.top.shape[2] or bool((cum[:, -1] >= need).all()):
                break
            width = min(self.top.shape[2], 2 * width)
        share = (need.unsqueeze(1) - (cum - w)).clamp_min(0).minimum(w)
        self.excluded[item, row] = (values * share.to(values.dtype)).sum(1)
        last = ((cum < need.unsqueeze(1)).sum(1) + (need > 0).long() - 1).clamp_max_(width - 1)
        self.boundary[item, row] = last
        self.used[item, row] = share.gather(1, last.clamp_min(0).unsqueeze(1)).squeeze(1) * (last >= 0)

    def give_back(self, removed: torch.Tensor, lost: torch.Tensor, rows: torch.Tensor) -> torch.Tensor | None:
        """After one copy of a row was removed: for the rows marked in `rows` (b, Q), whose
        s is unchanged, `removed` (b, Q) the removed row's sorted place in each row's
        order and `lost` (b, Q) its distance to each. Where the removed copy was within
        the span, its distance leaves E and the next copy past the boundary enters.
        Returns (b, Q) the rows left with no copy past their boundary, to be recomputed,
        or None (always while m >= 1)."""
        item, row = torch.nonzero(rows & (removed <= self.boundary), as_tuple=True)
        if item.numel() == 0:
            return None
        at = self.boundary[item, row]
        left = self.copies_at(item, row, at.unsqueeze(1)).squeeze(1)  # of the boundary column, now
        used = self.used[item, row]
        counted = (removed[item, row] < at) | (used > left)
        item, row, at, left, used = item[counted], row[counted], at[counted], left[counted], used[counted]
        more = left > used  # one more copy of the boundary column, or the next column with copies
        step = torch.nonzero(~more).squeeze(1)
        if step.numel():
            at[step] = self._next_with_copies(item[step], row[step], at[step] + 1)
        q = self.weight.shape[1]
        short = None
        if bool((at >= q).any()):
            short = torch.zeros_like(rows)
            short[item[at >= q], row[at >= q]] = True
            at = at.clamp_max(q - 1)
        self.excluded[item, row] += self.top.view(-1).take((item * q + row) * q + at) - lost[item, row]
        self.boundary[item, row] = at
        self.used[item, row] = torch.where(more, used + 1, 1)
        return short

    def _next_with_copies(self, item: torch.Tensor, row: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        """(c,) the first sorted place >= start (c,) whose column has copies left (Q if none)."""
        q = self.weight.shape[1]
        width = 8
        while True:
            place = start.unsqueeze(1) + torch.arange(width, device=start.device)
            inside = place < q
            ok = (self.copies_at(item, row, place.clamp_max(q - 1)) > 0) & inside
            found = ok.any(1)
            if bool((found | ~inside[:, -1]).all()):
                return torch.where(found, start + ok.to(torch.int8).argmax(1), q)
            width *= 2

    def smallest(self, item: torch.Tensor, row: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """(c,) the sum of the m (c,) smallest distances of rows (item, row), added in
        increasing order."""
        values, w = self.copies(item, row, self.top.shape[2])
        values, w = values.flip(1), w.flip(1)
        share = (m.unsqueeze(1) - (w.cumsum(1) - w)).clamp_min(0).minimum(w)
        return (values * share.to(values.dtype)).cumsum(1)[:, -1]
