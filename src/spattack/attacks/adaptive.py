"""Adaptive attacks against the head-evidence reputation (`aggregators.reputation`),
written knowing its rule (docs/defenses.md):

- Cardinality: every attacker uploads m = 2 x the median training profile items, about
  what a median benign client uploads (a positive and a negative per training item), so
  the defense's vote cap (a quantile of the clients' row counts) leaves its vote whole.
- Evidence: attackers never upload for the 10% most popular items (the defense's
  evidence items are those with the most votes, i.e. the popular ones), so they are never
  scored and stay trusted (unless their own rows lift a target into the evidence items,
  which happens on small data). Their targets are the other items, most popular first (those
  appear most among the users' test items), dealt round-robin so that attacker a takes
  items a*m .. a*m + m - 1 (mod their number): covered as evenly as the budget allows.
- Values: Evade-O (omniscient) cancels what the defense would compute: per target item,
  the attackers upload -B_j / c_j, B_j the sum of the benign rows weighted by the votes
  the defense gives their senders (min(1, cap / rows sent), cap the 0.9 quantile of the
  clients' row counts, the attackers' counts included), so the item's weighted mean is
  zero up to the defense's norm budget, which it does not model. Evade-L (limited
  knowledge) uploads the shared N(0, 1) rows of Spattack-L for its targets.
- Dense weights (FedGNN): as Spattack-O / -L.

Evade-H (omniscient) goes the other way: it attacks the head, where the test items are,
and keeps its own scores typical instead of staying unscored. Every attacker uploads the
same m items, the m most popular (a median client's cardinality again: whole votes):
- the first half (attacked): -(1 + overshoot) B_j / n_malicious, B_j the vote-weighted
  benign sum as for Evade-O, so the item's vote-weighted mean is -overshoot B_j / (mass):
  reversed, and the item's centre C_j points along the attackers' rows (alignment +1);
- the second half (cover): rows along the item's benign consensus B_j, with the norm
  that makes the attacker's mean size score zero: exp(M_j - mean size of its attacked
  rows), M_j the vote-weighted median of ln|g| over the item's benign rows (step 3 of the
  rule). Every row is thus aligned with its item's centre, and the sizes average to the
  typical one; the attack ignores its own rows' effect on M_j and on the vote cap.
"""

from __future__ import annotations

import torch

from ..aggregators.reputation import client_votes, item_weighted_median
from ..updates import SparseUpdates
from .spattack import Spattack

HEAD_SHARE = 0.1  # the most popular share of items the attackers leave alone


def cardinality(ctx) -> tuple[int, torch.Tensor]:
    """(m, items): how many items each attacker uploads, and the items it may target (all
    but the HEAD_SHARE most popular), most popular first."""
    popularity = torch.as_tensor(ctx.popularity, dtype=torch.float64)
    order = torch.argsort(popularity, descending=True, stable=True)
    tail = order[int(HEAD_SHARE * ctx.n_items) + 1:]
    return max(1, min(2 * ctx.profile_size, tail.numel())), tail


def tail_targets(ctx, generator: torch.Generator) -> torch.Tensor:
    """(n_malicious, m) items per attacker: the most popular items below the head share
    first, round-robin."""
    m, tail = cardinality(ctx)
    slots = torch.arange(ctx.n_malicious * m).view(ctx.n_malicious, m) % tail.numel()
    return tail[slots].to(ctx.device)


def row_masses(benign: SparseUpdates, ctx) -> torch.Tensor:
    """(n_rows,) float64: each benign row's mass under the head-evidence reputation, the sum
    of its senders' votes (`reputation.client_votes`, the attackers' uploads counted)."""
    clients = benign.clients
    m, _ = cardinality(ctx)
    sent = torch.cat([torch.bincount(clients), torch.full((ctx.n_malicious,), m, device=clients.device)])
    vote = client_votes(sent)[clients]
    return torch.zeros(len(benign), dtype=torch.float64, device=benign.items.device).index_add_(
        0, benign.row_of_upload(), vote)


def vote_weighted_sums(benign: SparseUpdates, ctx, row_vote: torch.Tensor | None = None,
                       dtype: torch.dtype | None = None) -> torch.Tensor:
    """(n_items, dim) per item, the benign rows weighted by the votes the head-evidence
    reputation gives their senders (`row_masses`, unless given), summed in `dtype` (default:
    the rows')."""
    row_vote = row_masses(benign, ctx) if row_vote is None else row_vote
    dtype = dtype or benign.grads.dtype
    return torch.zeros(ctx.n_items, ctx.dim, dtype=dtype, device=benign.grads.device).index_add_(
        0, benign.items, benign.grads.to(dtype) * row_vote.to(dtype).unsqueeze(1))


class EvadeO(Spattack):
    omniscient, dense = True, False
    choose_targets = staticmethod(tail_targets)
    item_sums = staticmethod(vote_weighted_sums)


class EvadeL(Spattack):
    omniscient, dense = False, False
    choose_targets = staticmethod(tail_targets)


class EvadeH(Spattack):
    """Evade-H: poisons the head items while keeping its own HeadRep scores typical (module
    docstring)."""

    omniscient, dense = True, False
    overshoot = 1.0  # attacked items get -overshoot x their benign (vote-weighted) mean: reversed

    def __init__(self, ctx):
        m, _ = cardinality(ctx)
        popularity = torch.as_tensor(ctx.popularity, dtype=torch.float64)
        head = torch.argsort(popularity, descending=True, stable=True)[:m].to(ctx.device)
        self.attacked, self.cover = head[:(m + 1) // 2], head[(m + 1) // 2:]
        super().__init__(ctx)

    def choose_targets(self, ctx, generator: torch.Generator) -> torch.Tensor:
        return torch.cat([self.attacked, self.cover]).expand(ctx.n_malicious, -1)

    def uploads(self, epoch: int, benign: SparseUpdates, model) -> SparseUpdates:
        ctx = self.ctx
        mass = row_masses(benign, ctx)
        sums = vote_weighted_sums(benign, ctx, mass, torch.float64)
        norms = torch.linalg.vector_norm(benign.grads.double(), dim=1)
        typical = item_weighted_median(benign.items, torch.log(norms.clamp_min(1e-300)), mass, ctx.n_items)
        rows = torch.zeros_like(sums)
        rows[self.attacked] = -(1 + self.overshoot) * sums[self.attacked] / ctx.n_malicious
        sizes = torch.log(torch.linalg.vector_norm(rows[self.attacked], dim=1).clamp_min(1e-300)) - typical[self.attacked]
        # cover rows along their item's consensus, small enough that the mean size is typical
        centre = sums[self.cover] / torch.linalg.vector_norm(sums[self.cover], dim=1, keepdim=True).clamp_min(1e-300)
        cover_size = -sizes.sum() / max(1, self.cover.numel())
        rows[self.cover] = centre * torch.exp(typical[self.cover] + cover_size).unsqueeze(1)
        return SparseUpdates(self.senders, self.items, rows[self.items].to(benign.grads.dtype), self.counts)
