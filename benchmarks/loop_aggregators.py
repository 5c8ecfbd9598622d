"""The per-item loop baseline: the same aggregators, one item at a time (as the authors'
implementation runs them), for the speed comparison in `bench_aggregators.py`.

Same definitions as `spattack.aggregators` (see its docstring), written the plain way.
"""

from __future__ import annotations

import torch


def loop_aggregate(name: str, items: torch.Tensor, grads: torch.Tensor, n_items: int, **params) -> torch.Tensor:
    """(n_items, d): `LOOP_AGGREGATORS[name]` applied to the rows of each item in turn."""
    order = torch.argsort(items, stable=True)
    counts = torch.bincount(items, minlength=n_items).tolist()
    out = grads.new_zeros(n_items, grads.shape[1])
    for j, rows in enumerate(torch.split(grads[order], counts)):
        if name != "mean":
            rows = rows[torch.isfinite(rows).all(1)]
        if len(rows):
            out[j] = LOOP_AGGREGATORS[name](rows, **params)
    return out


def loop_median(rows: torch.Tensor) -> torch.Tensor:
    s = torch.sort(rows, dim=0).values
    n = len(rows)
    return s[(n - 1) // 2] / 2 + s[n // 2] / 2


def loop_trimmed_mean(rows: torch.Tensor, f: int) -> torch.Tensor:
    if f >= len(rows):
        return loop_median(rows)
    dist = (rows - loop_median(rows)).abs()
    # by distance, then by value: of two equally far values the larger is dropped first
    by_value = torch.sort(rows, dim=0, stable=True)
    by_dist = torch.sort(dist.gather(0, by_value.indices), dim=0, stable=True)
    kept = by_value.values.gather(0, by_dist.indices[: len(rows) - f])
    return kept.mean(0)


def loop_krum(rows: torch.Tensor, f: int) -> torch.Tensor:
    n = len(rows)
    if n == 1:
        return rows[0]
    m = n - f - 2 if n > f + 2 else n - f if n > f else n - 1
    m = min(max(m, 1), n - 1)
    dist = torch.cdist(rows, rows) ** 2
    dist.fill_diagonal_(torch.inf)
    scores = torch.sort(dist, dim=1).values[:, :m].sum(1)
    return rows[torch.argmin(scores)]


def loop_norm(rows: torch.Tensor, clip: float = 1.0) -> torch.Tensor:
    norms = rows.norm(dim=1, keepdim=True)
    return torch.where(norms > clip, rows * clip / norms, rows).mean(0)


LOOP_AGGREGATORS = {
    "mean": lambda rows: rows.mean(0),
    "median": loop_median,
    "trimmed_mean": loop_trimmed_mean,
    "krum": loop_krum,
    "norm": loop_norm,
}
