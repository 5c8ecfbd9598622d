"""Sparse robust aggregation: every aggregator runs per item, over the rows uploaded for it.

The server receives a batch of rows (item, gradient, multiplicity); item j's result is
computed from the rows of item j only (the paper's sparse aggregation). A row of
multiplicity c stands for c identical uploads (`SparseUpdates`): every aggregator gives
the result it gives on the expanded rows, each repeated c times in place (exactly for
median and Krum's choice, up to summation order for the means), at a cost that grows
with the distinct rows. All aggregators are vectorised over items (`groups`): no Python
loop over items or rows. The same code runs on CPU and CUDA (the device of the inputs);
on CPU, sorting and selection go through numpy's vectorised kernels, several times
faster than torch's there.

Definitions (n_j = rows of item j in the expanded batch, after dropping non-finite rows):

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
- `krum(f)` (Blanchard et al., NeurIPS 2017): each row is scored by the sum of squared L2
  distances to its m nearest other rows, with m = n_j - f - 2 if n_j > f + 2,
  m = n_j - f if f < n_j <= f + 2 and m = n_j - 1 if n_j <= f (PROTOCOL.md's rule, not
  monotone in n_j: with f = 2, four rows score 2 neighbours, five rows 1), clamped to
  [1, n_j - 1]. The row with the lowest score is returned unchanged; ties go to the
  earliest uploaded row; a single row is returned as is. Distances come from the Gram
  matrix of the item's distinct rows after centring on their mean and scaling by a power
  of two (which cannot overflow); copies of a row count at distance 0, each once.
- `norm(clip=1.0)`: every row is scaled to L2 norm <= clip, then averaged.

A new defense is a function `(items, grads, n_items, counts=None, **params) ->
(n_items, d)` and one `DefenseSpec` entry in `DEFENSES` (docs/extending.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..named import Registry
from ..updates import SparseUpdates
from .groups import finite_mask
from .distance import krum, krum_neighbours
from .order import median, trimmed_mean


def aggregate(name: str | Callable[..., torch.Tensor], items: torch.Tensor, grads: torch.Tensor, n_items: int,
              counts: torch.Tensor | None = None, **params) -> torch.Tensor:
    """Aggregate the uploaded rows of every item with the registered defense `name` (or
    with the aggregator function `name` itself).

    items: int64 (n_rows,), grads: float (n_rows, d), counts: int64 (n_rows,) >= 1, the
    multiplicity of every row (None: ones). Returns (n_items, d) on the device and in the
    dtype of `grads`. `params` go to the aggregator: `f` for trimmed_mean and krum,
    `clip` for norm. Raises ValueError for an unknown name or counts below one.
    """
    aggregator = DEFENSES.entry(name).aggregate if isinstance(name, str) else name
    if counts is not None:
        if counts.shape != items.shape:
            raise ValueError(f"counts has shape {tuple(counts.shape)}, items {tuple(items.shape)}; give one count per row")
        if counts.numel() and int(counts.min()) < 1:
            raise ValueError("every row's count (multiplicity) must be at least 1; drop rows nobody sent")
    return aggregator(items, grads, n_items, counts=counts, **params)


def aggregate_uploads(name: str | Callable[..., torch.Tensor], uploads: SparseUpdates, n_items: int, **params) -> torch.Tensor:
    """`aggregate` on a round's batch (its items, gradients and multiplicities)."""
    return aggregate(name, uploads.items, uploads.grads, n_items, counts=uploads.counts, **params)


def mean(items: torch.Tensor, grads: torch.Tensor, n_items: int, counts: torch.Tensor | None = None) -> torch.Tensor:
    """Coordinate-wise mean per item; non-finite rows propagate."""
    out = grads.new_zeros(n_items, grads.shape[1])
    total = torch.zeros(n_items, dtype=torch.long, device=items.device)
    _add_rows(out, total, items, grads, counts)
    return out.div_(total.clamp_min_(1).unsqueeze(1).to(grads.dtype))


def norm(items: torch.Tensor, grads: torch.Tensor, n_items: int, counts: torch.Tensor | None = None,
         clip: float = 1.0) -> torch.Tensor:
    """Clip every finite row to L2 norm <= clip, then take the per-item mean."""
    keep = finite_mask(grads)
    if keep is not None:
        items, grads, counts = items[keep], grads[keep], None if counts is None else counts[keep]
    over = torch.nonzero(torch.linalg.vector_norm(grads, dim=1) > clip).squeeze(1)
    if over.numel() == 0:
        return mean(items, grads, n_items, counts)
    # rows within the bound are summed in place; the others, clipped, after (a spare
    # output row takes their unclipped values): no copy of the whole batch
    out = grads.new_zeros(n_items + 1, grads.shape[1])
    total = torch.zeros(n_items + 1, dtype=torch.long, device=items.device)
    _add_rows(out, total, items.index_fill(0, over, n_items), grads, counts)
    _add_rows(out, total, items[over], clip_rows(grads[over], clip), None if counts is None else counts[over])
    return out[:n_items].div_(total[:n_items].clamp_min_(1).unsqueeze(1).to(grads.dtype))


def _add_rows(out: torch.Tensor, total: torch.Tensor, items: torch.Tensor, grads: torch.Tensor,
              counts: torch.Tensor | None) -> None:
    """out[j] += the sum of item j's rows, each counts times; total[j] += their number."""
    out.index_add_(0, items, grads)
    total += torch.bincount(items, minlength=total.numel())
    if counts is not None:  # the other c - 1 copies of the few rows sent more than once
        many = torch.nonzero(counts > 1).squeeze(1)
        extra = counts[many] - 1
        out.index_add_(0, items[many], grads[many] * extra.unsqueeze(1).to(grads.dtype))
        total.index_add_(0, items[many], extra)


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


@dataclass(frozen=True)
class DefenseSpec:
    """Everything about one registered defense (server-side aggregator).

    aggregate: `(items, grads, n_items, counts=None, **params) -> (n_items, d)`, per item
        over that item's rows, with the semantics of the module docstring.
    label: its name in tables and figures.
    params: which of the run's quantities it takes, by keyword: `f` = the number of
        malicious clients it assumes (RunConfig.defense_f, or the real count), `clip` =
        the L2 bound RunConfig.grad_limit. A defense taking `clip` clips every row to it
        before aggregating; attacks that model the server's view clip likewise.
    fixed_f: assumes a fixed number f of malicious rows per item (paper, RQ2); it then
        refuses the sparse (-S) attacks, whose malicious rows per item vary.
    """

    aggregate: Callable[..., torch.Tensor]
    label: str
    params: tuple[str, ...] = ()
    fixed_f: bool = False

    def __post_init__(self):
        unknown = set(self.params) - {"f", "clip"}
        if unknown:
            raise ValueError(f"DefenseSpec params {sorted(unknown)} unknown; a defense can take 'f' and 'clip'")

    def bind(self, f: int, clip: float) -> dict:
        """The keyword parameters of `aggregate` for a run with these quantities."""
        known = {"f": f, "clip": clip}
        return {name: known[name] for name in self.params}


DEFENSES: Registry = Registry("defense (aggregator)", {
    "mean": DefenseSpec(mean, "Mean"),
    "median": DefenseSpec(median, "Median"),
    "trimmed_mean": DefenseSpec(trimmed_mean, "TrimM", params=("f",), fixed_f=True),
    "krum": DefenseSpec(krum, "Krum", params=("f",), fixed_f=True),
    "norm": DefenseSpec(norm, "Norm", params=("clip",)),
})


__all__ = ["DEFENSES", "DefenseSpec", "aggregate", "aggregate_uploads", "clip_rows", "krum",
           "krum_neighbours", "mean", "median", "norm", "trimmed_mean"]
