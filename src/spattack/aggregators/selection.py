"""Aggregators that select rows by their Krum score: Multi-Krum and Bulyan, per item on
the expanded multiset of its finite rows (see the package docstring).

Multi-Krum scores every row once with `krum_scores`. Bulyan's repeated Krum removes one
expanded row at a time and rescores (`repeated_krum`): from one (Q, Q) distance matrix
per item, sorted once per row, a row's score is its summed distance to the other
remaining rows minus its s largest ones (s = n - 1 - m, at most f + 1), in float64; only
the rows whose s largest contained the removed row are recomputed, and rows within
rounding of the best are rescored exactly, so that ties are ties.
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
# and sorted distances in float64, their columns and places).
BULYAN_BLOCK_ELEMENTS = 1 << 22
BULYAN_BLOCK_ELEMENTS_GPU = 1 << 26


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
    finite rows get 0. Raises ValueError if f is not a non-negative integer. Cost: every
    row's score, n_j^2 distances per item (`krum_scores`).
    """
    f = check_f(f)
    groups = Groups.of(items, grads, n_items, counts)
    out = groups.zeros()
    for bucket in groups.buckets(splits=4):
        rows, weight, order = distinct_rows(bucket)
        totals = bucket.totals
        score = krum_scores(rows, weight, bucket.width, totals, f, every_row=True)
        rows, weight, score = reorder(order, rows, weight, score)
        keep = (totals - f).clamp_min(1)
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
    theta steps of O(n_j) work plus O(f) per recomputed row, so O(n_j^2 (d + log n_j))
    in all; but the steps are Python-level, as many per block of items as its largest
    theta: one ML-100K round (f = 28, 555 items with >= 115 rows, up to 643) takes
    2.2 s on 2 idle CPU threads, against 0.33 s for Multi-Krum (README, Speed).
    """
    f = check_f(f)
    out = median(items, grads, n_items, counts)
    groups = Groups.of(items, grads, n_items, counts)
    enough = groups.totals >= 4 * f + 3
    if not bool(enough.any()):
        return out
    cap = BULYAN_BLOCK_ELEMENTS if grads.device.type == "cpu" else BULYAN_BLOCK_ELEMENTS_GPU
    chosen_items, chosen_rows, chosen_counts = [], [], []
    for bucket in groups.buckets(splits=4, block_elements=cap, cost=lambda p, h: (p + h) ** 2):
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
            picked = repeated_krum(squared_distances(rows, weight), weight, totals, f, totals - 2 * f)
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
    row's distances are sorted once (largest first); removing a copy of row r lowers T
    by dist[r] and changes E_i only where r lies within E_i's span of row i's sorted
    distances (or where s changes): those rows alone are recomputed. T - E carries
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
    # |T - E - score| <= (Q + theta + f + 4) eps max T (sums of Q terms, theta updates)
    error = (q + theta + f + 4).unsqueeze(1).to(top.dtype) * torch.finfo(top.dtype).eps
    slack = 2 * error * total.amax(1, keepdim=True)
    counts = torch.arange(int(totals.max()) + 1, device=totals.device)
    surplus = counts - 1 - krum_neighbours(counts, f)  # s for each remaining count n
    n = totals.clone()
    sorted_rows = _SortedRows(top, column, weight)
    excluded, span = top.new_zeros(b, q), torch.zeros_like(weight)
    sorted_rows.largest(surplus[n], weight > 0, excluded, span)
    picked = torch.zeros_like(weight)
    every = torch.arange(b, device=weight.device)
    for step in range(int(theta.max())):
        active = (step < theta).long()
        approx = (total - excluded).masked_fill_(weight == 0, torch.inf)
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
        total -= dist[every, pick] * active.unsqueeze(1).to(dist.dtype)
        stale = (place[every, pick] < span) | (surplus[n] != s).unsqueeze(1)
        sorted_rows.largest(surplus[n], stale & (weight > 0) & active.bool().unsqueeze(1), excluded, span)
    return picked


def _sorted_columns(dist: torch.Tensor) -> torch.Tensor:
    """(b, Q, Q) int64: each row's columns by decreasing distance (numpy's sort on CPU)."""
    if not use_numpy(dist):
        return torch.sort(dist, dim=2, descending=True, stable=True).indices
    return torch.from_numpy(np.argsort(-dist.numpy(), axis=2))


@dataclass
class _SortedRows:
    """Each row's distances sorted largest first (top, with their columns), counted by
    the remaining copies (weight: the row's own copies less itself)."""

    top: torch.Tensor  # (b, Q, Q)
    column: torch.Tensor  # (b, Q, Q)
    weight: torch.Tensor  # (b, Q), updated by the caller

    def copies(self, item: torch.Tensor, row: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(c, width) the first `width` sorted distances of rows (item, row) and (c,
        width) their copies."""
        b, q = self.weight.shape
        flat = item * q + row
        cols = self.column.view(b * q, q)[:, :width].index_select(0, flat)
        own = cols == row.unsqueeze(1)
        copies = self.weight.view(-1).take(cols + (item * q).unsqueeze(1)) - own.long()
        return self.top.view(b * q, q)[:, :width].index_select(0, flat), copies.clamp_min_(0)

    def largest(self, s: torch.Tensor, rows: torch.Tensor, excluded: torch.Tensor, span: torch.Tensor) -> None:
        """For the rows marked in `rows` (b, Q): excluded = the sum of their s (b,)
        largest distances, span = how many sorted places those cover."""
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
        excluded[item, row] = (values * share.to(values.dtype)).sum(1)
        span[item, row] = (cum < need.unsqueeze(1)).sum(1) + (need > 0).long()

    def smallest(self, item: torch.Tensor, row: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """(c,) the sum of the m (c,) smallest distances of rows (item, row), added in
        increasing order."""
        values, w = self.copies(item, row, self.top.shape[2])
        values, w = values.flip(1), w.flip(1)
        share = (m.unsqueeze(1) - (w.cumsum(1) - w)).clamp_min(0).minimum(w)
        return (values * share.to(values.dtype)).cumsum(1)[:, -1]
