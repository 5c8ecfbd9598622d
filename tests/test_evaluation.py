"""Sampled ranking metrics."""

import math

import numpy as np
import pytest
import torch

from spattack.evaluation import METRICS, Evaluator, random_ranking_metrics, ranking_metrics
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


def _gain(r):
    return 1 / math.log2(r + 1)


def test_all_tied_scores_score_what_a_random_order_scores():
    """A constant model (every score alike, as after a collapse) is no better than chance."""
    m = ranking_metrics(torch.zeros(8), torch.zeros(8, 99))
    assert m["hr5"] == pytest.approx(5 / 100) and m["hr10"] == pytest.approx(10 / 100)
    assert m["ndcg5"] == pytest.approx(sum(_gain(r) for r in range(1, 6)) / 100)
    assert m["ndcg10"] == pytest.approx(sum(_gain(r) for r in range(1, 11)) / 100)
    assert m == pytest.approx(random_ranking_metrics(99))


def test_partly_tied_rows_average_over_the_tie_range():
    test = torch.tensor([1.0, 1.0])
    neg = torch.zeros(2, 20)
    neg[0, :3], neg[0, 3:7] = 2.0, 1.0  # 3 above, 4 tied: rank uniform over 4..8
    neg[1, :8], neg[1, 8:11] = 2.0, 1.0  # 8 above, 3 tied: rank uniform over 9..12
    m = ranking_metrics(test, neg)
    assert m["hr5"] == pytest.approx((2 / 5 + 0) / 2)
    assert m["hr10"] == pytest.approx((5 / 5 + 2 / 4) / 2)
    assert m["ndcg5"] == pytest.approx(((_gain(4) + _gain(5)) / 5 + 0) / 2)
    assert m["ndcg10"] == pytest.approx((sum(_gain(r) for r in range(4, 9)) / 5 + (_gain(9) + _gain(10)) / 4) / 2)


def test_nan_negatives_rank_above_and_infinities_compare_as_numbers():
    nan, inf = float("nan"), float("inf")
    test = torch.tensor([1.0, 1.0, 1.0])
    neg = torch.zeros(3, 12)
    neg[0, 0] = nan  # above the test item: rank 2
    neg[1, :2] = torch.tensor([inf, -inf])  # +inf above, -inf below: rank 2
    neg[2, :] = -inf  # every negative below: rank 1
    m = ranking_metrics(test, neg)
    assert m["hr5"] == pytest.approx(1.0)
    assert m["ndcg5"] == pytest.approx((_gain(2) + _gain(2) + 1) / 3)


@pytest.mark.parametrize("test_value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_test_score_is_a_miss_even_among_equal_negatives(test_value):
    for negatives in (torch.zeros(2, 12), torch.full((2, 12), test_value)):
        m = ranking_metrics(torch.full((2,), test_value), negatives)
        assert m == {"hr5": 0.0, "ndcg5": 0.0, "hr10": 0.0, "ndcg10": 0.0}


def test_ties_agree_with_every_position_of_the_test_item_among_its_ties():
    """The vectorised rule against its definition, on integer scores full of ties: the mean,
    over every place the test item can take among the negatives tied with it, of the
    metrics of that ranking."""
    gen = torch.Generator().manual_seed(0)
    test = torch.randint(0, 4, (300,), generator=gen).double()
    neg = torch.randint(0, 4, (300, 15), generator=gen).double()
    expected = {m: 0.0 for m in METRICS}
    for t, row in zip(test.tolist(), neg.tolist()):
        above, tied = sum(v > t for v in row), sum(v == t for v in row)
        for rank in range(above + 1, above + tied + 2):
            for k in (5, 10):
                expected[f"hr{k}"] += (rank <= k) / (tied + 1) / len(test)
                expected[f"ndcg{k}"] += (rank <= k) * _gain(rank) / (tied + 1) / len(test)
    assert ranking_metrics(test, neg) == pytest.approx(expected)


def test_a_constant_model_evaluates_at_chance():
    data = synthetic_interactions(n_users=40, n_items=150, per_user=20, seed=1)
    ev = Evaluator(data, n_negatives=99, seed=0, device=torch.device("cpu"))
    m = ev(lambda users, items: torch.zeros(items.shape))
    assert m == pytest.approx(random_ranking_metrics(99))


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


def _negatives_by_plain_scan(ev: Evaluator) -> tuple[torch.Tensor, int]:
    """The sampler written plainly, one candidate at a time: the same draws from the same
    generator; and how many rows needed more than `first_pass` candidates."""
    n_users, n_items = ev.forbidden.shape
    out = torch.empty(n_users, ev.n_negatives, dtype=torch.long)
    todo, k, beyond_first_pass = ev.users.tolist(), ev.n_candidates, 0
    while todo:
        cand = torch.randint(0, n_items, (len(todo), k), generator=ev.gen)
        short = []
        for user, row in zip(todo, cand.tolist()):
            seen, kept = set(), []
            for position, item in enumerate(row):
                if item not in seen and not ev.forbidden[user, item]:
                    kept.append(item)
                seen.add(item)
                if len(kept) == ev.n_negatives:
                    beyond_first_pass += position >= ev.first_pass
                    out[user] = torch.tensor(kept)
                    break
            else:
                short.append(user)
        todo, k = short, 2 * k
    return out, beyond_first_pass


@pytest.mark.parametrize("n_users, n_items, n_negatives, rows_short, second_pass, key_bits", [
    (40, 150, 99, True, True, 32), (40, 300, 99, False, True, 32), (10, 300_000, 2000, False, False, 64)])
def test_negatives_are_the_plain_samplers_draws(n_users, n_items, n_negatives, rows_short, second_pass, key_bits):
    """With 150 items some rows run short and are drawn again; with 300 none does, but
    some need more than the first pass's candidates (searched again over all of them).
    With 300,000 items and 2,000 negatives the sort keys need int64."""
    data = synthetic_interactions(n_users=n_users, n_items=n_items, per_user=20, seed=1)
    fast, plain = (Evaluator(data, n_negatives=n_negatives, seed=3, device=torch.device("cpu")) for _ in range(2))
    first = plain.gen.get_state()
    beyond = 0
    for _ in range(3):
        expected, rows = _negatives_by_plain_scan(plain)
        assert torch.equal(fast.sample_negatives(), expected)
        beyond += rows
    assert (beyond > 0) == second_pass
    position_bits = (fast.n_candidates - 1).bit_length()
    assert (position_bits + (n_items - 1).bit_length() >= 31) == (key_bits == 64)
    plain.gen.set_state(first)
    cand = torch.randint(0, n_items, (data.n_users, plain.n_candidates), generator=plain.gen)
    allowed = [len({c for c in row if not plain.forbidden[u, c]}) for u, row in enumerate(cand.tolist())]
    assert (min(allowed) < n_negatives) == rows_short


@pytest.mark.parametrize("numpy_on_cpu", [True, False])
def test_negatives_with_torch_sorts_equal_numpys(numpy_on_cpu, monkeypatch):
    """The sorts go through numpy on CPU and torch.sort elsewhere: the same negatives."""
    from spattack.aggregators import groups
    data = synthetic_interactions(n_users=40, n_items=300, per_user=20, seed=1)
    monkeypatch.setattr(groups, "NUMPY_ON_CPU", numpy_on_cpu)
    ev, plain = (Evaluator(data, n_negatives=99, seed=5, device=torch.device("cpu")) for _ in range(2))
    assert torch.equal(ev.sample_negatives(), _negatives_by_plain_scan(plain)[0])


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
