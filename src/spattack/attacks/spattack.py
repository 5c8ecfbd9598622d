"""Spattack (the paper's attacks): O/L = omniscient/limited knowledge, D/S = dense/sparse
capability.

- O: for every attacked item j, each of its c_j attackers uploads -B_j / c_j, B_j the
  sum of this round's benign rows of j (clipped first when the defense is Norm, as the
  server would clip them). Under Mean the aggregate of j is then exactly zero.
- L: one N(0, 1) matrix (items x dim), drawn once with the attack's seed and shared by
  every attacker and every epoch; attackers upload its rows.
- D: every attacker attacks every item (c_j = number of attackers).
- S: every attacker attacks m_max distinct items, m_max = the most items one benign
  client uploads, drawn once without replacement with probability proportional to item
  popularity (capped at the number of items with non-zero popularity).
- Dense weights (FedGNN's GNN weights, which every client uploads): every attacker,
  -D or -S alike, uploads a dense row too. O: -B / n_mal, B the sum of the benign dense
  rows (clipped first under Norm), so Mean's dense aggregate is exactly zero. L: one
  N(0, 1) vector of the dense width, drawn once from a generator of its own (the sparse
  draws are unchanged) and shared by every attacker and epoch.
"""

from __future__ import annotations

import torch

from ..aggregators import clip_rows
from ..updates import SparseUpdates


def benign_item_sums(benign: SparseUpdates, ctx) -> torch.Tensor:
    """(n_items, dim) sum of the benign rows of each item, as the server would see them."""
    grads = benign.grads if ctx.server_clip is None else clip_rows(benign.grads, ctx.server_clip)
    return torch.zeros(ctx.n_items, ctx.dim, dtype=grads.dtype, device=grads.device).index_add_(
        0, benign.items, grads)


def popularity_targets(ctx, generator: torch.Generator) -> torch.Tensor:
    """(n_malicious, m_max) items per attacker, without replacement, p ~ popularity."""
    weights = torch.as_tensor(ctx.popularity, dtype=torch.float64)
    m = min(ctx.max_items_per_client, int((weights > 0).sum()))
    rows = weights.expand(ctx.n_malicious, -1)
    return torch.multinomial(rows, m, replacement=False, generator=generator).to(ctx.device)


class Spattack:
    """One of the four Spattack variants; see the module docstring."""

    omniscient: bool = True
    dense: bool = True

    def __init__(self, ctx):
        self.ctx = ctx
        gen = ctx.generator()
        if self.dense:
            self.items = torch.arange(ctx.n_items, device=ctx.device)
            self.counts = torch.full_like(self.items, ctx.n_malicious)
            self.senders = lambda: ctx.malicious_ids.repeat(ctx.n_items)
        else:  # the attackers that chose an item upload one row for it, with their number
            self.targets = targets = self.choose_targets(ctx, gen)
            attacker = ctx.malicious_ids.repeat_interleave(targets.shape[1])
            by_item = torch.argsort(targets.reshape(-1), stable=True)
            self.items, self.counts = torch.unique(targets, return_counts=True)
            senders = attacker[by_item]
            self.senders = lambda: senders
        self.attackers_per_item = torch.zeros(ctx.n_items, 1, dtype=torch.long, device=ctx.device)
        self.attackers_per_item[self.items, 0] = self.counts
        self.attackers_per_item.clamp_(min=1)
        if not self.omniscient:
            self.noise = torch.randn(ctx.n_items, ctx.dim, generator=gen).to(ctx.device)
            if ctx.dense_dim:
                self.dense_noise = torch.randn(ctx.dense_dim, generator=ctx.generator(salt=2)).to(ctx.device)

    choose_targets = staticmethod(popularity_targets)
    item_sums = staticmethod(benign_item_sums)

    def uploads(self, epoch: int, benign: SparseUpdates, model) -> SparseUpdates:
        if self.omniscient:
            per_item = -self.item_sums(benign, self.ctx) / self.attackers_per_item
        else:
            per_item = self.noise
        return SparseUpdates(self.senders, self.items, per_item[self.items].to(benign.grads.dtype), self.counts)

    def dense_uploads(self, epoch: int, benign: SparseUpdates, model) -> SparseUpdates:
        if self.omniscient:
            grads = benign.grads if self.ctx.server_clip is None else clip_rows(benign.grads, self.ctx.server_clip)
            row = -grads.sum(0) / self.ctx.n_malicious
        else:
            row = self.dense_noise
        return self.ctx.dense_param_rows(row.to(benign.grads.dtype))


class SpattackOD(Spattack):
    omniscient, dense = True, True


class SpattackOS(Spattack):
    omniscient, dense = True, False


class SpattackLD(Spattack):
    omniscient, dense = False, True


class SpattackLS(Spattack):
    omniscient, dense = False, False


class NonFinite:
    """Test attack: every attacker uploads NaN (or +inf) for every item, to check that
    the server neither crashes nor silently turns the model into NaN."""

    value = float("nan")

    def __init__(self, ctx):
        self.ctx = ctx

    def uploads(self, epoch: int, benign: SparseUpdates, model) -> SparseUpdates:
        values = torch.full((self.ctx.n_items, self.ctx.dim), self.value, dtype=benign.grads.dtype,
                            device=self.ctx.device)
        return self.ctx.dense_rows(values)

    def dense_uploads(self, epoch: int, benign: SparseUpdates, model) -> SparseUpdates:
        return self.ctx.dense_param_rows(torch.full((self.ctx.dense_dim,), self.value, dtype=benign.grads.dtype,
                                                    device=self.ctx.device))


class InfAttack(NonFinite):
    value = float("inf")
