"""Helpers shared by the aggregators that look at whole rows (Multi-Krum, Bulyan, NNM,
geometric median, centred clipping): a bucket's distinct rows with their multiplicities,
scaling, squared distances, and "the k expanded rows of lowest key".

Every item's distinct rows (plain and heavy, see `groups`) form a zero-padded (b, Q, d)
block with multiplicities `weight` (b, Q) (0 on padding). Row values are scaled per item
by a power of two so that the largest |value| is below 1: exact (bar subnormals), and
distances and differences of huge finite rows cannot overflow.
"""

from __future__ import annotations

import torch

from .groups import Bucket


def distinct_rows(bucket: Bucket) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(b, Q, d) the items' rows, plain first then heavy (`krum_scores`' layout), (b, Q)
    their multiplicities (0 on padding), and (b, Q) the permutation that lists each
    item's rows in upload order, padding last (`reorder`)."""
    plain, valid = bucket.plain_rows()
    heavy, heavy_weight = bucket.heavy_rows()
    if bucket.heavy_width == 0:  # plain rows are stored in upload order, padding last
        order = torch.arange(bucket.width, device=plain.device).expand(plain.shape[0], -1)
        return plain, valid.long(), order
    rows = torch.cat([plain, heavy], 1)
    weight = torch.cat([valid.long(), heavy_weight], 1)
    upload = torch.cat(bucket.upload_index(), 1)
    upload = torch.where(weight > 0, upload, torch.iinfo(upload.dtype).max)
    return rows, weight, upload.argsort(1)


def reorder(order: torch.Tensor, *blocks: torch.Tensor) -> list[torch.Tensor]:
    """Each (b, Q, ...) block with its columns permuted by `order` (b, Q)."""
    out = []
    for block in blocks:
        index = order.view(*order.shape, *[1] * (block.dim() - 2)).expand(*order.shape, *block.shape[2:])
        out.append(block.gather(1, index))
    return out


def unit_scale(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows * 2^-e, e) per item, e (b, 1, 1) the exponent that puts every |value| of the
    item below 1 (e = 0 for an all-zero item; `unscale` undoes it). Padding must be 0."""
    exponent = torch.frexp(rows.abs().amax((1, 2), keepdim=True)).exponent
    return rows * torch.ldexp(torch.ones_like(exponent, dtype=rows.dtype), -exponent), exponent


def unscale(x: torch.Tensor, exponent: torch.Tensor) -> torch.Tensor:
    """x * 2^exponent, in two factors (2^128 alone overflows float32)."""
    half = exponent // 2
    one = torch.ones_like(exponent, dtype=x.dtype)
    return x * torch.ldexp(one, half) * torch.ldexp(one, exponent - half)


def squared_distances(rows: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """(b, Q, Q) squared L2 distances between the distinct rows of each item, in units of
    the item's `unit_scale` squared; 0 on the diagonal and for padding. Computed from the
    Gram matrix of the scaled rows shifted by the item's first row, made exactly
    symmetric: exact on rows of small integers, so equal distances stay equal there."""
    valid = weight > 0
    y, _ = unit_scale(rows)
    first = y.gather(1, valid.long().argmax(1).view(-1, 1, 1).expand(-1, 1, y.shape[2]))
    y = (y - first).masked_fill_(~valid.unsqueeze(2), 0)
    sq = (y * y).sum(2)
    dist = torch.baddbmm(sq.unsqueeze(2) + sq.unsqueeze(1), y, y.transpose(1, 2), alpha=-2)
    dist = (dist + dist.transpose(1, 2)).mul_(0.5).clamp_min_(0)  # symmetric to the bit: ties stay ties
    dist.diagonal(dim1=1, dim2=2).zero_()
    pair = valid.unsqueeze(2) & valid.unsqueeze(1)
    return dist.masked_fill_(~pair, 0)


def take_lowest(keys: torch.Tensor, weight: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """How many copies of each column the `keep` expanded rows of lowest key take.

    keys (..., Q) with columns in upload order, weight (..., Q) (broadcast to keys) the
    multiplicities, keep (...) the number of expanded rows to take (<= their total).
    Returns (..., Q) int64: columns by increasing key, equal keys by column (earlier
    upload first), each copy counted once, until `keep` are taken.
    """
    order = keys.argsort(dim=-1, stable=True)
    w = weight.expand_as(keys).gather(-1, order)
    before = w.cumsum(-1) - w
    taken = (keep.unsqueeze(-1) - before).clamp_min(0).minimum(w)
    return torch.zeros_like(w).scatter_(-1, order, taken)


def weighted_mean(rows: torch.Tensor, weight: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
    """(..., d) sum_j weight[.., j] rows[.., j] / total: rows (b, Q, d), weight (b, Q) or
    (b, R, Q), total broadcast to weight minus its last dimension. Each weight is divided
    first (a convex combination: no overflow)."""
    share = weight.to(rows.dtype) / total.unsqueeze(-1).to(rows.dtype)
    if share.dim() == 2:
        return torch.bmm(share.unsqueeze(1), rows).squeeze(1)
    return torch.bmm(share, rows)
