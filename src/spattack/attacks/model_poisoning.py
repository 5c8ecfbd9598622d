"""Model-poisoning baselines from dense federated learning (Table 3).

They estimate the benign statistics the dense way, as their papers assume every client
updates every parameter: a client that did not upload a row for item j counts as a zero
row of j. In federated recommendation most clients touch few items, so these estimates
shrink toward zero (the paper's explanation of their weakness). Every attacker uploads a
row for every item.

Dense weights (FedGNN's GNN weights): every benign client uploads a dense row, so the
same rule applied to the dense rows' statistics needs no zero padding: Gaussian, LIE and
Fang upload what their rule gives with the mean/std/extremes of the benign dense rows
(Gaussian's and Fang's dense draws come from a generator of their own, so the sparse
draws are unchanged). Cluster's rule is about item embeddings only; its attackers upload
the benign dense mean, which leaves Mean's dense aggregate unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import torch

from ..updates import SparseUpdates


@dataclass
class DenseStats:
    """Per item and coordinate, over all benign clients, non-uploads counted as zeros."""

    mean: torch.Tensor
    std: torch.Tensor
    max: torch.Tensor
    min: torch.Tensor


def dense_stats(benign: SparseUpdates, n_clients: int, n_items: int) -> DenseStats:
    """Mean, std, max and min of each item's rows, padding every item to `n_clients` rows
    with zeros."""
    g = benign.grads
    zeros = torch.zeros(n_items, g.shape[1], dtype=g.dtype, device=g.device)
    total = zeros.clone().index_add_(0, benign.items, g)
    total_sq = zeros.clone().index_add_(0, benign.items, g * g)
    mean = total / n_clients
    std = (total_sq / n_clients - mean * mean).clamp(min=0).sqrt()
    idx = benign.items.unsqueeze(1).expand_as(g)
    # padding zeros take part in the extremes of every item not uploaded by all clients
    full = (torch.bincount(benign.items, minlength=n_items) >= n_clients).unsqueeze(1)
    hi = zeros.clone().scatter_reduce_(0, idx, g, "amax", include_self=False)
    lo = zeros.clone().scatter_reduce_(0, idx, g, "amin", include_self=False)
    hi = torch.where(full, hi, hi.clamp(min=0))
    lo = torch.where(full, lo, lo.clamp(max=0))
    return DenseStats(mean, std, hi, lo)


class _DenseBaseline:
    def __init__(self, ctx):
        self.ctx = ctx
        self.gen = ctx.generator()
        self.dense_gen = ctx.generator(salt=3)

    def stats(self, benign: SparseUpdates) -> DenseStats:
        return dense_stats(benign, self.ctx.n_benign, self.ctx.n_items)

    def _rand(self, like: torch.Tensor, shape, normal: bool, gen: torch.Generator | None = None) -> torch.Tensor:
        draw = torch.randn if normal else torch.rand
        return draw(shape, generator=self.gen if gen is None else gen, dtype=like.dtype).to(like.device)

    def uploads(self, epoch, benign, model):
        return self.ctx.dense_rows(self.rule(self.stats(benign), self.gen))

    def dense_uploads(self, epoch, benign, model):
        """The same rule on the statistics of the benign dense rows (one per benign client)."""
        values = self.rule(dense_stats(benign, self.ctx.n_benign, 1), self.dense_gen)
        return self.ctx.dense_param_rows(values.reshape(-1, self.ctx.dense_dim))


class Gaussian(_DenseBaseline):
    """Gaussian attack (Fang et al., USENIX Security 2020, "Local model poisoning attacks
    to Byzantine-robust federated learning"): every attacker uploads an independent
    sample of N(mean, std^2) of the (dense) benign rows, fresh every epoch."""

    def rule(self, s: DenseStats, gen: torch.Generator) -> torch.Tensor:
        noise = self._rand(s.mean, (self.ctx.n_malicious, *s.mean.shape), normal=True, gen=gen)
        return s.mean + s.std * noise


class LIE(_DenseBaseline):
    """A Little Is Enough (Baruch et al., NeurIPS 2019): upload mean - z_max * std with
    z_max = Phi^-1((n - s) / n), s = floor(n / 2 + 1) - m, for n clients of which m
    are malicious. Every attacker uploads the same row."""

    def __init__(self, ctx):
        super().__init__(ctx)
        n, m = ctx.n_benign + ctx.n_malicious, ctx.n_malicious
        s = n // 2 + 1 - m
        self.z = NormalDist().inv_cdf((n - s) / n)

    def rule(self, s: DenseStats, gen: torch.Generator) -> torch.Tensor:
        return s.mean - self.z * s.std


class Fang(_DenseBaseline):
    """Fang et al. (USENIX Security 2020, "Local model poisoning attacks to
    Byzantine-robust federated learning"), partial knowledge: per coordinate, push against
    the sign of the mean benign row with values beyond the benign extreme on that side,
    the extremes estimated from the mean and std of the benign rows: uniform in
    [mean + 3 std, mean + 4 std] when the mean is negative, [mean - 4 std, mean - 3 std]
    when it is positive. With dense statistics the std of a tail item is small, so the
    push is weak there. This reading reproduces the paper's Fang column (see
    docs/reproduction); `fang-full` takes the exact extremes instead."""

    low, high = 3.0, 4.0

    def rule(self, s: DenseStats, gen: torch.Generator) -> torch.Tensor:
        u = self.low + (self.high - self.low) * self._rand(
            s.mean, (self.ctx.n_malicious, *s.mean.shape), normal=False, gen=gen)
        return s.mean - torch.sign(s.mean) * u * s.std


class FangFull(_DenseBaseline):
    """Fang et al. (2020), full knowledge: like `Fang` but beyond the exact benign
    extremes of each coordinate (dense: non-uploads count as zeros): below the minimum
    when the mean is positive ([min / b, min] if min > 0, else [b * min, min]) and above
    the maximum otherwise ([max, b * max] if max > 0, else [max, max / b]); b = 2."""

    b = 2.0

    def rule(self, s: DenseStats, gen: torch.Generator) -> torch.Tensor:
        b = self.b
        down_lo = torch.where(s.min > 0, s.min / b, s.min * b)  # below the minimum
        up_hi = torch.where(s.max > 0, s.max * b, s.max / b)  # above the maximum
        lo = torch.where(s.mean > 0, down_lo, s.max)
        hi = torch.where(s.mean > 0, s.min, up_hi)
        u = self._rand(s.mean, (self.ctx.n_malicious, *s.mean.shape), normal=False, gen=gen)
        return lo + (hi - lo) * u


class Cluster(_DenseBaseline):
    """ClusterAttack (Yu et al., AAAI 2023, "Untargeted attack against federated
    recommendation systems via poisonous item embeddings and the defense"): push item
    embeddings to collapse into a few dense clusters.

    Choices: k = 10 clusters by k-means (10 Lloyd steps, seeded) on the current item
    embeddings every epoch; each item's malicious row points from its cluster centre to
    the item (so the server step moves the item toward the centre), scaled to the norm
    of the item's dense mean benign row, to look like a normal update. All attackers
    upload the same row."""

    k, steps = 10, 10

    def uploads(self, epoch, benign, model):
        v = model.item_emb
        centres = v[torch.randperm(v.shape[0], generator=self.gen)[: self.k].to(v.device)]
        for _ in range(self.steps):
            assign = torch.cdist(v, centres).argmin(1)
            sums = torch.zeros_like(centres).index_add_(0, assign, v)
            counts = torch.bincount(assign, minlength=len(centres)).unsqueeze(1)
            centres = torch.where(counts > 0, sums / counts.clamp(min=1), centres)
        direction = v - centres[assign]
        direction = direction / direction.norm(dim=1, keepdim=True).clamp(min=1e-12)
        scale = self.stats(benign).mean.norm(dim=1, keepdim=True)
        return self.ctx.dense_rows(direction * scale)

    def dense_uploads(self, epoch, benign, model):
        """No cluster rule for GNN weights: the benign dense mean (neutral under Mean)."""
        return self.ctx.dense_param_rows(benign.grads.mean(0))
