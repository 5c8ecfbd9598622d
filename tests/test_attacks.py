"""Attacks: the paper's properties of Spattack and sanity of the baselines."""

import numpy as np
import pytest
import torch

from spattack.aggregators import aggregate
from spattack.attacks import AttackContext, make_attack
from spattack.fedmf import FedMF
from spattack.synthetic import synthetic_interactions
from spattack.updates import SparseUpdates

DIM = 8


@pytest.fixture(scope="module")
def data():
    return synthetic_interactions(n_users=60, n_items=80, per_user=12)


def setup(data, name, defense="mean", n_mal=6, seed=0):
    model = FedMF(data, DIM, init_std=0.1, l2=0.1, lr=0.1, seed=0, device=torch.device("cpu"))
    ctx = AttackContext(
        n_benign=data.n_users, n_malicious=n_mal, n_items=data.n_items, dim=DIM,
        popularity=data.popularity, max_items_per_client=model.pairs.max_items_per_client,
        profile_size=int(np.median(data.train_counts)), defense=defense, grad_limit=1.0,
        lr=0.1, l2=0.1, init_std=0.1, seed=seed, device=torch.device("cpu"))
    return model, make_attack(name, ctx), ctx


def test_spattack_o_d_zeroes_every_mean_aggregate(data):
    model, attack, ctx = setup(data, "spattack-o-d")
    benign = model.client_step()[0]
    mal = attack.uploads(1, benign, model)
    assert len(mal) == data.n_items and torch.all(mal.counts == ctx.n_malicious)  # one row per item
    assert len(mal.expanded()) == ctx.n_malicious * data.n_items
    both = SparseUpdates.concat(benign, mal)
    out = aggregate("mean", both.items, both.grads, data.n_items, counts=both.counts)
    assert out.abs().max() < 1e-6
    assert aggregate("mean", benign.items, benign.grads, data.n_items).abs().max() > 1e-3


def test_median_takes_the_malicious_value_where_attackers_are_the_majority(data):
    model, attack, ctx = setup(data, "spattack-o-d", defense="median", n_mal=15)
    benign = model.client_step()[0]
    mal = attack.uploads(1, benign, model)
    both = SparseUpdates.concat(benign, mal)
    out = aggregate("median", both.items, both.grads, data.n_items, counts=both.counts)
    per_item_benign = torch.bincount(benign.items, minlength=data.n_items)
    minority = per_item_benign < ctx.n_malicious
    assert minority.sum() > 10
    malicious_value = torch.zeros(data.n_items, DIM)
    malicious_value[mal.items] = mal.grads
    torch.testing.assert_close(out[minority], malicious_value[minority])


def test_spattack_o_under_norm_uses_clipped_benign_rows(data):
    from spattack.aggregators import clip_rows
    model, attack, ctx = setup(data, "spattack-o-d", defense="norm")
    benign = model.client_step()[0]
    benign.grads.mul_(50)  # make clipping matter
    mal = attack.uploads(1, benign, model)
    clipped_sum = torch.zeros(data.n_items, DIM).index_add_(0, benign.items, clip_rows(benign.grads, 1.0))
    assert torch.equal(mal.items, torch.arange(data.n_items))
    torch.testing.assert_close(mal.grads, -clipped_sum / ctx.n_malicious)


def test_sparse_attackers_hit_m_max_distinct_popular_items(data):
    model, attack, ctx = setup(data, "spattack-o-s", n_mal=400)
    up = attack.uploads(1, model.client_step()[0], model)
    assert len(up) == up.items.unique().numel()  # one row per attacked item, sent by its attackers
    up = up.expanded()
    per_client = torch.bincount(up.clients - ctx.n_benign)
    m_max = min(ctx.max_items_per_client, int((data.popularity > 0).sum()))
    assert torch.all(per_client == m_max)
    for c in range(ctx.n_malicious):
        items = up.items[up.clients == ctx.n_benign + c]
        assert items.unique().numel() == m_max
    hits = torch.bincount(up.items, minlength=data.n_items).double().numpy()
    pop = data.popularity
    head, tail = pop >= np.quantile(pop, 0.8), (pop > 0) & (pop <= np.quantile(pop, 0.2))
    assert hits[head].mean() > hits[tail].mean() * 1.5
    assert np.corrcoef(hits[pop > 0], pop[pop > 0])[0, 1] > 0.5


@pytest.mark.parametrize("name", ["spattack-l-d", "spattack-l-s"])
def test_limited_rows_identical_across_attackers_and_epochs(data, name):
    model, attack, ctx = setup(data, name)
    benign = model.client_step()[0]
    first = attack.uploads(1, benign, model)
    second = attack.uploads(2, model.client_step()[0], model)
    assert torch.equal(first.grads, second.grads) and torch.equal(first.items, second.items)
    value = {}
    for item, row in zip(first.items.tolist(), first.grads):
        if item in value:
            assert torch.equal(value[item], row)
        value[item] = row


@pytest.mark.parametrize("defense", ["trimmed_mean", "krum"])
@pytest.mark.parametrize("name", ["spattack-o-s", "spattack-l-s"])
def test_sparse_attacks_refuse_fixed_f_defenses(data, name, defense):
    with pytest.raises(ValueError, match="fixed number of malicious rows"):
        setup(data, name, defense=defense)


@pytest.mark.parametrize("name", ["labelflip", "fedattack", "labelflip-dense", "fedattack-dense",
                                  "gaussian", "lie", "cluster", "fang", "fang-full"])
def test_baselines_upload_finite_rows_from_malicious_clients(data, name):
    model, attack, ctx = setup(data, name)
    for epoch in (1, 2):
        benign = model.client_step()[0]
        mal = attack.uploads(epoch, benign, model).expanded()
        assert len(mal) > 0 and mal.grads.shape[1] == DIM
        assert torch.isfinite(mal.grads).all()
        assert mal.clients.min() >= ctx.n_benign and mal.clients.max() < ctx.n_benign + ctx.n_malicious
        keys = list(zip(mal.clients.tolist(), mal.items.tolist()))
        assert len(keys) == len(set(keys)), "one row per (client, item)"


@pytest.mark.parametrize("name", ["labelflip", "fedattack"])
def test_dense_data_poisoning_adds_l2_rows_for_every_other_item(data, name):
    model, sparse, ctx = setup(data, name)
    _, dense, _ = setup(data, name + "-dense")
    benign = model.client_step()[0]
    for epoch in (1, 2):  # FedAttack re-ranks its pairs each epoch; both keep their own state
        few, every = sparse.uploads(epoch, benign, model), dense.uploads(epoch, benign, model)
        assert len(every) == ctx.n_malicious * ctx.n_items
        trained = {(c, i): g for c, i, g in zip(few.clients.tolist(), few.items.tolist(), few.grads)}
        for c, i, g in zip(every.clients.tolist(), every.items.tolist(), every.grads):
            expected = trained.get((c, i), model.item_emb[i] * ctx.l2)
            torch.testing.assert_close(g, expected)


def test_dense_statistics_count_non_uploads_as_zeros():
    from spattack.attacks.model_poisoning import dense_stats
    up = SparseUpdates(torch.tensor([0, 1, 0]), torch.tensor([0, 0, 1]), torch.tensor([[2.0], [4.0], [-3.0]]))
    s = dense_stats(up, n_clients=4, n_items=3)
    torch.testing.assert_close(s.mean[:, 0], torch.tensor([1.5, -0.75, 0.0]))
    torch.testing.assert_close(s.max[:, 0], torch.tensor([4.0, 0.0, 0.0]))
    torch.testing.assert_close(s.min[:, 0], torch.tensor([0.0, -3.0, 0.0]))
    torch.testing.assert_close(s.std[0, 0], torch.tensor(np.std([2.0, 4.0, 0, 0]), dtype=torch.float32))


def test_fang_pushes_against_the_mean_by_3_to_4_std(data):
    model, attack, ctx = setup(data, "fang")
    benign = model.client_step()[0]
    from spattack.attacks.model_poisoning import dense_stats
    s = dense_stats(benign, ctx.n_benign, ctx.n_items)
    rows = attack.uploads(1, benign, model).grads.view(ctx.n_malicious, ctx.n_items, DIM)
    shift = (rows - s.mean) * -torch.sign(s.mean)
    nonzero = s.std > 0
    assert torch.all(shift[:, nonzero] >= 3 * s.std[nonzero] - 1e-6)
    assert torch.all(shift[:, nonzero] <= 4 * s.std[nonzero] + 1e-6)


def test_fang_full_pushes_against_the_mean_beyond_the_extremes(data):
    model, attack, ctx = setup(data, "fang-full")
    benign = model.client_step()[0]
    from spattack.attacks.model_poisoning import dense_stats
    s = dense_stats(benign, ctx.n_benign, ctx.n_items)
    mal = attack.uploads(1, benign, model)
    rows = mal.grads.view(ctx.n_malicious, ctx.n_items, DIM)
    pos = s.mean > 0
    assert torch.all(rows[:, pos] <= s.min[pos] + 1e-7)
    assert torch.all(rows[:, ~pos] >= s.max[~pos] - 1e-7)


@pytest.mark.parametrize("name", ["spattack-o-d", "spattack-l-d", "spattack-o-s", "spattack-l-s", "lie", "cluster",
                                  "gaussian", "nan"])
def test_who_sent_what_is_recoverable(data, name):
    """Rows sent by many attackers at once still say which clients sent them: every
    attacker's (client, item) pairs are those of its attack, each once."""
    model, attack, ctx = setup(data, name)
    mal = attack.uploads(1, model.client_step()[0], model)
    assert mal.clients.numel() == int(mal.weights().sum())
    pairs = set(zip(mal.clients.tolist(), mal.items[mal.row_of_upload()].tolist()))
    assert len(pairs) == mal.clients.numel()
    if name.endswith("-s"):
        expected = {(ctx.n_benign + c, i) for c, row in enumerate(attack.targets.tolist()) for i in row}
    else:
        expected = {(c, i) for c in range(ctx.n_benign, ctx.n_benign + ctx.n_malicious) for i in range(data.n_items)}
    assert pairs == expected
    if name == "gaussian":  # every attacker draws its own rows
        assert mal.counts is None
    else:  # one row per attacked item
        assert len(mal) == len({i for _, i in pairs})
