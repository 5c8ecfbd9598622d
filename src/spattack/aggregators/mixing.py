"""Nearest-neighbour mixing (NNM; Allouah et al., AISTATS 2023, "Fixing by Mixing: A
Recipe for Optimal Byzantine ML under Heterogeneity"), a pre-aggregation
step that composes with any aggregator, per item.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch

from .distance import krum
from .kth import kth_largest, merged_kth_largest
from .groups import Groups, finite_mask
from .order import check_f, median
from .pairwise import distinct_rows, reorder, squared_distances, weighted_mean

# Entries of the (b, Q, Q) distance blocks (about 50 bytes each).
NNM_BLOCK_ELEMENTS = 1 << 20
NNM_BLOCK_ELEMENTS_GPU = 1 << 26


def nearest_neighbour_mixing(items: torch.Tensor, grads: torch.Tensor, n_items: int, f: int,
                             counts: torch.Tensor | None = None
                             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The round's finite rows, each replaced by the mean of its k = n_j - f nearest rows
    of its item (k clamped to [1, n_j]; squared L2 over the expanded rows, the row
    itself and its copies included at distance 0; equal distances: the earlier upload
    first).

    Rows with the same k nearest (as a multiset: typical of the honest rows when f is
    small) have the same mean: they come back as one row, computed once, whose
    multiplicity is the sum of theirs, at the place of the first of them. So the result
    is the expanded mixed rows exactly, copies included (a base such as Krum sees them
    at distance 0), and the base's cost follows the distinct mixed rows. Returns
    (items, mixed rows, counts), in upload order. Raises ValueError if f is not a
    non-negative integer. Cost: n_j^2 distances per item, a selection per row (its k-th
    distance), and an (n_j, n_j) x (n_j, d) product.
    """
    f = check_f(f)
    keep = finite_mask(grads)
    if keep is not None:
        items, grads, counts = items[keep], grads[keep], None if counts is None else counts[keep]
    groups = Groups.of(items, grads, n_items, counts)
    cap = NNM_BLOCK_ELEMENTS if grads.device.type == "cpu" else NNM_BLOCK_ELEMENTS_GPU
    parts = [(items[:0], grads[:0], items[:0], items[:0])]  # (item, mixed row, count, first place)
    for bucket in groups.buckets(splits=4, block_elements=cap, cost=lambda p, h: (p + h) ** 2):
        rows, weight, order = distinct_rows(bucket)
        position = torch.cat(bucket.upload_index(), 1) if bucket.heavy_width else bucket.upload_index()[0]
        k = (bucket.totals - f).clamp_min(1).unsqueeze(1)  # (b, 1)
        dist = squared_distances(rows, weight)
        reach = _kth_nearest(dist, weight, bucket.width, k)  # (b, Q, 1)
        if bucket.heavy_width:  # to upload order
            (dist,) = reorder(order, dist.gather(2, order.unsqueeze(1).expand_as(dist)))
            rows, weight, position, reach = reorder(order, rows, weight, position, reach)
        taken = _nearest(dist, reach, weight, k)  # (b, Q, Q)
        mixed = weighted_mean(rows, taken, k)
        real = weight > 0
        leader = _first_alike(taken, real)  # rows with the same neighbours become one
        first = real & (leader == torch.arange(leader.shape[1], device=leader.device))
        merged = torch.zeros_like(weight).scatter_add_(1, leader, weight)
        its = bucket.ids.unsqueeze(1).expand_as(first)
        parts.append((its[first], mixed[first], merged[first], position[first]))
    items, mixed, counts, place = (torch.cat(part) for part in zip(*parts))
    order = place.argsort()
    return items[order], mixed[order], counts[order]


def _first_alike(taken: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """(b, Q) for each row (b, Q) of `taken` (b, Q, Q), the first row of its item with
    the same neighbours. Rows are sorted by a code of their neighbours (a random
    projection, equal for equal neighbours), runs of equal codes are checked entry by
    entry, and should two different rows share a code, all are grouped exactly."""
    b, q = real.shape
    slot = torch.arange(q, device=real.device)
    code = torch.where(real, _code(taken), -1.0 - slot)  # padding: a code of its own
    code, by_code = torch.sort(code, dim=1, stable=True)  # equal codes: the earliest row first
    start = torch.ones_like(real)
    start[:, 1:] = code[:, 1:] != code[:, :-1]
    run = torch.where(start, slot, 0).cummax(1).values
    leader = torch.empty_like(by_code).scatter_(1, by_code, by_code.gather(1, run))
    its, led = torch.nonzero(leader != slot, as_tuple=True)  # only rows led by another need a check
    if bool((taken[its, leader[its, led]] == taken[its, led]).all()):
        return leader
    item = torch.arange(b, device=real.device).unsqueeze(1).expand(b, q)
    key = torch.cat([item.reshape(-1, 1), taken.reshape(b * q, q).long()], 1)
    _, group = torch.unique(key, dim=0, return_inverse=True)
    every = torch.arange(b * q, device=real.device)
    first = torch.full_like(every, b * q).scatter_reduce_(0, group, every, "amin")
    return first[group].view(b, q) - item * q


def _code(taken: torch.Tensor) -> torch.Tensor:
    """(b, Q) a random projection of each row of `taken` (b, Q, Q), integer counts, on
    random integers as wide as float64 allows: a row sums to at most 2^e, so probes below
    2^(52 - e) keep every partial sum an integer below 2^52, exact whatever the order of
    summation, and equal rows get equal codes. Wide probes matter: rows that differ by a
    swap of a few neighbours collide when the probes' sums over those columns agree, and
    with 20-bit probes that happened in 30 of 359 buckets of a Steam round under Gaussian."""
    most = max(int(taken.sum(2).max()), 1) if taken.numel() else 1
    bits = max(52 - most.bit_length(), 1)
    probe = torch.randint(1, 1 << bits, (taken.shape[2], 1), generator=torch.Generator().manual_seed(0))
    return torch.matmul(taken.to(torch.float64), probe.to(taken.device, torch.float64)).squeeze(2)


def _kth_nearest(dist: torch.Tensor, weight: torch.Tensor, n_plain: int, k: torch.Tensor) -> torch.Tensor:
    """(b, Q, 1) each row's k-th (b, 1) smallest distance over the expanded rows; dist and
    weight in `distinct_rows`' layout (n_plain plain columns, then heavy ones)."""
    far = -dist  # the k-th smallest of dist is minus the k-th largest of -dist
    far[:, :, :n_plain].masked_fill_(weight[:, None, :n_plain] == 0, -torch.inf)  # padding: never chosen
    if far.shape[2] == n_plain:
        return -kth_largest(far, k.expand(-1, far.shape[1]))
    return -merged_kth_largest(far[:, :, :n_plain], far[:, :, n_plain:], weight[:, None, n_plain:], k)


def _nearest(dist: torch.Tensor, reach: torch.Tensor, weight: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """(b, Q, Q) the copies of each column among each row's k (b, 1) nearest, in the dtype
    of dist: all of the columns nearer than `reach` (b, Q, 1), the k-th distance, then
    those at it in column (upload) order. Columns in upload order."""
    w = weight.to(dist.dtype).unsqueeze(1)  # (b, 1, Q)
    taken = torch.where(dist <= reach, w, 0)  # exact wherever the copies up to the reach are k
    want = k.to(dist.dtype).expand(-1, dist.shape[1])  # (b, Q)
    its, rows = torch.nonzero((taken.sum(2) != want) & (weight > 0), as_tuple=True)
    if its.numel():  # ties at the reach hold more copies than the quota left: earlier columns first
        d, r, wr = dist[its, rows], reach[its, rows], w[its, 0]  # (n, Q), (n, 1), (n, Q)
        below = d < r
        quota = want[its, rows].unsqueeze(1) - torch.where(below, wr, 0).sum(1, keepdim=True)
        tied = torch.where(d == r, wr, 0)
        from_ties = (quota - (tied.cumsum(1) - tied)).clamp_min_(0).minimum(tied)
        taken[its, rows] = torch.where(below, wr, from_ties)
    return taken


def nnm(base: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """The aggregator `(items, grads, n_items, f, counts=None, **params)` that mixes the
    rows (`nearest_neighbour_mixing` with f) and aggregates the mixed rows, with the same
    multiplicities, by `base`; `base` gets `params`, and f too if it takes f. Mixed rows
    are means, rarely exact in floating point: where `base` breaks exact ties (Krum: the
    earliest upload), two different mixed rows whose scores are equal in exact
    arithmetic tie up to rounding only, and either may win (copies, merged, tie
    exactly)."""
    takes_f = "f" in inspect.signature(base).parameters

    def mixed_then_base(items: torch.Tensor, grads: torch.Tensor, n_items: int, f: int,
                        counts: torch.Tensor | None = None, **params) -> torch.Tensor:
        items, grads, counts = nearest_neighbour_mixing(items, grads, n_items, f, counts)
        if takes_f:
            params["f"] = f
        return base(items, grads, n_items, counts=counts, **params)

    name = getattr(base, "__name__", "aggregator")
    mixed_then_base.__name__ = mixed_then_base.__qualname__ = f"nnm_{name}"
    mixed_then_base.__doc__ = (
        f"NNM (Allouah et al., AISTATS 2023), then `{name}` on the mixed rows: every finite row of an item "
        f"becomes the mean of its n_j - f nearest rows (`nearest_neighbour_mixing`), and `{name}` aggregates "
        f"them with their multiplicities (`nnm`).\n\n"
        f"items: int64 (n_rows,), grads: float (n_rows, d), f: int >= 0, the malicious rows assumed per item, "
        f"counts: int64 (n_rows,) or None (ones). Returns (n_items, d) in the dtype of grads; items without "
        f"finite rows get 0. Raises ValueError if f is not a non-negative integer.")
    return mixed_then_base


nnm_median = nnm(median)
nnm_krum = nnm(krum)
