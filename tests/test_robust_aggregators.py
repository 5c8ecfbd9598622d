"""Multi-Krum, Bulyan, geometric median, centred clipping and NNM: the vectorised versions
against the per-item numpy references of test_aggregators (one item at a time, float64,
from the definitions), on the expanded rows when rows have multiplicities."""

import numpy as np
import pytest
import torch
from test_aggregators import (ROBUST_REFERENCES, assert_cuda_matches_cpu, attacked_uploads, expand, random_uploads,
                              reference, weighted_uploads)

from spattack.aggregators import DEFENSES, aggregate, krum, mean, median, nnm
from spattack.aggregators import groups, mixing, selection

ROBUST = list(ROBUST_REFERENCES)  # multi_krum, bulyan, geometric_median, centered_clipping, nnm_median, nnm_krum
TAKE_F = [name for name in ROBUST if "f" in DEFENSES[name].params]
CASES = ([(name, {"f": f}) for name in TAKE_F for f in (0, 1, 2, 5, 40)]
         + [("geometric_median", {}), ("centered_clipping", {"clip": 1.0}), ("centered_clipping", {"clip": 0.2})])


def run(name, items, grads, n_items, **params):
    return aggregate(name, items, grads, n_items, **params).numpy()


def check(name, params, items, grads, n_items, counts=None, rtol=1e-9, atol=1e-12):
    """The aggregator against the reference on the (expanded) rows."""
    out = run(name, items, grads, n_items, counts=counts, **params)
    rows = (items, grads) if counts is None else expand(items, grads, counts)
    np.testing.assert_allclose(out, reference(name, *rows, n_items, **params), rtol=rtol, atol=atol)
    return out


def long_tail_uploads(seed, integer=False):
    """Items of 0 to 70 rows (Bulyan runs from 4f + 3 rows), shuffled."""
    rng = np.random.default_rng(seed)
    counts = np.array([0, 1, 2, 3, 5, 9, 12, 19, 23, 33, 47, 70])
    items = rng.permutation(np.repeat(np.arange(counts.size), counts))
    if integer:
        grads = rng.integers(-3, 4, size=(items.size, 4)).astype(np.float64)
    else:
        grads = rng.normal(size=(items.size, 4)) * rng.choice([0.2, 1.0, 5.0], size=(items.size, 1))
    return torch.as_tensor(items), torch.as_tensor(grads)


# ---- against the reference ----

@pytest.mark.parametrize("name,params", CASES, ids=str)
@pytest.mark.parametrize("seed", range(2))
def test_matches_the_per_item_loop(name, params, seed):
    check(name, params, *random_uploads(seed), 40)


@pytest.mark.parametrize("name,params", CASES, ids=str)
def test_matches_the_loop_on_long_tail_items(name, params):
    check(name, params, *long_tail_uploads(1), 12)


@pytest.mark.parametrize("name,params", CASES, ids=str)
@pytest.mark.parametrize("seed", range(2))
def test_exact_ties_on_integer_rows(name, params, seed):
    """Integer rows: many equal distances, scores and values; ties as the definitions say."""
    check(name, params, *random_uploads(seed, integer=True), 40)
    check(name, params, *long_tail_uploads(seed, integer=True), 12)


@pytest.mark.parametrize("name,params", CASES, ids=str)
@pytest.mark.parametrize("kind", ["normal", "ties", "non-finite"])
def test_counts_give_the_result_of_the_expanded_rows(name, params, kind):
    items, grads, counts = weighted_uploads(3, integer=kind == "ties", non_finite=kind == "non-finite")
    assert int(counts.max()) > 1
    check(name, params, items, grads, 25, counts=counts)


@pytest.mark.parametrize("name", TAKE_F)
@pytest.mark.parametrize("f", [1, 5, 40])
@pytest.mark.parametrize("integer", [False, True])
def test_rows_sent_by_many_attackers(name, f, integer):
    """One row per item sent by 40 attackers at once (Spattack-D), exact ties included:
    with f = 40 and few honest rows, copies of the attackers' row tie with the honest
    rows (Krum scores 0), and the earliest upload wins, as on the copies."""
    items, grads, counts = attacked_uploads(f, integer=integer)
    check(name, {"f": f}, items, grads, 30, counts=counts)


@pytest.mark.parametrize("seed", range(3))
def test_bulyan_removes_copies_of_a_row_on_the_edge_of_anothers_largest(seed):
    """Heavy central rows, picked one copy at a time, that also sit where an outlier's s
    largest distances end, part of their copies inside: the outlier's sum of largest
    gives back the removed copies and takes the next ones (against the reference)."""
    rng = np.random.default_rng(seed)
    items, grads, counts = [], [], []
    for item in range(30):
        rows = [rng.normal(size=(20, 2)), [[50.0, rng.normal()]], rng.normal(scale=0.3, size=(2, 2))]
        items += [item] * 23
        grads += [np.concatenate(rows)]
        counts += [1] * 21 + list(rng.integers(3, 9, size=2))
    items, counts = torch.tensor(items), torch.tensor(counts)
    check("bulyan", {"f": 6}, items, torch.as_tensor(np.concatenate(grads)), 30, counts=counts)


def test_float32_stays_float32_and_close():
    items, grads = long_tail_uploads(2)
    for name, params in CASES:
        out = aggregate(name, items, grads.float(), 12, **params)
        assert out.dtype == torch.float32, name
        np.testing.assert_allclose(out.numpy(), reference(name, items, grads.float(), 12, **params),
                                   rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("name", ROBUST)
def test_registered_names_with_plain_rows(name):
    items, grads = random_uploads(5)
    params = DEFENSES[name].bind(f=3, clip=0.5)
    out = aggregate(name, items, grads, 40, **params)  # no counts
    assert out.shape == (40, grads.shape[1]) and out.dtype == grads.dtype
    np.testing.assert_allclose(out.numpy(), reference(name, items, grads, 40, **params), rtol=1e-9, atol=1e-12)
    assert torch.all(out[torch.bincount(items, minlength=40) == 0] == 0)


# ---- properties ----

def test_multi_krum_is_krum_for_one_row_and_the_mean_for_f_zero():
    items, grads = long_tail_uploads(3)
    n = torch.bincount(items, minlength=12)
    # k = n - f clamped to 1: f >= n - 1 for every item gives Krum's row
    assert aggregate("multi_krum", items, grads, 12, f=69).equal(krum(items, grads, 12, f=69))
    torch.testing.assert_close(aggregate("multi_krum", items, grads, 12, f=0), mean(items, grads, 12))
    assert int(n.max()) == 70


def test_bulyan_falls_back_to_the_median_below_4f_plus_3_rows():
    items, grads = long_tail_uploads(4)
    n = torch.bincount(items, minlength=12)
    f = 5  # 4f + 3 = 23 rows
    out, med = aggregate("bulyan", items, grads, 12, f=f), median(items, grads, 12)
    assert out[n < 23].equal(med[n < 23])
    assert not torch.allclose(out[n >= 23], med[n >= 23])


def test_centered_clipping_with_a_large_radius_is_the_mean():
    items, grads = long_tail_uploads(5)
    torch.testing.assert_close(aggregate("centered_clipping", items, grads, 12, clip=1e6), mean(items, grads, 12))


def test_geometric_median_lowers_the_sum_of_distances():
    items, grads = long_tail_uploads(6)
    out, avg = aggregate("geometric_median", items, grads, 12), mean(items, grads, 12)
    for j in range(12):
        rows = grads[items == j]
        if len(rows) > 2:
            assert (rows - out[j]).norm(dim=1).sum() < (rows - avg[j]).norm(dim=1).sum()


def test_nnm_with_f_zero_mixes_every_row_to_the_mean():
    items, grads = long_tail_uploads(7)
    torch.testing.assert_close(nnm(median)(items, grads, 12, f=0), mean(items, grads, 12))


def test_nnm_composes_with_any_aggregator():
    items, grads, counts = weighted_uploads(4)
    for f in (0, 2, 7):
        mixed_items, mixed, mixed_counts = mixing.nearest_neighbour_mixing(items, grads, 25, f, counts)
        assert int(mixed_counts.sum()) == int(counts[torch.isfinite(grads).all(1)].sum())
        torch.testing.assert_close(nnm(mean)(items, grads, 25, f=f, counts=counts),
                                   mean(mixed_items, mixed, 25, counts=mixed_counts))
        np.testing.assert_allclose(nnm(mean)(items, grads, 25, f=f, counts=counts).numpy(),
                                   ref_nnm_mean(*expand(items, grads, counts), 25, f), rtol=1e-9, atol=1e-12)


def ref_nnm_mean(items, grads, n_items, f):
    from test_aggregators import ref_mixed
    items, grads = np.asarray(items), np.asarray(grads)
    out = np.zeros((n_items, grads.shape[1]))
    for j in range(n_items):
        rows = grads[items == j]
        if len(rows):
            out[j] = ref_mixed(rows, f).mean(0)
    return out


@pytest.mark.parametrize("seed,integer,f", [(14, False, 7), (18, False, 7), (24, True, 1), (25, True, 1)])
def test_nnm_krum_picks_a_mixed_row_of_lowest_score(seed, integer, f):
    """Krum on the mixed rows: the pick is a mixed row whose exact score is the lowest.
    Mixed rows are means, so distinct rows tied in exact arithmetic (here mutual nearest
    neighbours with m = 1) tie up to rounding only, and either may be picked."""
    from test_aggregators import ref_mixed, ref_scores
    items, grads = random_uploads(seed, integer=integer)
    out = run("nnm_krum", items, grads, 40, f=f)
    for j in range(40):
        rows = grads[items == j].numpy()
        if len(rows) == 0:
            continue
        mixed = ref_mixed(rows, f)
        scores = ref_scores(mixed, f)
        picked = [i for i in range(len(mixed)) if np.allclose(mixed[i], out[j], rtol=1e-9, atol=1e-12)]
        assert picked and scores[picked[0]] <= scores.min() * (1 + 1e-12), j


def test_nnm_groups_rows_exactly_when_codes_collide(monkeypatch):
    """Rows of equal neighbours are merged by a code; different rows sharing a code
    (forced here) are told apart exactly."""
    items, grads, counts = weighted_uploads(6, integer=True)
    expected = run("nnm_krum", items, grads, 25, f=2, counts=counts)
    monkeypatch.setattr(mixing, "_code", lambda taken: taken.new_zeros(taken.shape[:2], dtype=torch.float64))
    np.testing.assert_array_equal(run("nnm_krum", items, grads, 25, f=2, counts=counts), expected)


@pytest.mark.parametrize("name,params", [("multi_krum", {"f": 2}), ("bulyan", {"f": 1}), ("nnm_median", {"f": 3}),
                                         ("nnm_krum", {"f": 2}), ("geometric_median", {}),
                                         ("centered_clipping", {"clip": 0.5})], ids=str)
def test_torch_kernels_give_the_same_result(name, params, monkeypatch):
    """The torch sort/selection used on CUDA, exercised on CPU."""
    items, grads, counts = weighted_uploads(7, integer=True)
    fast = run(name, items, grads, 25, counts=counts, **params)
    monkeypatch.setattr(groups, "NUMPY_ON_CPU", False)
    np.testing.assert_array_equal(run(name, items, grads, 25, counts=counts, **params), fast)


def test_bulyan_and_nnm_split_buckets_into_blocks(monkeypatch):
    items, grads = long_tail_uploads(8)
    expected = {name: run(name, items, grads, 12, f=2) for name in ("bulyan", "nnm_krum")}
    monkeypatch.setattr(selection, "BULYAN_BLOCK_ELEMENTS", 1)  # one item per block
    monkeypatch.setattr(mixing, "NNM_BLOCK_ELEMENTS", 1)
    for name, out in expected.items():
        np.testing.assert_array_equal(run(name, items, grads, 12, f=2), out)


# ---- robustness: a few huge outliers among honest rows ----

@pytest.mark.parametrize("name", ROBUST)
def test_a_few_outliers_do_not_move_the_result(name):
    """20 honest rows around (1, ..., 1), 3 outlier rows at 1000 (plain rows, or one row
    sent by the 3 attackers): each robust aggregator stays near the honest rows, the
    mean moves by about 130."""
    gen = torch.Generator().manual_seed(0)
    honest = 1 + 0.1 * torch.randn(20, 6, generator=gen, dtype=torch.float64)
    params = DEFENSES[name].bind(f=3, clip=0.5)
    for outliers, counts in ((torch.full((3, 6), 1000.0), None), (torch.full((1, 6), 1000.0), [1] * 20 + [3])):
        grads = torch.cat([honest[:7], outliers, honest[7:]])
        counts = None if counts is None else torch.tensor(counts[:7] + counts[-1:] + counts[7:20])
        items = torch.zeros(len(grads), dtype=torch.long)
        out = aggregate(name, items, grads, 1, counts=counts, **params)[0]
        assert (out - honest.mean(0)).norm() < 0.5, (name, out)
        assert (aggregate("mean", items, grads, 1, counts=counts)[0] - honest.mean(0)).norm() > 100


@pytest.mark.parametrize("name", ROBUST)
def test_huge_finite_rows_give_finite_output(name):
    items = torch.zeros(5, dtype=torch.long)
    grads = torch.tensor([[0.1, 0.2], [0.2, 0.1], [3e38, -3e38], [-3e38, 3e38], [3e38, 3e38]])
    out = aggregate(name, items, grads, 1, **DEFENSES[name].bind(f=1, clip=1.0))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_bad_parameters_are_rejected():
    items, grads = torch.zeros(3, dtype=torch.long), torch.ones(3, 2)
    for name in TAKE_F:
        with pytest.raises(ValueError, match="non-negative integer"):
            aggregate(name, items, grads, 1, f=-1)
    for clip in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="positive finite"):
            aggregate("centered_clipping", items, grads, 1, clip=clip)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    for seed in range(8, 12):
        items, grads, counts = weighted_uploads(seed)
        for name, params in CASES:
            assert_cuda_matches_cpu(name, params, items, grads, 25, counts)
