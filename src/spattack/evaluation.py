"""Sampled ranking evaluation: the test item against 99 sampled negatives per user."""

from __future__ import annotations

import math

import torch

from .interactions import Interactions

METRICS = ("hr5", "ndcg5", "hr10", "ndcg10")


class Evaluator:
    """HR@5/10 and nDCG@5/10 over benign users, fresh negatives at every call.

    Negatives are `n_negatives` distinct items drawn uniformly from the items the user
    has neither trained on nor holds out (the authors exclude only training items, so
    their test item is occasionally also drawn as a negative; we read that as an
    accident). Sampling runs on the device for all users at once.
    """

    def __init__(self, data: Interactions, n_negatives: int, seed: int, device: torch.device):
        self.device = device
        self.users = torch.arange(data.n_users, device=device)
        self.test_items = torch.as_tensor(data.test_items, device=device)
        forbidden = data.train_mask(device)
        forbidden[self.users, self.test_items] = True
        self.forbidden = forbidden
        allowed = (~forbidden).sum(1).min().item()
        if allowed < n_negatives:
            raise ValueError(
                f"a user has only {allowed} items outside its training and test items, fewer "
                f"than the {n_negatives} negatives to sample; lower hyper.eval_negatives")
        self.n_negatives = n_negatives
        # enough candidates that almost every user gets its negatives in one draw
        allowed_share = allowed / data.n_items
        self.n_candidates = int(1.3 * n_negatives / allowed_share) + 32
        self.gen = torch.Generator(device=device).manual_seed(seed)

    def sample_negatives(self) -> torch.Tensor:
        """(n_users, n_negatives) distinct allowed items per user.

        Draws candidates uniformly with replacement, discards forbidden items and repeats,
        and keeps the first `n_negatives` survivors in draw order: a uniform sample
        without replacement. Rows that run short are drawn again with more candidates.
        """
        n_users, n_items = self.forbidden.shape
        out = torch.empty(n_users, self.n_negatives, dtype=torch.long, device=self.device)
        todo = self.users
        k = self.n_candidates
        while todo.numel():
            cand = torch.randint(0, n_items, (todo.numel(), k), generator=self.gen, device=self.device)
            valid = ~self.forbidden[todo.unsqueeze(1), cand]
            ordered, order = cand.sort(dim=1, stable=True)
            repeat = torch.zeros_like(valid)
            repeat[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
            valid &= ~torch.zeros_like(repeat).scatter_(1, order, repeat)
            keep = valid & (valid.cumsum(1) <= self.n_negatives)
            full = keep.sum(1) == self.n_negatives
            out[todo[full]] = cand[full][keep[full]].view(-1, self.n_negatives)
            todo, k = todo[~full], 2 * k
        return out

    @torch.no_grad()
    def __call__(self, scores_fn) -> dict[str, float]:
        """Metrics for `scores_fn(users (B,), items (B, K)) -> scores (B, K)`."""
        negatives = self.sample_negatives()
        test_score = scores_fn(self.users, self.test_items.unsqueeze(1))
        neg_score = scores_fn(self.users, negatives)
        return ranking_metrics(test_score.squeeze(1), neg_score)


def ranking_metrics(test_score: torch.Tensor, neg_score: torch.Tensor) -> dict[str, float]:
    """HR@k and nDCG@k of one relevant item per user.

    rank = 1 + number of negatives scored strictly higher than the test item;
    HR@k = [rank <= k], nDCG@k = [rank <= k] / log2(rank + 1), averaged over users.
    A non-finite test score counts as a miss.
    """
    rank = 1 + (neg_score > test_score.unsqueeze(1)).sum(1)
    rank = torch.where(torch.isfinite(test_score), rank, torch.full_like(rank, neg_score.shape[1] + 1))
    out = {}
    for k in (5, 10):
        hit = (rank <= k).double()
        out[f"hr{k}"] = hit.mean().item()
        out[f"ndcg{k}"] = (hit / torch.log2(rank.double() + 1)).mean().item()
    return {m: out[m] for m in METRICS}


def random_ranking_metrics(n_negatives: int = 99) -> dict[str, float]:
    """Expected metrics of a random ranking (an untrained model), for reference lines."""
    n = n_negatives + 1
    out = {}
    for k in (5, 10):
        out[f"hr{k}"] = k / n
        out[f"ndcg{k}"] = sum(1 / math.log2(r + 1) for r in range(1, k + 1)) / n
    return {m: out[m] for m in METRICS}
