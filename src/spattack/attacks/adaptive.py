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
"""

from __future__ import annotations

import torch

from ..aggregators.reputation import client_votes
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


def vote_weighted_sums(benign: SparseUpdates, ctx) -> torch.Tensor:
    """(n_items, dim) per item, the benign rows weighted by the votes the head-evidence
    reputation gives their senders (`reputation.client_votes`, the attackers' uploads
    counted)."""
    clients = benign.clients
    m, _ = cardinality(ctx)
    sent = torch.cat([torch.bincount(clients), torch.full((ctx.n_malicious,), m, device=clients.device)])
    vote = client_votes(sent)[clients]
    row_vote = torch.zeros(len(benign), dtype=torch.float64, device=benign.items.device).index_add_(
        0, benign.row_of_upload(), vote)
    return torch.zeros(ctx.n_items, ctx.dim, dtype=benign.grads.dtype, device=benign.grads.device).index_add_(
        0, benign.items, benign.grads * row_vote.to(benign.grads.dtype).unsqueeze(1))


class EvadeO(Spattack):
    omniscient, dense = True, False
    choose_targets = staticmethod(tail_targets)
    item_sums = staticmethod(vote_weighted_sums)


class EvadeL(Spattack):
    omniscient, dense = False, False
    choose_targets = staticmethod(tail_targets)
