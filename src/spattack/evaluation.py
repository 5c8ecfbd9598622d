"""Sampled ranking evaluation: the test item against 99 sampled negatives per user."""

from __future__ import annotations

import math

import torch

from .aggregators.groups import sort_last
from .device import rows_at
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
        # per user, in chunks: a sum over the whole bool matrix would widen it to int64
        allowed = min(int(data.n_items - forbidden[lo:lo + 1024].sum(1).max())
                      for lo in range(0, data.n_users, 1024))
        if allowed < n_negatives:
            raise ValueError(
                f"a user has only {allowed} items outside its training and test items, fewer "
                f"than the {n_negatives} negatives to sample; lower hyper.eval_negatives")
        self.n_negatives = n_negatives
        # enough candidates that almost every user gets its negatives in one draw
        allowed_share = allowed / data.n_items
        self.n_candidates = int(1.3 * n_negatives / allowed_share) + 32
        self.first_pass = int(1.3 * n_negatives)  # fewer than n_candidates; see sample_negatives
        self.gen = torch.Generator(device=device).manual_seed(seed)

    def sample_negatives(self) -> torch.Tensor:
        """(n_users, n_negatives) distinct allowed items per user.

        Draws candidates uniformly with replacement, discards forbidden items and repeats,
        and keeps the first `n_negatives` survivors in draw order: a uniform sample
        without replacement. Rows that run short are drawn again with more candidates.
        The first `first_pass` candidates of a row are searched first: most users are
        allowed nearly every item, so those suffice for them, and only the other rows are
        searched again over all their candidates (the same survivors either way, since a
        candidate's fate depends only on the ones drawn before it).
        """
        n_users, n_items = self.forbidden.shape
        out = torch.empty(n_users, self.n_negatives, dtype=torch.long, device=self.device)
        todo = self.users
        k = self.n_candidates
        while todo.numel():
            # int32 draws: the same values as int64 ones from the same generator, half the bytes
            cand = torch.randint(0, n_items, (todo.numel(), k), generator=self.gen, device=self.device,
                                 dtype=torch.int32)
            picked, full = self._first_allowed(todo, cand[:, :self.first_pass])
            if not bool(full.all()):
                again = torch.nonzero(~full).squeeze(1)
                picked[again], full[again] = self._first_allowed(todo[again], cand[again])
            if bool(full.all()):  # the usual case: no row to pick out first
                out[todo] = picked
            else:
                out[todo[full]] = picked[full]
            todo, k = todo[~full], 2 * k
        return out

    def _first_allowed(self, users: torch.Tensor, cand: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(m, n_negatives) int64 the first `n_negatives` candidates of each row of `cand`
        (m, K) int32, in draw order, that `users` (m,) may get and that were not drawn
        earlier in the row; and (m,) bool, whether the row had that many.

        Two row sorts instead of a scan: sorted by (item, position), an item's first
        occurrence starts its run; the survivors, keyed by (position, item) and everything
        else by a sentinel, sorted again, come first and in draw order."""
        m, k = cand.shape
        n_items = self.forbidden.shape[1]
        position_bits, item_bits = max(1, (k - 1).bit_length()), max(1, (n_items - 1).bit_length())
        dtype = torch.int32 if position_bits + item_bits < 31 else torch.int64
        positions = torch.arange(k, dtype=dtype, device=cand.device)
        key = sort_last((cand.to(dtype) << position_bits) | positions)
        item = key >> position_bits
        first = torch.ones_like(key, dtype=torch.bool)
        first[:, 1:] = item[:, 1:] != item[:, :-1]
        at = (users * n_items).unsqueeze(1) + item
        allowed = first & ~rows_at(self.forbidden.view(-1), at)
        sentinel = torch.iinfo(dtype).max
        key = sort_last(torch.where(allowed, ((key & ((1 << position_bits) - 1)) << item_bits) | item, sentinel))
        full = key[:, self.n_negatives - 1] != sentinel
        return (key[:, :self.n_negatives] & ((1 << item_bits) - 1)).long(), full

    @torch.no_grad()
    def __call__(self, scores_fn) -> dict[str, float]:
        """Metrics for `scores_fn(users (B,), items (B, K)) -> scores (B, K)`."""
        negatives = self.sample_negatives()
        test_score = scores_fn(self.users, self.test_items.unsqueeze(1))
        neg_score = scores_fn(self.users, negatives)
        return ranking_metrics(test_score.squeeze(1), neg_score)


def ranking_metrics(test_score: torch.Tensor, neg_score: torch.Tensor) -> dict[str, float]:
    """HR@k and nDCG@k of one relevant item per user, ties broken at random in expectation.

    Per user, with g the number of negatives ranked above the test item and t the number
    tied with it, the test item's rank is taken uniform over g+1 .. g+t+1 (a uniformly
    random order of the tied items), and each metric is its expected value over that range:
    HR@k = |{r in g+1..g+t+1 : r <= k}| / (t+1) and
    nDCG@k = sum over those r of 1/log2(r+1), divided by (t+1).
    Without ties (t = 0) these are the usual [rank <= k] and [rank <= k] / log2(rank + 1).
    A model that scores every item alike thus gets exactly `random_ranking_metrics`.

    Degenerate scores: a non-finite test score (NaN, +inf or -inf) is a miss (HR = nDCG =
    0). A NaN negative counts as ranked above the test item (pessimistic); +inf and -inf
    negatives compare with a finite test score as numbers do. Users are averaged with equal
    weight.
    """
    test = test_score.unsqueeze(1)
    above = ((neg_score > test) | torch.isnan(neg_score)).sum(1, keepdim=True)
    tied = (neg_score == test).sum(1, keepdim=True)
    weight = torch.where(test.isfinite(), 1 / (tied + 1).double(), 0.0)  # per rank of the tie range
    out = {}
    for k in (5, 10):
        ranks = torch.arange(1, k + 1, device=neg_score.device)
        in_range = (ranks > above) & (ranks <= above + tied + 1)  # (users, k): ranks <= k the item may take
        gain = torch.ones(k, dtype=torch.float64, device=neg_score.device) / torch.log2(ranks.double() + 1)
        out[f"hr{k}"] = (in_range.sum(1, keepdim=True) * weight).mean().item()
        out[f"ndcg{k}"] = ((in_range * gain).sum(1, keepdim=True) * weight).mean().item()
    return {m: out[m] for m in METRICS}


def random_ranking_metrics(n_negatives: int = 99) -> dict[str, float]:
    """Expected metrics of a uniformly random ranking of the test item among `n_negatives`
    negatives (an untrained model; also what `ranking_metrics` gives a constant model)."""
    n = n_negatives + 1
    out = {}
    for k in (5, 10):
        out[f"hr{k}"] = k / n
        out[f"ndcg{k}"] = sum(1 / math.log2(r + 1) for r in range(1, k + 1)) / n
    return {m: out[m] for m in METRICS}
