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


def krum_scores(dist: torch.Tensor, f: int) -> torch.Tensor:
    """Every row's Krum score from the squared distances `dist` (n, n) of an item's rows."""
    n = len(dist)
    if n == 1:
        return dist.new_zeros(1)
    m = n - f - 2 if n > f + 2 else n - f if n > f else n - 1
    m = min(max(m, 1), n - 1)
    others = dist + torch.diag(dist.new_full((n,), torch.inf))
    return torch.sort(others, dim=1).values[:, :m].sum(1)


def loop_multi_krum(rows: torch.Tensor, f: int) -> torch.Tensor:
    k = min(max(len(rows) - f, 1), len(rows))
    order = torch.argsort(krum_scores(torch.cdist(rows, rows) ** 2, f), stable=True)  # ties: upload order
    return rows[order[:k]].mean(0)


def loop_bulyan(rows: torch.Tensor, f: int) -> torch.Tensor:
    n = len(rows)
    if n < 4 * f + 3:
        return loop_median(rows)
    dist = torch.cdist(rows, rows) ** 2
    remaining, selected = list(range(n)), []
    for _ in range(n - 2 * f):  # repeated Krum
        scores = krum_scores(dist[remaining][:, remaining], f)
        selected.append(remaining.pop(int(torch.argmin(scores))))
    return loop_trimmed_mean(rows[selected], 2 * f)  # the theta - 2f values closest to the median


def loop_geometric_median(rows: torch.Tensor, steps: int = 8, smoothing: float = 1e-6) -> torch.Tensor:
    v = rows.mean(0)
    spread = (rows - v).norm(dim=1).mean()
    nu = smoothing * spread if spread > 0 else 1.0
    for _ in range(steps):  # smoothed Weiszfeld
        beta = 1 / (rows - v).norm(dim=1).clamp_min(nu)
        v = (beta.unsqueeze(1) * rows).sum(0) / beta.sum()
    return v


def loop_centered_clipping(rows: torch.Tensor, clip: float = 1.0, steps: int = 3) -> torch.Tensor:
    v = loop_median(rows)
    for _ in range(steps):
        z = rows - v
        norms = z.norm(dim=1, keepdim=True)
        v = v + torch.where(norms > clip, z * clip / norms, z).mean(0)
    return v


def loop_nnm(base):
    """Every row replaced by the mean of its n - f nearest rows (itself included; equal
    distances: earlier rows first), then `base` on the mixed rows."""
    def mixed(rows: torch.Tensor, f: int, **params) -> torch.Tensor:
        k = min(max(len(rows) - f, 1), len(rows))
        nearest = torch.argsort(torch.cdist(rows, rows) ** 2, dim=1, stable=True)[:, :k]
        mixed_rows = torch.stack([rows[torch.sort(i).values].mean(0) for i in nearest])
        return base(mixed_rows, f=f, **params) if base is loop_krum else base(mixed_rows, **params)
    return mixed


LOOP_AGGREGATORS = {
    "mean": lambda rows: rows.mean(0),
    "median": loop_median,
    "trimmed_mean": loop_trimmed_mean,
    "krum": loop_krum,
    "norm": loop_norm,
    "multi_krum": loop_multi_krum,
    "bulyan": loop_bulyan,
    "geometric_median": loop_geometric_median,
    "centered_clipping": loop_centered_clipping,
    "nnm_median": loop_nnm(loop_median),
    "nnm_krum": loop_nnm(loop_krum),
}
