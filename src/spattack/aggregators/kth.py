"""The k-th largest value of each row of a batch: of plain values (a partition in numpy
on CPU, topk elsewhere), and of plain values merged with heavy runs (a value counted
`weight` times), the selections under Krum's scores and NNM's neighbourhoods.
"""

from __future__ import annotations

import torch

from .groups import in_threads, use_numpy
from .order import Merged

# Ranks up to this are selected by taking the largest values off one by one.
FEW = 4
# Beyond this many heavy columns, the merged selection sorts the plain values once.
FEW_HEAVY = 8


def merged_kth_largest(plain: torch.Tensor, heavy: torch.Tensor, weight: torch.Tensor,
                       rank: torch.Tensor, heavy_ahead: bool = False) -> torch.Tensor:
    """(b, r, 1) the rank-th largest entry of each row of the multiset that holds the
    plain distances (b, r, P) once each and the heavy ones (b, r, H) weight (b, 1, H)
    times each: the heavy runs are placed among the plain values by counting, and the
    rest is a selection over the plain values alone. With more than FEW_HEAVY heavy
    columns (typical of rows merged by NNM), one sort of the plain values replaces a pass
    over them per heavy column (`order.Merged`). `heavy_ahead`: the heavy values are
    mostly among the largest (Krum's threshold, near the far end of a benign row's
    distances, where attackers' rows are): two shortcuts, checked per row, save the
    counting; where they fail, they cost a selection more."""
    k = (rank - 1).expand(-1, plain.shape[1])  # 0-based position in the descending order
    if heavy.shape[2] > FEW_HEAVY:  # the k-th largest is the (N - 1 - k)-th smallest
        size = plain.shape[2] + weight.sum(2)
        return Merged.of_values(plain, heavy, weight).select(size - 1 - k).unsqueeze(2)
    if not heavy_ahead:
        return _placed_kth_largest(plain, heavy, weight, k)
    # Two cases need no pass over the plain values per heavy column. (1) Every heavy copy
    # lies ahead of the answer (-L: attackers' rows far from a benign row): the answer is
    # the (k - W)-th largest plain value, W the heavy copies, and it is where that value
    # is at most the least heavy value. (2) Elsewhere more than k - W plain values lie
    # ahead of the heavy copies; with one heavy run and at most k plain values (-O on
    # items with few benign rows), position k then lies in the run.
    b, r, p = plain.shape
    behind = (rank - weight.sum(2)).squeeze(1)  # (b,) the answer's rank among the plain values in case (1)
    out = heavy[:, :, :1].clone()  # case (2)
    done = torch.zeros(b, r, dtype=torch.bool, device=plain.device)
    in_run = torch.zeros(b, dtype=torch.bool, device=plain.device)  # items where case (2) holds unless (1) does
    if heavy.shape[2] == 1:
        in_run = (p <= rank - 1).squeeze(1)
        # Case (1) fails where at least `behind` plain values lie ahead of the run: where it
        # does for an item's first row (-O), a count over every row, a pass cheaper than
        # the guess, settles the rows it fails for; elsewhere (-L) the guess decides.
        counted = in_run & ((plain[:, 0] > heavy[:, 0, :1]).sum(1) >= behind)
        if bool(counted.any()):  # every item of the block: indexing some would copy their rows
            done = counted.unsqueeze(1) & ((plain > heavy[:, :, :1]).sum(2) >= behind.unsqueeze(1))
    need = ~done & (behind >= 1).unsqueeze(1)
    least = torch.where(weight > 0, heavy, torch.inf).amin(2)  # (b, r)
    if bool(need.all()):
        guess = kth_largest(plain, behind.unsqueeze(1).expand(-1, r))
        ahead = guess.squeeze(2) <= least
        out = torch.where(ahead.unsqueeze(2), guess, out)
        done |= ahead
    elif bool(need.any()):
        at = torch.nonzero(need.view(-1)).squeeze(1)
        guess = kth_largest(plain.reshape(b * r, 1, p)[at], behind[at // r].unsqueeze(1)).view(-1)
        ahead = guess <= least.view(-1)[at]
        out.view(-1)[at] = torch.where(ahead, guess, out.view(-1)[at])
        done.view(-1)[at] |= ahead
    done[in_run] = True
    if not bool(done.all()):
        at = torch.nonzero(~done.view(-1)).squeeze(1)
        out.view(-1)[at] = _placed_kth_largest(plain.reshape(b * r, 1, p)[at], heavy.reshape(b * r, 1, -1)[at],
                                               weight.expand(-1, r, -1).reshape(b * r, 1, -1)[at],
                                               k.reshape(-1, 1)[at]).view(-1)
    return out


def _placed_kth_largest(plain: torch.Tensor, heavy: torch.Tensor, weight: torch.Tensor,
                        k: torch.Tensor) -> torch.Tensor:
    """`merged_kth_largest` with k (b, r) 0-based positions, each heavy run placed among
    the plain values by counting (a pass over them per heavy column)."""
    inside = torch.zeros(k.shape, dtype=torch.bool, device=k.device)
    from_heavy = heavy[:, :, 0]
    before = torch.zeros_like(k)
    slot = torch.arange(heavy.shape[2], device=k.device)
    for h in range(heavy.shape[2]):
        value = heavy[:, :, h:h + 1]
        ahead = (heavy > value) | ((heavy == value) & (slot < h))
        start = (plain > value).sum(2) + (ahead * weight).sum(2)
        w = weight[:, :, h]
        hit = (start <= k) & (k < start + w)
        inside |= hit
        from_heavy = torch.where(hit, heavy[:, :, h], from_heavy)
        before += torch.where(start + w <= k, w, 0)
    t = kth_largest(plain, (k - before + 1).clamp(1, plain.shape[2]))
    return torch.where(inside.unsqueeze(2), from_heavy.unsqueeze(2), t)


def kth_largest(x: torch.Tensor, rank: torch.Tensor) -> torch.Tensor:
    """(b, r, 1) the rank[b, i]-th largest value of x[b, i, :] (1 <= rank <= width); x may
    come back reordered along its last dimension.

    Rows whose rank is at most FEW take their largest values off one by one (a max per
    rank: a fraction of a selection's cost; under a -D attack most rows need the second
    largest plain distance). The others, on CPU, go through numpy's in-place partition in
    threads over rows (3-7 ns per value on 2 threads, about half torch.topk's): with up to
    4 distinct ranks at all of them at once, with more after extending each row by
    (largest rank - its rank) values of +inf, which puts every row's answer at one place.
    On GPUs torch.topk."""
    b, r, width = x.shape
    flat, rank = x.reshape(-1, width), rank.reshape(-1)
    few = rank <= FEW
    if bool(few.all()):
        return _largest_one_by_one(flat, rank).view(b, r, 1)
    if bool(few.any()):
        out = flat.new_empty(flat.shape[0], 1)
        rows = torch.nonzero(few).squeeze(1)
        out[rows] = _largest_one_by_one(flat[rows], rank[rows])
        rows = torch.nonzero(~few).squeeze(1)
        out[rows] = _selected(flat[rows], rank[rows])
        return out.view(b, r, 1)
    work = flat if flat.data_ptr() == x.data_ptr() else flat.clone()
    return _selected(work, rank).view(b, r, 1)


def _largest_one_by_one(flat: torch.Tensor, rank: torch.Tensor) -> torch.Tensor:
    """(n, 1) the rank[i]-th largest of flat[i] for small ranks (flat is left as it is)."""
    flat = flat.clone()
    out = flat.new_empty(flat.shape[0], 1)
    for k in range(1, int(rank.max()) + 1):
        top, where = flat.max(1, keepdim=True)
        out = torch.where((rank == k).unsqueeze(1), top, out)
        flat.scatter_(1, where, -torch.inf)
    return out


def _selected(work: torch.Tensor, rank: torch.Tensor) -> torch.Tensor:
    """(n, 1) the rank[i]-th largest of work[i] by partition (CPU) or topk; work may be
    reordered."""
    width = work.shape[1]
    if not use_numpy(work):
        return torch.topk(work, int(rank.max()), dim=1).values.gather(1, (rank - 1).unsqueeze(1))
    distinct = torch.unique(rank)
    if distinct.numel() <= 4:
        kth = sorted(width - k for k in distinct.tolist())
        in_threads(lambda rows: rows.partition(kth, axis=-1), work.numpy())
        return work.gather(1, (width - rank).unsqueeze(1))
    top, spread = int(distinct[-1]), int(distinct[-1] - distinct[0])
    work = torch.cat([work, work.new_full((work.shape[0], spread), torch.inf)], 1)
    work[:, width:].masked_fill_(torch.arange(spread, device=work.device) >= (top - rank).unsqueeze(1), -torch.inf)
    kth = work.shape[1] - top
    in_threads(lambda rows: rows.partition(kth, axis=-1), work.numpy())
    return work[:, kth:kth + 1].clone()
