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
  (the training loop detects the divergence). The robust aggregators (all the others)
  first drop every row holding any NaN or +-inf value; an item whose rows are all
  dropped gets a zero row. They never output NaN.
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
- `multi_krum(f)` (Blanchard et al., NeurIPS 2017): the mean of the k = n_j - f rows of
  lowest Krum score (`krum`'s score and neighbour rule), k clamped to [1, n_j]; equal
  scores in upload order, copies of a row at its place. k = 1 gives `krum`'s row.
- `bulyan(f)` (El Mhamdi et al., ICML 2018): when n_j >= 4f + 3, theta = n_j - 2f rows
  are selected by repeated Krum (the remaining row of lowest score, `krum`'s rule on
  the remaining count, leaves one copy at a time; ties to the earliest upload), then per
  coordinate the beta = theta - 2f selected values closest to their median are averaged
  (`trimmed_mean` with 2f on the selection). When n_j < 4f + 3: the coordinate-wise
  median of the item's rows.
- `geometric_median` (RFA, Pillutla et al., IEEE TSP 2022): 8 smoothed Weiszfeld steps
  from the mean, v <- sum b_i x_i / sum b_i with b_i = 1 / max(nu, |v - x_i|) per copy,
  nu = 1e-6 times the mean distance of the rows to their mean.
- `centered_clipping(clip=1.0)` (Karimireddy et al., ICML 2021): from the coordinate-
  wise median (stateless: the original starts from the last round's momentum), 3 times
  v <- v + mean_i clip(x_i - v, tau), clip scaling to L2 norm <= tau = `clip`. As a
  defense, tau is the run's grad_limit; since it takes `clip`, attacks that model the
  server's view clip the benign rows to grad_limit, as for `norm` (`DefenseSpec`).
- `nnm_median(f)`, `nnm_krum(f)` (Allouah et al., AISTATS 2023): nearest-neighbour
  mixing, then `median` / `krum(f)` on the mixed rows: every row is replaced by the
  mean of its k = n_j - f nearest rows (itself included, squared L2, k clamped to
  [1, n_j], equal distances in upload order). `mixing.nnm(base)` composes it with any
  aggregator.

Ties are ties of the computed scores. On CUDA, rows whose scores are equal in exact
arithmetic can still get different computed scores, because the GPU rounds their sums in
another order. A rule that selects rows (Krum, Multi-Krum, Bulyan, NNM's neighbours) may
then take the later of two such rows where the CPU takes the earlier. This was seen for
Krum and Multi-Krum (docs/gpu/README.md). Apart from such ties, CUDA matches the CPU up to
rounding.

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
from .iterative import centered_clipping, geometric_median
from .mixing import nearest_neighbour_mixing, nnm, nnm_krum, nnm_median
from .order import median, trimmed_mean
from .reputation import HeadEvidenceReputation
from .selection import bulyan, multi_krum


def aggregate(name: str | Callable[..., torch.Tensor], items: torch.Tensor, grads: torch.Tensor, n_items: int,
              counts: torch.Tensor | None = None, **params) -> torch.Tensor:
    """Aggregate the uploaded rows of every item with the registered defense `name` (or
    with the aggregator function `name` itself).

    items: int64 (n_rows,), grads: float (n_rows, d), counts: int64 (n_rows,) >= 1, the
    multiplicity of every row (None: ones). Returns (n_items, d) on the device and in the
    dtype of `grads`. `params` go to the aggregator, as its `DefenseSpec.params` name them:
    `f` (int >= 0, the malicious rows assumed per item) for the defenses that assume it,
    `clip` for the clipping rules, `clients` for defenses that look at senders. A
    registered stateful defense aggregates this batch as its first round. Raises
    ValueError for an unknown name, a missing f or senders, or counts below one.
    """
    if isinstance(name, str):
        spec = DEFENSES.entry(name)
        if "f" in spec.params and "f" not in params:
            raise ValueError(f"defense {name} assumes f malicious rows per item: pass f= (an int >= 0; a run "
                             f"passes defense_f or else its number of malicious clients)")
        if "clients" in spec.params and "clients" not in params:
            raise ValueError(f"defense {name} looks at who sent each row: pass clients= (int64, one sender per "
                             f"upload, SparseUpdates.clients) or use aggregate_uploads")
        aggregator = spec.aggregate() if spec.stateful else spec.aggregate
    else:
        aggregator = name
    if counts is not None:
        if counts.shape != items.shape:
            raise ValueError(f"counts has shape {tuple(counts.shape)}, items {tuple(items.shape)}; give one count per row")
        if counts.numel() and int(counts.min()) < 1:
            raise ValueError("every row's count (multiplicity) must be at least 1; drop rows nobody sent")
    return aggregator(items, grads, n_items, counts=counts, **params)


def aggregate_uploads(name: str | Callable[..., torch.Tensor], uploads: SparseUpdates, n_items: int, **params) -> torch.Tensor:
    """`aggregate` on a round's batch (its items, gradients, multiplicities and, for a
    registered defense that takes them, its senders)."""
    if isinstance(name, str) and "clients" in DEFENSES.entry(name).params:
        params = {"clients": uploads.clients, **params}
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
    # one multiply by a per-row scale (1 within the bound): one pass over the rows, the same
    # values as scaling only the rows over it
    return grads * torch.where(over, clip / norms, 1)


@dataclass(frozen=True)
class DefenseSpec:
    """Everything about one registered defense (server-side aggregator).

    aggregate: `(items, grads, n_items, counts=None, **params) -> (n_items, d)`, per item
        over that item's rows, with the semantics of the module docstring; for a
        `stateful` defense, a class whose instances are such functions.
    label: its name in tables and figures.
    params: which of the run's quantities it takes, by keyword: `f` = the number of
        malicious clients it assumes (RunConfig.defense_f, or the real count), `clip` =
        the L2 bound RunConfig.grad_limit, `clients` = who sent each row (int64 (sum of
        counts,), `SparseUpdates.clients`: row r's senders are clients[o_r : o_r +
        counts[r]]). A defense taking `clip` clips every row to it before aggregating;
        attacks that model the server's view clip likewise.
    fixed_f: assumes a fixed number f of malicious rows per item (paper, RQ2); it then
        refuses the sparse (-S) attacks, whose malicious rows per item vary.
    stateful: keeps state from round to round (history, reputations): every run builds
        one instance of `aggregate` per stream of rounds (`for_run`).
    relative_cost: a training cell's wall time under this defense over the same cell's
        under Mean, roughly (the workflow starts the costliest cells first with it).
        Measured: the paper's five from ML-1M's cells at commit 5d54f4e (median cell
        of each), the others from their epoch times on ML-100K (README, Speed).
    """

    aggregate: Callable[..., torch.Tensor]
    label: str
    params: tuple[str, ...] = ()
    fixed_f: bool = False
    stateful: bool = False
    relative_cost: float = 1.0

    def __post_init__(self):
        unknown = set(self.params) - {"f", "clip", "clients"}
        if unknown:
            raise ValueError(f"DefenseSpec params {sorted(unknown)} unknown; a defense can take 'f', 'clip' "
                             f"and 'clients'")
        if not self.relative_cost > 0:
            raise ValueError(f"DefenseSpec relative_cost must be > 0 (a cell's time over Mean's), got "
                             f"{self.relative_cost}")

    def bind(self, f: int, clip: float) -> dict:
        """The keyword parameters of `aggregate` for a run with these quantities (all but
        `clients`, which come with each round's uploads)."""
        known = {"f": f, "clip": clip}
        return {name: known[name] for name in self.params if name in known}

    def for_run(self, f: int, clip: float) -> Callable[[SparseUpdates, int], torch.Tensor]:
        """`(uploads, n_items) -> (n_items, d)`: the aggregator of one stream of rounds of a
        run (a stateful defense's state lives in it; a run with dense weights builds a
        second one for the dense rows)."""
        aggregator = self.aggregate() if self.stateful else self.aggregate
        params = self.bind(f, clip)
        takes_clients = "clients" in self.params

        def aggregate_round(uploads: SparseUpdates, n_items: int) -> torch.Tensor:
            senders = {"clients": uploads.clients} if takes_clients else {}
            return aggregate(aggregator, uploads.items, uploads.grads, n_items, counts=uploads.counts,
                             **params, **senders)

        return aggregate_round


DEFENSES: Registry = Registry("defense (aggregator)", {
    "mean": DefenseSpec(mean, "Mean"),
    "median": DefenseSpec(median, "Median", relative_cost=2.6),
    "trimmed_mean": DefenseSpec(trimmed_mean, "TrimM", params=("f",), fixed_f=True, relative_cost=3.5),
    "krum": DefenseSpec(krum, "Krum", params=("f",), fixed_f=True, relative_cost=14),
    "norm": DefenseSpec(norm, "Norm", params=("clip",), relative_cost=1.4),
    "multi_krum": DefenseSpec(multi_krum, "Multi-Krum", params=("f",), fixed_f=True, relative_cost=5),
    "bulyan": DefenseSpec(bulyan, "Bulyan", params=("f",), fixed_f=True, relative_cost=30),
    "geometric_median": DefenseSpec(geometric_median, "GeoMed", relative_cost=2),
    "centered_clipping": DefenseSpec(centered_clipping, "CClip", params=("clip",), relative_cost=2),
    "nnm_median": DefenseSpec(nnm_median, "NNM+Median", params=("f",), fixed_f=True, relative_cost=10),
    "nnm_krum": DefenseSpec(nnm_krum, "NNM+Krum", params=("f",), fixed_f=True, relative_cost=10),
    "head_reputation": DefenseSpec(HeadEvidenceReputation, "HeadRep", params=("clients",), stateful=True,
                                   relative_cost=1.5),
})


__all__ = ["DEFENSES", "DefenseSpec", "HeadEvidenceReputation", "aggregate", "aggregate_uploads", "bulyan",
           "centered_clipping", "clip_rows", "geometric_median", "krum", "krum_neighbours", "mean", "median",
           "multi_krum", "nearest_neighbour_mixing", "nnm", "nnm_krum", "nnm_median", "norm", "trimmed_mean"]
