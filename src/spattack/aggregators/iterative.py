"""Aggregators computed by a fixed number of iterations per item, all items of a bucket at
once: the geometric median (smoothed Weiszfeld) and centred clipping.

Both run on each item's distinct rows weighted by their multiplicities (a row sent c
times weighs c: the result on the expanded rows), scaled per item by a power of two
(`unit_scale`) so that no difference or norm of huge finite rows overflows.
"""

from __future__ import annotations

import math

import torch

from .groups import Groups
from .order import _block, median
from .pairwise import distinct_rows, unit_scale, unscale, weighted_mean

# Smoothed Weiszfeld iterations, and its smoothing relative to the rows' spread.
WEISZFELD_STEPS = 8
SMOOTHING = 1e-6
# Centred clipping iterations (L in Karimireddy et al.).
CLIPPING_STEPS = 3


def geometric_median(items: torch.Tensor, grads: torch.Tensor, n_items: int,
                     counts: torch.Tensor | None = None) -> torch.Tensor:
    """Geometric median per item, approximated by the smoothed Weiszfeld algorithm of RFA
    (Pillutla, Kakade & Harchaoui, "Robust Aggregation for Federated Learning", IEEE
    TSP 2022).

    Per item, with rows x_i of multiplicity c_i (n_j = sum c_i): start from their mean
    v_0; WEISZFELD_STEPS (8) times, v <- sum_i b_i x_i / sum_i b_i with b_i = c_i /
    max(nu, |v - x_i|) (L2). nu = SMOOTHING (1e-6) times the spread, the mean of |x_i -
    v_0| over the n_j rows (if all rows are equal, v_0 is the answer), so the result
    scales and shifts with the rows. A fixed number of steps, not a run to convergence;
    each step does not increase RFA's smoothed objective (sum_i c_i |v - x_i|, made
    quadratic within nu of a row). items int64 (n_rows,), grads float (n_rows, d),
    counts int64 (n_rows,) or None. Returns (n_items, d) in the dtype and on the device
    of `grads`; items without finite rows get 0. Cost: WEISZFELD_STEPS passes over the
    rows.
    """
    groups = Groups.of(items, grads, n_items, counts)
    out = groups.zeros()
    for bucket in groups.buckets(block_elements=_block(grads)):
        rows, weight, _ = distinct_rows(bucket)
        y, exponent = unit_scale(rows)
        totals = bucket.totals
        v = weighted_mean(y, weight, totals)
        spread = weighted_mean(torch.linalg.vector_norm(y - v.unsqueeze(1), dim=2, keepdim=True), weight, totals)
        nu = torch.where(spread > 0, SMOOTHING * spread, 1)  # (b, 1)
        live = weight > 0
        for _ in range(WEISZFELD_STEPS):
            dist = torch.linalg.vector_norm(y - v.unsqueeze(1), dim=2).maximum(nu)
            # b_i scaled by the smallest max(nu, |v - x_i|): at most c_i, the closest row's c_i
            closest = dist.masked_fill(~live, torch.inf).amin(1, keepdim=True)
            beta = weight.to(y.dtype) * (closest / dist)
            v = weighted_mean(y, beta, beta.sum(1))
        out[bucket.ids] = unscale(v, exponent.view(-1, 1))
    return out


def centered_clipping(items: torch.Tensor, grads: torch.Tensor, n_items: int, clip: float = 1.0,
                      counts: torch.Tensor | None = None) -> torch.Tensor:
    """Centred clipping per item (Karimireddy, He & Jaggi, ICML 2021, "Learning from
    history for Byzantine robust optimization": the iterative centred clipping rule CC),
    stateless.

    Per item, with rows x_i of multiplicity c_i (n_j = sum c_i): v <- v + sum_i (c_i /
    n_j) clip(x_i - v, tau), with clip(z, tau) = z min(1, tau / |z|) (L2), CLIPPING_STEPS
    (L = 3) times. The original starts from the previous round's aggregate (momentum);
    this one keeps no state and starts from the item's coordinate-wise median (`median`).
    tau = `clip`: registered as a defense, the run's L2 bound (RunConfig.grad_limit), so
    a row farther than grad_limit from the centre moves it by at most grad_limit /
    n_j per step. items int64 (n_rows,), grads float (n_rows, d), counts int64 (n_rows,)
    or None. Returns (n_items, d) in the dtype and on the device of `grads`; items
    without finite rows get 0. Raises ValueError unless 0 < clip < inf.
    """
    clip = float(clip)
    if not 0 < clip < math.inf:
        raise ValueError(f"clip (the clipping radius tau) must be a positive finite number, got {clip!r}")
    start = median(items, grads, n_items, counts)
    groups = Groups.of(items, grads, n_items, counts)
    out = groups.zeros()
    for bucket in groups.buckets(block_elements=_block(grads)):
        rows, weight, _ = distinct_rows(bucket)
        y, exponent = unit_scale(rows)
        exponent = exponent.view(-1, 1)
        scale_down = torch.ldexp(torch.ones_like(exponent, dtype=y.dtype), -exponent)
        v = start[bucket.ids] * scale_down
        tau = clip * scale_down  # (b, 1)
        for _ in range(CLIPPING_STEPS):
            z = y - v.unsqueeze(1)
            norm = torch.linalg.vector_norm(z, dim=2)
            factor = torch.where(norm > tau, tau / norm, 1)
            v = v + weighted_mean(z, weight.to(y.dtype) * factor, bucket.totals)
        out[bucket.ids] = unscale(v, exponent)
    return out
