"""Sparse aggregators: the vectorised versions against a per-item loop, and hand cases."""

import numpy as np
import pytest
import torch

from spattack.aggregators import DEFENSES, aggregate, clip_rows, krum_neighbours


# ---- per-item reference: one item at a time, numpy, following the module docstring ----

def reference(name, items, grads, n_items, f=0, clip=1.0):
    items, grads = np.asarray(items), np.asarray(grads, dtype=np.float64)
    out = np.zeros((n_items, grads.shape[1]))
    for j in range(n_items):
        rows = grads[items == j]
        if name != "mean":
            rows = rows[np.isfinite(rows).all(1)]
        if len(rows) == 0:
            continue
        if name == "mean":
            out[j] = rows.mean(0)
        elif name == "median" or (name == "trimmed_mean" and f >= len(rows)):
            out[j] = np.median(rows, axis=0)
        elif name == "trimmed_mean":
            out[j] = [ref_trim(col, f) for col in rows.T]
        elif name == "krum":
            out[j] = rows[ref_krum(rows, f)]
        elif name == "norm":
            norms = np.linalg.norm(rows, axis=1, keepdims=True)
            out[j] = np.where(norms > clip, rows * clip / np.maximum(norms, 1e-300), rows).mean(0)
        else:
            out[j] = ROBUST_REFERENCES[name](rows, f=f, clip=clip)
    return out


def ref_trim(col, f):
    dist = np.abs(col - np.median(col))
    order = np.lexsort((col, dist))  # by distance, then by value: the larger is dropped first
    return col[order[: len(col) - f]].mean()


def ref_krum(rows, f):
    n = len(rows)
    if n == 1:
        return 0
    m = n - f - 2 if n > f + 2 else n - f if n > f else n - 1
    m = min(max(m, 1), n - 1)
    dist = ((rows[:, None] - rows[None]) ** 2).sum(-1)
    scores = [np.sort(np.delete(dist[i], i))[:m].sum() for i in range(n)]
    return int(np.argmin(scores))  # first minimum


def ref_scores(rows, f):
    """Every row's Krum score (sum of squared distances to its m nearest other rows)."""
    n = len(rows)
    if n == 1:
        return np.zeros(1)
    m = n - f - 2 if n > f + 2 else n - f if n > f else n - 1
    m = min(max(m, 1), n - 1)
    dist = ((rows[:, None] - rows[None]) ** 2).sum(-1)
    return np.array([np.sort(np.delete(dist[i], i))[:m].sum() for i in range(n)])


def ref_multi_krum(rows, f):
    k = min(max(len(rows) - f, 1), len(rows))
    order = np.lexsort((np.arange(len(rows)), ref_scores(rows, f)))  # by score, then upload order
    return rows[order[:k]].mean(0)


def ref_bulyan(rows, f):
    if len(rows) < 4 * f + 3:
        return np.median(rows, axis=0)
    remaining, selected = list(range(len(rows))), []
    for _ in range(len(rows) - 2 * f):  # repeated Krum: the first row of lowest score leaves
        selected.append(remaining.pop(int(np.argmin(ref_scores(rows[remaining], f)))))
    return np.array([ref_trim(col, 2 * f) for col in rows[selected].T])  # the theta - 2f closest to the median


def ref_geometric_median(rows, steps=8, smoothing=1e-6):
    v = rows.mean(0)
    spread = np.linalg.norm(rows - v, axis=1).mean()
    nu = smoothing * spread if spread > 0 else 1.0
    for _ in range(steps):  # smoothed Weiszfeld
        beta = 1 / np.maximum(nu, np.linalg.norm(rows - v, axis=1))
        v = (beta[:, None] * rows).sum(0) / beta.sum()
    return v


def ref_centered_clipping(rows, clip, steps=3):
    v = np.median(rows, axis=0)
    for _ in range(steps):
        z = rows - v
        norms = np.linalg.norm(z, axis=1, keepdims=True)
        v = v + np.where(norms > clip, z * clip / np.maximum(norms, 1e-300), z).mean(0)
    return v


def ref_mixed(rows, f):
    """NNM: every row replaced by the mean of its n - f nearest rows (itself included)."""
    n = len(rows)
    k = min(max(n - f, 1), n)
    dist = ((rows[:, None] - rows[None]) ** 2).sum(-1)
    # each mean over its rows in upload order: rows with the same neighbours get the same mean
    return np.array([rows[np.sort(np.lexsort((np.arange(n), dist[i]))[:k])].mean(0) for i in range(n)])


ROBUST_REFERENCES = {
    "multi_krum": lambda rows, f, clip: ref_multi_krum(rows, f),
    "bulyan": lambda rows, f, clip: ref_bulyan(rows, f),
    "geometric_median": lambda rows, f, clip: ref_geometric_median(rows),
    "centered_clipping": lambda rows, f, clip: ref_centered_clipping(rows, clip),
    "nnm_median": lambda rows, f, clip: np.median(ref_mixed(rows, f), axis=0),
    "nnm_krum": lambda rows, f, clip: (lambda mixed: mixed[ref_krum(mixed, f)])(ref_mixed(rows, f)),
}


def random_uploads(seed, n_items=40, d=5, integer=False):
    """Counts per item from 0 to ~30 (0, 1, 2, odd, even), rows in random order."""
    rng = np.random.default_rng(seed)
    counts = rng.choice([0, 1, 2, 3, 4, 7, 8, 15, 16, 31], size=n_items)
    items = rng.permutation(np.repeat(np.arange(n_items), counts))
    if integer:  # many exact ties and duplicate values
        grads = rng.integers(-3, 4, size=(len(items), d)).astype(np.float64)
    else:
        grads = rng.normal(size=(len(items), d)) * rng.choice([0.1, 1.0, 3.0], size=(len(items), 1))
    if len(items) > 4:  # duplicate rows
        grads[1] = grads[0]
        grads[3] = grads[2]
    return torch.as_tensor(items), torch.as_tensor(grads)


def run(name, items, grads, n_items, **params):
    return aggregate(name, items, grads, n_items, **params).numpy()


# ---- against the reference ----

CASES = [("mean", {}), ("median", {}), ("norm", {"clip": 1.0}), ("norm", {"clip": 0.3})] + [
    (name, {"f": f}) for name in ("trimmed_mean", "krum") for f in (0, 1, 3, 10, 40)]


@pytest.mark.parametrize("name,params", CASES, ids=lambda c: str(c))
@pytest.mark.parametrize("seed", range(4))
def test_matches_the_per_item_loop(name, params, seed):
    items, grads = random_uploads(seed)
    np.testing.assert_allclose(run(name, items, grads, 40, **params),
                               reference(name, items, grads, 40, **params), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name,params", [("median", {}), ("trimmed_mean", {"f": 1}), ("trimmed_mean", {"f": 3}),
                                         ("trimmed_mean", {"f": 6}), ("krum", {"f": 2})])
@pytest.mark.parametrize("seed", range(3))
def test_matches_the_loop_with_ties(name, params, seed):
    items, grads = random_uploads(seed, integer=True)
    np.testing.assert_allclose(run(name, items, grads, 40, **params),
                               reference(name, items, grads, 40, **params), rtol=1e-12, atol=1e-12)


# the defenses that look at rows alone (HeadRep also looks at senders: test_reputation.py)
ROW_DEFENSES = [name for name in DEFENSES if "clients" not in DEFENSES[name].params]


def senders(name, items):
    """clients= for a defense that takes them: every row from a client of its own."""
    return {"clients": torch.arange(items.numel())} if "clients" in DEFENSES[name].params else {}


def test_float32_inputs_stay_float32_and_close():
    items, grads = random_uploads(7)
    for name in ROW_DEFENSES:
        params = DEFENSES[name].bind(f=2, clip=1.0)
        out = aggregate(name, items, grads.float(), 40, **params)
        assert out.dtype == torch.float32
        np.testing.assert_allclose(out.numpy(), reference(name, items, grads.float(), 40, **params),
                                   rtol=1e-5, atol=1e-6)


def test_long_tail_items_spanning_many_buckets():
    rng = np.random.default_rng(3)
    counts = np.array([0, 1, 2, 3, 5, 9, 17, 33, 65, 130, 300])
    items = torch.as_tensor(rng.permutation(np.repeat(np.arange(counts.size), counts)))
    grads = torch.as_tensor(rng.normal(size=(len(items), 4)))
    for name, params in [("median", {}), ("trimmed_mean", {"f": 5}), ("krum", {"f": 5})]:
        np.testing.assert_allclose(run(name, items, grads, counts.size, **params),
                                   reference(name, items, grads, counts.size, **params), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name,params", [("median", {}), ("trimmed_mean", {"f": 3}), ("krum", {"f": 2})])
def test_torch_kernels_give_the_same_result(name, params, monkeypatch):
    """The torch sort/selection used on CUDA, exercised on CPU."""
    from spattack.aggregators import groups
    items, grads = random_uploads(4)
    fast = run(name, items, grads, 40, **params)
    monkeypatch.setattr(groups, "NUMPY_ON_CPU", False)
    np.testing.assert_array_equal(run(name, items, grads, 40, **params), fast)


@pytest.mark.parametrize("numpy_on_cpu", [True, False])
def test_krum_block_mixing_neighbour_counts(numpy_on_cpu, monkeypatch):
    """Items with 9 and 10 rows share a block; with f = 7 they score 2 and 1 neighbours."""
    from spattack.aggregators import groups
    monkeypatch.setattr(groups, "NUMPY_ON_CPU", numpy_on_cpu)
    rng = np.random.default_rng(0)
    items = torch.as_tensor(rng.permutation(np.repeat(np.arange(6), [9, 10, 9, 10, 9, 10])))
    grads = torch.as_tensor(rng.normal(size=(len(items), 3)))
    np.testing.assert_array_equal(run("krum", items, grads, 6, f=7), reference("krum", items, grads, 6, f=7))


def test_buckets_split_finer_where_asked():
    """Splits per item's exponent: every item with rows in exactly one bucket, each
    bucket's width its widest item's, and finer buckets (narrower ranges) above 2^6 rows."""
    from spattack.aggregators.groups import Groups
    counts = [1, 3, 40, 70, 75, 90, 100, 127, 128]
    items = torch.as_tensor(np.repeat(np.arange(len(counts) + 1), counts + [0]))
    groups = Groups.of(items, torch.ones(len(items), 2), len(counts) + 1, None)
    coarse = [sorted(b.ids.tolist()) for b in groups.buckets(splits=1)]
    fine = list(groups.buckets(splits=lambda e: torch.where(e >= 7, 8, 1)))
    assert sorted(i for b in fine for i in b.ids.tolist()) == list(range(len(counts)))
    assert all(b.width == max(counts[i] for i in b.ids.tolist()) for b in fine)
    assert [0] in coarse and [3, 4, 5, 6, 7, 8] in coarse  # (64, 128] in one bucket
    assert sorted(sorted(b.ids.tolist()) for b in fine if b.width > 64) == [[3], [4], [5], [6], [7, 8]]


def test_krum_splits_large_buckets_into_blocks(monkeypatch):
    from spattack.aggregators import distance
    items, grads = random_uploads(5)
    monkeypatch.setattr(distance, "KRUM_BLOCK_ELEMENTS", 1)  # one item per block
    np.testing.assert_allclose(run("krum", items, grads, 40, f=1), reference("krum", items, grads, 40, f=1))


# ---- hand-computed cases ----

def col(*values):
    """Rows of one item (item 0) holding a single coordinate."""
    return torch.zeros(len(values), dtype=torch.long), torch.tensor(values, dtype=torch.float64).unsqueeze(1)


def test_hand_cases():
    items, grads = col(1.0, 9.0, 2.0, 4.0)
    assert run("mean", items, grads, 1)[0, 0] == 4.0
    assert run("median", items, grads, 1)[0, 0] == 3.0  # (2 + 4) / 2
    assert run("median", *col(5.0, -1.0, 3.0), 1)[0, 0] == 3.0
    # median 3: distances 2, 6, 1, 1 -> drop 9 (f=1), then 1 (f=2)
    assert run("trimmed_mean", items, grads, 1, f=1)[0, 0] == pytest.approx(7 / 3)
    assert run("trimmed_mean", items, grads, 1, f=2)[0, 0] == 3.0
    assert run("trimmed_mean", items, grads, 1, f=4)[0, 0] == 3.0  # nothing left: the median
    # 2 and 4 are both 1 away from the median 3: the larger one goes first
    assert run("trimmed_mean", items, grads, 1, f=3)[0, 0] == 2.0
    assert run("norm", *col(3.0, -0.5), 1, clip=1.0)[0, 0] == 0.25


def test_hand_krum():
    items = torch.zeros(5, dtype=torch.long)
    grads = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [10.0, 10.0], [0.5, 0.5]])
    # f = 1: m = 2 nearest; (0.5, 0.5) is 0.5 from each of the three others
    assert run("krum", items, grads, 1, f=1).tolist() == [[0.5, 0.5]]
    # two identical far rows win when each only looks at its 1 nearest neighbour
    grads2 = torch.cat([grads, torch.tensor([[10.0, 10.0]])])
    assert run("krum", torch.zeros(6, dtype=torch.long), grads2, 1, f=3).tolist() == [[10.0, 10.0]]
    # ties go to the first uploaded row
    assert run("krum", *col(2.0, 0.0), 1, f=0).tolist() == [[2.0]]
    assert run("krum", *col(7.0), 1, f=3).tolist() == [[7.0]]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_krum_two_rows_tie_exactly_so_the_first_wins(dtype):
    gen = torch.Generator().manual_seed(0)
    first, second = torch.randn(500, 16, generator=gen, dtype=dtype), torch.randn(500, 16, generator=gen, dtype=dtype)
    items = torch.arange(500).repeat(2)
    for f in (0, 1, 5):
        assert aggregate("krum", items, torch.cat([first * 3 + 1, second]), 500, f=f).equal(first * 3 + 1)


def attacked_uploads(seed, n_items=30, d=4, n_attackers=40, integer=False, dtype=torch.float64):
    """Benign rows, plus on most items one row sent by every attacker (as Spattack-D
    uploads it), as a weighted batch (items, grads, counts), shuffled."""
    rng = np.random.default_rng(seed)
    def draw(size):
        return rng.integers(-2, 3, size=size).astype(float) if integer else rng.normal(size=size)
    counts = rng.choice([0, 1, 2, 3, 5, 9, 20], size=n_items)
    attacked = np.flatnonzero(rng.random(n_items) < 0.8)
    items = np.concatenate([np.repeat(np.arange(n_items), counts), attacked])
    grads = np.concatenate([draw((counts.sum(), d)), draw((attacked.size, d))])
    weight = np.concatenate([np.ones(counts.sum(), dtype=np.int64), np.full(attacked.size, n_attackers)])
    perm = rng.permutation(len(items))
    return torch.as_tensor(items[perm]), torch.as_tensor(grads[perm], dtype=dtype), torch.as_tensor(weight[perm])


def expand(items, grads, counts):
    return items.repeat_interleave(counts), grads.repeat_interleave(counts, dim=0)


@pytest.mark.parametrize("f", [0, 1, 5, 40, 60])
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("integer", [False, True])
def test_krum_on_attacker_rows_with_counts_matches_the_loop(f, seed, integer):
    """Krum on rows sent by 40 attackers at once picks what the loop picks on the 40
    copies, exact ties (integer rows) included."""
    items, grads, counts = attacked_uploads(seed, integer=integer)
    np.testing.assert_array_equal(run("krum", items, grads, 30, f=f, counts=counts),
                                  reference("krum", *expand(items, grads, counts), 30, f=f))


@pytest.mark.parametrize("f", [1, 5, 10, 40, 60])
@pytest.mark.parametrize("n_attackers", [10, 40])
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("integer", [False, True])
def test_trimmed_mean_on_attacker_rows_with_counts_matches_the_loop(f, n_attackers, seed, integer):
    """The trimmed mean's window is searched only among windows that hold a middle
    position; rows sent by many attackers at once (one long run of equal values, often
    holding the median) and exact ties are where that bound is tight."""
    items, grads, counts = attacked_uploads(seed, n_attackers=n_attackers, integer=integer)
    np.testing.assert_allclose(run("trimmed_mean", items, grads, 30, f=f, counts=counts),
                               reference("trimmed_mean", *expand(items, grads, counts), 30, f=f), rtol=1e-12, atol=1e-14)


def test_krum_with_counts_equals_krum_on_the_copies():
    items, grads, counts = attacked_uploads(7, n_items=300, d=32, n_attackers=80, dtype=torch.float32)
    weighted = aggregate("krum", items, grads, 300, counts=counts, f=40)
    assert weighted.equal(aggregate("krum", *expand(items, grads, counts), 300, f=40))


def test_krum_neighbour_rule():
    counts = torch.arange(1, 9)
    assert krum_neighbours(counts, 0).tolist() == [0, 1, 1, 2, 3, 4, 5, 6]
    assert krum_neighbours(counts, 2).tolist() == [0, 1, 1, 2, 1, 2, 3, 4]  # PROTOCOL's rule is not monotone at n = f + 3


def test_clip_rows():
    grads = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0], [3e30, -4e30]])
    torch.testing.assert_close(clip_rows(grads, 1.0), torch.tensor([[0.6, 0.8], [0.3, 0.4], [0.0, 0.0], [0.6, -0.8]]))


def test_clip_rows_is_bitwise_the_per_row_rule():
    """Rows over the bound are multiplied by clip / norm, every other row (within it, at it,
    zero, -0.0, NaN) comes back bit for bit."""
    g = torch.Generator().manual_seed(3)
    grads = torch.randn(200, 7, generator=g) * torch.rand(200, 1, generator=g) * 3
    grads[0] = 0.0
    grads[1] = -0.0
    grads[2, 3] = float("nan")
    grads[3] = torch.tensor([1.0] + [0.0] * 6)  # exactly at the bound
    out = clip_rows(grads, 1.0)
    for row, got in zip(grads, out):
        norm = torch.linalg.vector_norm(row)
        want = row * (1.0 / norm) if norm > 1.0 else row
        assert torch.equal(got, want) or (got.isnan().equal(want.isnan()) and got.nan_to_num().equal(want.nan_to_num()))
    assert torch.equal(out[1].signbit(), grads[1].signbit())


# ---- shapes, empty items, non-finite rows, errors ----

@pytest.mark.parametrize("name", list(DEFENSES))
def test_shape_and_zero_rows_for_items_without_uploads(name):
    items = torch.tensor([2, 2, 5])
    grads = torch.tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [0.1, 0.2, 0.3]])
    params = DEFENSES[name].bind(f=1, clip=1.0)
    out = aggregate(name, items, grads, 7, **params, **senders(name, items))
    assert out.shape == (7, 3)
    assert torch.all(out[[0, 1, 3, 4, 6]] == 0)
    assert torch.all(out[[2, 5]].abs().sum(1) > 0)
    assert aggregate(name, items[:0], grads[:0], 4, **params, **senders(name, items[:0])).equal(torch.zeros(4, 3))


@pytest.mark.parametrize("name", list(DEFENSES))
def test_non_finite_rows(name):
    items, grads = random_uploads(1)
    grads = grads.clone()
    grads[0, 0], grads[5, 1], grads[9] = float("nan"), float("inf"), -float("inf")
    all_bad = torch.tensor([39, 39]), torch.full((2, grads.shape[1]), float("nan"))
    items, grads = torch.cat([items[items != 39], all_bad[0]]), torch.cat([grads[items != 39], all_bad[1]])
    params = DEFENSES[name].bind(f=2, clip=1.0)
    out = aggregate(name, items, grads, 40, **params, **senders(name, items))
    if name == "mean":
        assert not torch.isfinite(out[items[[0, 5, 9]]]).all()
    else:
        assert torch.isfinite(out).all()
        assert torch.all(out[39] == 0)
        if name in ROW_DEFENSES:
            np.testing.assert_allclose(out.numpy(), reference(name, items, grads, 40, **params), rtol=1e-9,
                                       atol=1e-12)


@pytest.mark.parametrize("name,params", [("median", {}), ("trimmed_mean", {"f": 1}), ("krum", {"f": 1}), ("norm", {})])
def test_huge_finite_rows_give_finite_output(name, params):
    items = torch.zeros(4, dtype=torch.long)
    grads = torch.tensor([[0.1, 0.2], [0.2, 0.1], [3e38, -3e38], [3e38, 3e38]])
    out = aggregate(name, items, grads, 1, **params)
    assert torch.isfinite(out).all()


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="mean, median, trimmed_mean, krum, norm"):
        aggregate("geomed", torch.zeros(1, dtype=torch.long), torch.zeros(1, 2), 1)


@pytest.mark.parametrize("name", [n for n, spec in DEFENSES.items() if "f" in spec.params])
def test_a_missing_f_is_named(name):
    with pytest.raises(ValueError, match=f"defense {name} assumes f malicious rows per item: pass f="):
        aggregate(name, torch.zeros(2, dtype=torch.long), torch.zeros(2, 2), 1)


def test_bad_f_is_rejected():
    with pytest.raises(ValueError, match="non-negative integer"):
        aggregate("krum", torch.zeros(1, dtype=torch.long), torch.zeros(1, 2), 1, f=-1)


def assert_cuda_matches_cpu(name, params, items, grads, n_items, counts=None):
    """On CUDA, each item's result is the CPU's, to rounding, for the upload order given or
    its reverse. Rows whose scores tie exactly go to the first uploaded; a GPU reduction
    rounds their sums in another order, so where the two CPU results differ (a tie) CUDA
    may give either; everywhere else it must give the CPU's."""
    def run(order, device):
        weights = None if counts is None else counts[order].to(device)
        return aggregate(name, items[order].to(device), grads[order].to(device), n_items, counts=weights,
                         **params).cpu()
    forward, backward = torch.arange(len(items)), torch.arange(len(items) - 1, -1, -1)
    gpu = run(forward, "cuda")
    close = [torch.isclose(gpu, run(order, "cpu"), rtol=1e-9, atol=1e-12, equal_nan=True).all(1)
             for order in (forward, backward)]
    assert bool((close[0] | close[1]).all()), (name, params, torch.nonzero(~(close[0] | close[1])).flatten())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    items, grads = random_uploads(2)
    for name, params in CASES:
        assert_cuda_matches_cpu(name, params, items, grads, 40)
    for seed in range(8, 12):
        items, grads, counts = weighted_uploads(seed)
        for name, params in WEIGHTED_CASES:
            assert_cuda_matches_cpu(name, params, items, grads, 25, counts)


# ---- weighted uploads: a row with count c is c identical uploads ----

def weighted_uploads(seed, n_items=25, d=3, integer=False, non_finite=False):
    """Random rows with random counts: most 1, some up to 60; several heavy rows per item,
    items with heavy rows only, exact ties (integer values), non-finite rows."""
    rng = np.random.default_rng(seed)
    n = rng.choice([0, 1, 2, 3, 6, 11, 30], size=n_items)
    items = rng.permutation(np.repeat(np.arange(n_items), n))
    extra = rng.integers(0, n_items, size=2 * n_items)  # heavy rows: some items get 2-4
    items = np.concatenate([items, extra])
    counts = np.ones(items.size, dtype=np.int64)
    counts[-extra.size:] = rng.choice([1, 2, 5, 17, 60], size=extra.size)
    if integer:
        grads = rng.integers(-2, 3, size=(items.size, d)).astype(np.float64)
    else:
        grads = rng.normal(size=(items.size, d)) * rng.choice([0.1, 1.0, 3.0], size=(items.size, 1))
    if non_finite:
        bad = rng.choice(items.size, size=max(1, items.size // 10), replace=False)
        grads[bad, rng.integers(0, d, size=bad.size)] = rng.choice([np.nan, np.inf, -np.inf], size=bad.size)
    perm = rng.permutation(items.size)
    return torch.as_tensor(items[perm]), torch.as_tensor(grads[perm]), torch.as_tensor(counts[perm])


WEIGHTED_CASES = [("mean", {}), ("median", {}), ("norm", {"clip": 0.5})] + [
    (name, {"f": f}) for name in ("trimmed_mean", "krum") for f in (0, 1, 4, 20, 70)]


@pytest.mark.parametrize("name,params,kind", [
    (name, params, kind) for name, params in WEIGHTED_CASES for kind in ("normal", "ties", "non-finite")
    if not (name == "mean" and kind == "non-finite")], ids=str)  # mean propagates non-finite rows (below)
@pytest.mark.parametrize("seed", range(4))
def test_counts_give_the_result_of_the_expanded_rows(name, params, kind, seed):
    """Against the per-item reference on the expanded rows (Krum's choice exactly), and
    against the same aggregator on them: exact for the median, summation order for the
    means. (Krum on expanded copies is not compared: there the Gram matrix puts copies at
    distances of rounding size instead of 0, so scores tied only through copies break
    ties by rounding; rows with counts are exact.)"""
    items, grads, counts = weighted_uploads(seed, integer=kind == "ties", non_finite=kind == "non-finite")
    assert int(counts.max()) > 1
    weighted = run(name, items, grads, 25, counts=counts, **params)
    plain = run(name, *expand(items, grads, counts), 25, **params)
    expected = reference(name, *expand(items, grads, counts), 25, **params)
    if name == "krum":
        np.testing.assert_array_equal(weighted, expected)
        return
    np.testing.assert_allclose(weighted, expected, rtol=1e-9, atol=1e-12)
    if name == "median":
        np.testing.assert_array_equal(weighted, plain)
    else:
        np.testing.assert_allclose(weighted, plain, rtol=1e-12, atol=1e-14)


def test_mean_with_counts_propagates_non_finite_rows():
    items, grads, counts = weighted_uploads(0, non_finite=True)
    out = aggregate("mean", items, grads, 25, counts=counts)
    bad = items[~torch.isfinite(grads).all(1)].unique()
    assert not torch.isfinite(out[bad]).all(1).any()


@pytest.mark.parametrize("name,params", [("median", {}), ("trimmed_mean", {"f": 3}), ("krum", {"f": 2})])
def test_counts_with_torch_kernels(name, params, monkeypatch):
    """The torch sort/selection used on CUDA, exercised on CPU, on weighted rows."""
    from spattack.aggregators import groups
    items, grads, counts = weighted_uploads(5, integer=True)
    fast = run(name, items, grads, 25, counts=counts, **params)
    monkeypatch.setattr(groups, "NUMPY_ON_CPU", False)
    np.testing.assert_array_equal(run(name, items, grads, 25, counts=counts, **params), fast)


def test_counts_are_checked():
    items, grads = torch.tensor([0, 0]), torch.ones(2, 2)
    with pytest.raises(ValueError, match="at least 1"):
        aggregate("median", items, grads, 1, counts=torch.tensor([1, 0]))
    with pytest.raises(ValueError, match="one count per row"):
        aggregate("median", items, grads, 1, counts=torch.tensor([1]))


def test_krum_tie_between_a_heavy_row_and_an_earlier_plain_copy():
    """Copies of one value, one sent alone and earlier, one sent by 3 clients: same value."""
    items = torch.zeros(4, dtype=torch.long)
    grads = torch.tensor([[1.0], [5.0], [1.0], [9.0]])
    counts = torch.tensor([1, 1, 3, 1])
    assert run("krum", items, grads, 1, f=0, counts=counts).tolist() == [[1.0]]


def large_items(seed, integer=False, heavy=True):
    """Items of 150-400 plain rows (Krum's bounded path), a few with heavy rows."""
    rng = np.random.default_rng(seed)
    n = np.array([150, 260, 400, 3])
    items = np.repeat(np.arange(n.size), n)
    counts = np.ones(items.size, dtype=np.int64)
    if heavy:
        items = np.concatenate([items, [0, 1, 1, 3]])
        counts = np.concatenate([counts, [40, 7, 120, 2]])
    if integer:
        grads = rng.integers(-2, 3, size=(items.size, 4)).astype(np.float64)
    else:
        grads = rng.normal(size=(items.size, 4)) * rng.choice([0.5, 1.0, 4.0], size=(items.size, 1))
    perm = rng.permutation(items.size)
    return torch.as_tensor(items[perm]), torch.as_tensor(grads[perm]), torch.as_tensor(counts[perm])


# Krum's pick is a row: equal to the loop's to the bit; Multi-Krum's a mean of rows
EXACT = {"krum": {"rtol": 0, "atol": 0}, "multi_krum": {"rtol": 1e-9, "atol": 1e-12}}


@pytest.mark.parametrize("name", EXACT)
@pytest.mark.parametrize("f", [0, 5, 60, 250])
@pytest.mark.parametrize("kind", ["normal", "ties", "plain"])
@pytest.mark.parametrize("fine_from", [None, 1])
def test_krum_on_large_items_matches_the_loop(name, f, kind, fine_from, monkeypatch):
    """Items above SMALL rows take the bounded paths (Krum's pick, Multi-Krum's ranking):
    the result is still the loop's, in the default buckets and in the fine ones
    (FINE_FROM = 1: every item's)."""
    from spattack.aggregators import distance
    if fine_from is not None:
        monkeypatch.setattr(distance, "FINE_FROM", fine_from)
    items, grads, counts = large_items(f, integer=kind == "ties", heavy=kind != "plain")
    np.testing.assert_allclose(run(name, items, grads, 4, f=f, counts=counts),
                               reference(name, *expand(items, grads, counts), 4, f=f), **EXACT[name])


@pytest.mark.parametrize("name", EXACT)
@pytest.mark.parametrize("f", [60, 250])
@pytest.mark.parametrize("copies", [100, 500])
def test_krum_with_attackers_sending_a_benign_row_matches_the_loop(name, f, copies):
    """Attackers' copies of a row that lies among the benign ones, as under -O (on ML-1M
    their row equals a benign row), on the bounded path: the attackers' row is a
    candidate and sets tau, and items whose best score is 0 are not tried again; the pick
    is the loop's. One item of each bucket without attackers (padding heavy columns)."""
    rng = np.random.default_rng(copies + f)
    sizes = np.array([150, 170, 260, 280, 400])
    items = np.repeat(np.arange(sizes.size), sizes)
    grads = rng.normal(size=(items.size, 4))
    counts = np.ones(items.size, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    attacked = np.array([0, 2, 4])
    central = np.array([grads[a:a + n].mean(0) for a, n in zip(starts[attacked], sizes[attacked])])
    copied = grads[starts[attacked] + 3]  # a benign row sent again by every attacker
    attack_rows = np.where((attacked == 2)[:, None], copied, central)
    items = np.concatenate([items, attacked])
    grads = np.concatenate([grads, attack_rows])
    counts = np.concatenate([counts, np.full(attacked.size, copies)])
    perm = rng.permutation(items.size)
    items, grads, counts = (torch.as_tensor(a[perm]) for a in (items, grads, counts))
    np.testing.assert_allclose(run(name, items, grads, sizes.size, f=f, counts=counts),
                               reference(name, *expand(items, grads, counts), sizes.size, f=f), **EXACT[name])


@pytest.mark.parametrize("row_block", [None, 1, 2000])
@pytest.mark.parametrize("f", [5, 200])
def test_krum_with_many_items_per_bucket_matches_the_loop(row_block, f, monkeypatch):
    """Buckets of several large items, their rows centred and their norms taken in
    blocks of one item, of a few items or of the whole bucket: the same picks as the loop
    (f = 200: every item's score has the closed form)."""
    from spattack.aggregators import distance
    if row_block is not None:
        monkeypatch.setattr(distance, "ROW_BLOCK_ELEMENTS", row_block)
    rng = np.random.default_rng(1)
    sizes = rng.integers(130, 250, size=12)
    items = np.repeat(np.arange(12), sizes)
    grads = rng.normal(size=(items.size, 4)) * rng.choice([0.5, 4.0], size=(items.size, 1)) + items[:, None]
    counts = np.where(rng.random(items.size) < 0.02, rng.integers(2, 30, size=items.size), 1)
    perm = rng.permutation(items.size)
    items, grads, counts = (torch.as_tensor(a[perm]) for a in (items, grads, counts))
    np.testing.assert_array_equal(run("krum", items, grads, 12, f=f, counts=counts),
                                  reference("krum", *expand(items, grads, counts), 12, f=f))


def test_krum_scores_every_survivor_when_items_keep_unlike_numbers():
    """One bucket: in items 0 and 1, 190 and 140 rows of a tight cluster tie to within
    MARGIN (the far rows dominate every score), so all survive the bounds and the best is
    one of them by a hair; the Gaussian items keep a handful. Survivors are scored in
    groups of like counts, and every one must be scored."""
    rng = np.random.default_rng(0)
    clusters = [np.concatenate([rng.normal(size=(n, 4)) * 1e-4, 100 + rng.normal(size=(200 - n, 4))])
                for n in (190, 140)]
    grads = np.concatenate(clusters + [rng.normal(size=(200, 4)) for _ in range(4)])
    items = np.repeat(np.arange(6), 200)
    perm = rng.permutation(items.size)
    items, grads = torch.as_tensor(items[perm]), torch.as_tensor(grads[perm])
    np.testing.assert_array_equal(run("krum", items, grads, 6, f=5), reference("krum", items, grads, 6, f=5))


def large_spaces(f, integer=False, far=False):
    """The `_Space` of each bucket of `large_items` (heavy rows included; with `far`, the
    heavy rows far from the others, as under Spattack-L), with every row's exact score
    and t."""
    from spattack.aggregators import distance
    from spattack.aggregators.groups import Groups
    items, grads, counts = large_items(3, integer=integer, heavy=True)
    if far:
        grads = torch.where((counts > 1).unsqueeze(1), grads + 30, grads)
    for bucket in Groups.of(items, grads, 4, counts).buckets(splits=4):
        plain, valid = bucket.plain_rows()
        heavy, weight = bucket.heavy_rows()
        weight = torch.cat([valid.long(), weight], 1)
        x = distance._scaled_centred(torch.cat([plain, heavy], 1), weight > 0)
        space = distance._Space.of(x, weight, bucket.width, bucket.totals, distance.krum_neighbours(bucket.totals, f))
        exact, t = distance._exact_sums(space, torch.arange(x.shape[1]).expand(x.shape[0], -1))
        yield space, bucket.totals, exact, t


@pytest.mark.parametrize("outliers", [0, 1])
def test_multi_krum_with_far_rows_at_the_cut_matches_the_loop(outliers):
    """Items of 200 tight rows and f = 5 far ones (where the FedAttack cell on ML-1M met
    bounds that did not hold): the cut lies in the wide gap between them; with one row
    in between (outliers = 1) or none."""
    rng = np.random.default_rng(outliers)
    far = np.concatenate([100 + rng.normal(size=(5, 4)), rng.normal(size=(outliers, 4)) * 3])
    grads = np.concatenate([rng.normal(size=(200, 4)) * 0.1, far, rng.normal(size=(205, 4)) * 0.1])
    items = np.repeat([0, 1], [205 + outliers, 205])
    perm = rng.permutation(items.size)
    items, grads = torch.as_tensor(items[perm]), torch.as_tensor(grads[perm])
    np.testing.assert_allclose(run("multi_krum", items, grads, 2, f=5), reference("multi_krum", items, grads, 2, f=5),
                               **EXACT["multi_krum"])


@pytest.mark.parametrize("broken", ["nan", "all in", "all out"])
def test_multi_krum_scores_every_row_of_an_item_whose_bounds_cannot_hold(broken, monkeypatch):
    """Bounds that are NaN, or that would put keep or more rows in, or more than N - keep
    out (what rounding beyond the estimate could do), decide nothing for their item: its
    rows are all scored exactly, and the result is the loop's."""
    from spattack.aggregators import distance
    bounds = distance._score_bounds

    def wrong(space, tau):
        lower, upper, error = bounds(space, tau)
        if broken == "nan":
            return lower * torch.nan, upper, error
        if broken == "all in":  # every upper bound below every lower bound
            return lower, (lower.amin(1, keepdim=True) - 1).expand_as(upper), error * 0
        return (2 * upper.amax(1, keepdim=True) + 1).expand_as(lower), upper, error * 0

    monkeypatch.setattr(distance, "_score_bounds", wrong)
    items, grads, counts = large_items(7, heavy=True)
    np.testing.assert_allclose(run("multi_krum", items, grads, 4, f=60, counts=counts),
                               reference("multi_krum", *expand(items, grads, counts), 4, f=60), **EXACT["multi_krum"])


@pytest.mark.parametrize("f", [5, 60])
def test_krum_lower_bounds_never_exceed_the_scores(f):
    from spattack.aggregators import distance
    for space, _, exact, t in large_spaces(f):
        x, weight = space.x, space.weight
        # F(tau) itself, from the whole distance matrix: the chunked, symmetric pass must
        # be tight, not merely below the scores
        tau = t[:, :1].clamp_min(0)
        dist = torch.cdist(x, x).square()
        dist.diagonal(dim1=1, dim2=2).zero_()
        brute = (dist.clamp(max=tau.unsqueeze(2)) * weight.unsqueeze(1)).sum(2) - space.surplus * tau
        np.testing.assert_allclose(distance._lower_bounds(space, tau)[weight > 0], brute[weight > 0], rtol=1e-9, atol=1e-9)
        real = weight > 0
        for tau in (t[:, :1], t[:, -1:], torch.zeros_like(t[:, :1]), t.flip(1)):
            lower = distance._lower_bounds(space, tau.clamp_min(0))
            assert torch.all(lower[real] <= exact[real] + 1e-9 * exact[real].abs())
        # a tau per row at each row's own t: the bound is the score
        np.testing.assert_allclose(distance._lower_bounds(space, t.clamp_min(0))[real], exact[real], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("f", [5, 60])
@pytest.mark.parametrize("integer", [False, True])
@pytest.mark.parametrize("far", [False, True])
def test_multi_krum_bounds_hold_every_score(f, integer, far):
    """Multi-Krum's upper bounds (and the lower ones), at each row's own t (where the lower
    bound is the score), near it, and at taus off it on either side, zero included; on
    integer rows, ties at tau count one half on each side."""
    from spattack.aggregators import distance
    for space, _, exact, t in large_spaces(f, integer, far):
        real = space.weight > 0
        lower, _, _ = distance._score_bounds(space, t.clamp_min(0))
        np.testing.assert_allclose(lower[real], exact[real], rtol=1e-9, atol=1e-9)
        for tau in (t, t * 0.999, t * 1.001, t * 0.5, t * 1.7, torch.zeros_like(t), t.flip(1), t[:, :1].expand_as(t)):
            lower, upper, _ = distance._score_bounds(space, tau.clamp_min(0))
            assert torch.all(lower[real] <= exact[real] + 1e-9 * exact[real].abs())
            assert torch.all(upper[real] >= exact[real] - 1e-9 * exact[real].abs())


@pytest.mark.parametrize("f", [5, 60])
@pytest.mark.parametrize("far", [False, True])
def test_multi_krum_scores_only_the_rows_near_the_cut(f, far):
    """On Gaussian items of 150-400 rows, the sampled taus leave most rows decided by
    their bounds alone, also when heavy rows far away make most of a row's s largest
    distances (f = 60: 40 copies where s is 61); the decided ones are on the right side
    of the keep-th lowest exact score, the others keep their exact score (up to
    rounding: scored in other blocks)."""
    from spattack.aggregators import distance
    undecided = total = 0
    for space, totals, exact, _ in large_spaces(f, far=far):
        keep = (totals - f).clamp_min(1)
        keys = distance._ranked_sums(space, keep)
        real = space.weight > 0
        cut = distance._kth_lowest(exact.masked_fill(~real, torch.inf), space.weight, keep)
        assert torch.all(exact[real & (keys == -torch.inf)] < cut.expand_as(exact)[real & (keys == -torch.inf)])
        assert torch.all(exact[real & (keys == torch.inf)] > cut.expand_as(exact)[real & (keys == torch.inf)])
        scored = real & keys.isfinite()
        np.testing.assert_allclose(keys[scored], exact[scored], rtol=1e-12)
        undecided += int(scored.sum())
        total += int(real.sum())
    assert undecided < 0.1 * total


@pytest.mark.parametrize("f", [5, 155, 225])
def test_multi_krum_bounds_only_items_of_more_rows_than_bound_from_f(f, monkeypatch):
    """Only items of more than SMALL plain rows and BOUND_FROM * f expanded ones take the
    bounds (on the others they cost more than they save); the rest are scored exactly on
    every row, and the result is the loop's either way. large_items has items of 190,
    387 and 400 expanded rows (150, 260 and 400 plain)."""
    from spattack.aggregators import distance
    bounded, ranked = [], distance._ranked_sums

    def spy(space, keep):
        bounded.extend(space.weight.sum(1).tolist())
        return ranked(space, keep)

    monkeypatch.setattr(distance, "_ranked_sums", spy)
    items, grads, counts = large_items(8)
    np.testing.assert_allclose(run("multi_krum", items, grads, 4, f=f, counts=counts),
                               reference("multi_krum", *expand(items, grads, counts), 4, f=f), **EXACT["multi_krum"])
    assert sorted(bounded) == [n for n in (190, 387, 400) if n > distance.BOUND_FROM * f]


@pytest.mark.parametrize("n_ranks", [1, 3, 40])
@pytest.mark.parametrize("numpy_on_cpu", [True, False])
def test_kth_largest_with_a_rank_per_row(n_ranks, numpy_on_cpu, monkeypatch):
    from spattack.aggregators import groups, kth
    monkeypatch.setattr(groups, "NUMPY_ON_CPU", numpy_on_cpu)
    gen = torch.Generator().manual_seed(n_ranks)
    x = torch.randint(0, 20, (3, 50, 60), generator=gen).float()  # ties
    choices = torch.randint(1, 61, (n_ranks,), generator=gen)
    rank = choices[torch.randint(0, n_ranks, (3, 50), generator=gen)]
    expected = torch.sort(x, dim=2, descending=True).values.gather(2, (rank - 1).unsqueeze(2))
    assert torch.equal(kth.kth_largest(x.clone(), rank), expected)


@pytest.mark.parametrize("n_heavy", [1, 3, 9, 40])
@pytest.mark.parametrize("numpy_on_cpu", [True, False])
@pytest.mark.parametrize("far", [False, True])
@pytest.mark.parametrize("copies", [4, 60])
def test_merged_kth_largest_equals_the_expanded_multiset(n_heavy, numpy_on_cpu, far, copies, monkeypatch):
    """Plain values once, heavy values weight times (0 = padding): the rank-th largest of
    the expanded multiset, by the per-heavy-column pass (few heavy columns) and by one sort
    (many), ties between plain and heavy values and among heavy values included; `far`:
    on half the rows the heavy values lie above most plain ones (attackers' rows far from
    a benign row), where the answer is a plain value behind every heavy copy; up to 60
    `copies` of a heavy value among 30 plain ones: positions past every plain value that
    lie in a run (-O)."""
    from spattack.aggregators import groups, kth
    monkeypatch.setattr(groups, "NUMPY_ON_CPU", numpy_on_cpu)
    gen = torch.Generator().manual_seed(n_heavy)
    b, r, p = 8, 20, 30
    plain = torch.randint(0, 12, (b, r, p), generator=gen).float()
    heavy = torch.randint(0, 12, (b, r, n_heavy), generator=gen).float()
    if far:
        heavy[:, ::2] += 10
    weight = torch.randint(0, copies + 1, (b, 1, n_heavy), generator=gen)
    size = p + weight.sum(2)  # (b, 1)
    rank = torch.minimum(torch.randint(1, p + copies * n_heavy + 1, (b, 1), generator=gen), size)
    expected = torch.empty(b, r, 1)
    for i in range(b):
        for j in range(r):
            values = torch.cat([plain[i, j], heavy[i, j].repeat_interleave(weight[i, 0])])
            expected[i, j, 0] = torch.sort(values, descending=True).values[rank[i, 0] - 1]
    for heavy_ahead in (False, True):
        assert torch.equal(kth.merged_kth_largest(plain.clone(), heavy, weight, rank, heavy_ahead), expected)


@pytest.mark.parametrize("heavy_value", [5.0, 1000.0])
def test_merged_kth_largest_at_every_position_around_a_long_run(heavy_value):
    """One heavy value 40 times among 30 plain ones, below or above them all: every rank
    from 1 to 70, one item each, so that each edge of the run is read (the shortcuts
    for a run that holds the position and for a run wholly ahead of it)."""
    from spattack.aggregators import kth
    p, copies, r = 30, 40, 3
    size = p + copies
    plain = (100 + torch.randperm(p).float()).expand(size, r, p).clone()
    heavy = torch.full((size, r, 1), heavy_value)
    weight = torch.full((size, 1, 1), copies)
    rank = torch.arange(1, size + 1).view(-1, 1)
    values = torch.cat([plain[0, 0], heavy[0, 0].repeat(copies)])
    expected = torch.sort(values, descending=True).values.view(-1, 1, 1).expand(size, r, 1)
    for heavy_ahead in (False, True):
        assert torch.equal(kth.merged_kth_largest(plain.clone(), heavy, weight, rank, heavy_ahead), expected)


@pytest.mark.parametrize("runs", [True, False])
@pytest.mark.parametrize("numpy_on_cpu", [True, False])
def test_stable_argsort_keeps_upload_order_among_equal_items(runs, numpy_on_cpu, monkeypatch):
    """A few long sorted runs with ties (as a round's uploads: numpy's timsort on CPU) and
    random keys (torch's sort) alike: torch's stable argsort, ties in their order."""
    from spattack.aggregators import groups
    monkeypatch.setattr(groups, "NUMPY_ON_CPU", numpy_on_cpu)
    rng = np.random.default_rng(int(runs))
    if runs:
        keys = np.concatenate([np.sort(rng.integers(0, 50, size=rng.integers(100, 400))) for _ in range(20)])
        assert np.count_nonzero(keys[1:] < keys[:-1]) * 64 <= keys.size  # the timsort path
    else:
        keys = rng.integers(0, 50, size=5000)
    keys = torch.as_tensor(keys)
    assert torch.equal(groups.stable_argsort(keys), torch.argsort(keys, stable=True))
    assert torch.equal(groups.stable_argsort(keys[:0]), torch.argsort(keys[:0], stable=True))
