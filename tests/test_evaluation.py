"""Sampled ranking metrics."""

import math

import numpy as np
import pytest
import torch

from spattack.evaluation import Evaluator, random_ranking_metrics, ranking_metrics
from spattack.synthetic import synthetic_interactions


def test_hand_computed_ranks():
    test = torch.tensor([5.0, 5.0, 5.0, float("nan")])
    neg = torch.tensor([
        [1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # rank 1
        [6.0, 7.0, 8.0, 9.0, 10.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # rank 6
        [6.0] * 10 + [0.0, 0.0],  # rank 11
        [0.0] * 12,  # non-finite test score: a miss
    ])
    m = ranking_metrics(test, neg)
    assert m["hr5"] == pytest.approx(1 / 4)
    assert m["hr10"] == pytest.approx(2 / 4)
    assert m["ndcg5"] == pytest.approx(1 / 4)
    assert m["ndcg10"] == pytest.approx((1 + 1 / math.log2(7)) / 4)


def test_random_ranking_reference():
    m = random_ranking_metrics(99)
    assert m["hr10"] == pytest.approx(0.1) and m["hr5"] == pytest.approx(0.05)


def test_negatives_distinct_allowed_and_fresh():
    data = synthetic_interactions(n_users=40, n_items=150, per_user=20, seed=1)
    ev = Evaluator(data, n_negatives=99, seed=0, device=torch.device("cpu"))
    a, b = ev.sample_negatives(), ev.sample_negatives()
    assert a.shape == (40, 99) and not torch.equal(a, b)
    train = set(zip(data.train_users.tolist(), data.indices.tolist()))
    for u in range(40):
        row = a[u].tolist()
        assert len(set(row)) == 99
        assert all((u, j) not in train and j != data.test_items[u] for j in row)


def test_uniform_over_allowed_items():
    data = synthetic_interactions(n_users=4, n_items=120, per_user=10, seed=2)
    ev = Evaluator(data, n_negatives=60, seed=1, device=torch.device("cpu"))
    counts = np.zeros(data.n_items)
    for _ in range(300):
        counts += np.bincount(ev.sample_negatives()[0].numpy(), minlength=data.n_items)
    allowed = counts > 0
    assert allowed.sum() == 120 - 10
    expected = 300 * 60 / allowed.sum()
    assert np.abs(counts[allowed] - expected).max() < 5 * math.sqrt(expected)


def test_too_few_items_is_a_clear_error():
    data = synthetic_interactions(n_users=5, n_items=30, per_user=10)
    with pytest.raises(ValueError, match="eval_negatives"):
        Evaluator(data, n_negatives=99, seed=0, device=torch.device("cpu"))


@pytest.mark.parametrize("n_items", [7, 5000, 2**30])
def test_repeats_found_by_numpy_and_torch_agree(n_items, monkeypatch):
    """First occurrences in draw order are kept; int32 keys, or int64 when they do not fit."""
    from spattack.aggregators import groups
    from spattack.evaluation import _repeats
    cand = torch.randint(0, n_items, (50, 300), generator=torch.Generator().manual_seed(n_items % 97))
    cand[:, 5] = cand[:, 2]
    fast = _repeats(cand, n_items)
    monkeypatch.setattr(groups, "NUMPY_ON_CPU", False)
    assert torch.equal(fast, _repeats(cand, n_items))
    assert fast[:, 5].all() and not fast[:, 0].any()
    expected = torch.zeros_like(fast)
    for b, row in enumerate(cand.tolist()):
        seen = set()
        for k, c in enumerate(row):
            expected[b, k] = c in seen
            seen.add(c)
    assert torch.equal(fast, expected)
