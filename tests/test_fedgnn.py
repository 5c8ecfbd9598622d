"""FedGNN: batched client step against a per-client reference, per-client semantics,
the dense-weight path through simulate(), learning on tiny data."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spattack.fedgnn import LEAKY_SLOPE, FedGNN, dense_size, sample_item_neighbours
from spattack.synthetic import synthetic_interactions

CPU = torch.device("cpu")


def reference_client_loss(model: FedGNN, c: int, u, rows, theta, others):
    """Client c's loss written directly on its subgraph: z = W x per node, GAT attention
    with a skip connection, BPR over its pairs, FedMF's L2. `rows` holds the embeddings of
    c's upload rows (in the order of model.pairs rows of client c)."""
    d = model.dim
    p = model.pairs
    W = theta[: d * d].view(d, d)
    a_src, a_dst = theta[d * d: d * d + d], theta[d * d + d:]
    mine = torch.nonzero(p.row_client == c).squeeze(1)
    slot = {int(r): k for k, r in enumerate(mine)}
    sel = torch.nonzero(p.pair_user == c).squeeze(1)
    pos = [slot[int(r)] for r in p.pos_row[sel]]
    neg = [slot[int(r)] for r in p.neg_row[sel]]

    def node(x_self, xs):
        z_self = W @ x_self
        if len(xs) == 0:
            return z_self
        z = torch.stack([W @ x for x in xs])
        e = F.leaky_relu(a_dst @ z_self + z @ a_src, LEAKY_SLOPE)
        return z_self + torch.softmax(e, 0) @ z

    h_user = node(u, [rows[k] for k in sorted(set(pos))])
    h_item = []
    for k, r in enumerate(mine):
        nbrs = [int(n) for n in model.neighbours[p.row_item[r]] if n >= 0 and n != c]
        h_item.append(node(rows[k], [others[n] for n in nbrs]))
    h_item = torch.stack(h_item)
    s = h_item @ h_user
    loss = -F.logsigmoid(s[pos] - s[neg]).sum() + model.l2 / 2 * (u.pow(2).sum() + rows.pow(2).sum())
    return loss, mine


@pytest.fixture
def model():
    """A tiny FedGNN in float64 with random weights."""
    torch.manual_seed(0)
    data = synthetic_interactions(n_users=16, n_items=40, per_user=6, seed=5)
    m = FedGNN(data, dim=4, init_std=0.3, l2=0.1, lr=0.1, seed=1, device=CPU, neighbours=3)
    m.user_emb = m.user_emb.double()
    m.item_emb = m.item_emb.double()
    m.dense = (m.dense.double() + 0.3 * torch.randn(m.dense_dim, dtype=torch.float64))
    m.dense_clip = m.user_clip = None  # compare raw gradients
    return m


def test_neighbour_table_holds_distinct_users_of_the_item():
    data = synthetic_interactions(n_users=40, n_items=30, per_user=8)
    table = sample_item_neighbours(data, 5, np.random.default_rng(0))
    users_of = {j: set() for j in range(data.n_items)}
    for u, j in zip(data.train_users.tolist(), data.indices.tolist()):
        users_of[j].add(u)
    for j in range(data.n_items):
        row = [n for n in table[j].tolist() if n >= 0]
        assert len(row) == len(set(row)) == min(5, len(users_of[j]))
        assert set(row) <= users_of[j]
        assert all(n == -1 for n in table[j, len(row):].tolist())  # padding at the end


def test_batched_step_matches_per_client_reference(model):
    grad_user, grad_rows, grad_theta = model.local_step(model.user_emb, model.pairs)
    assert grad_theta.shape == (model.user_emb.shape[0], dense_size(model.dim))
    for c in range(model.user_emb.shape[0]):
        u = model.user_emb[c].clone().requires_grad_(True)
        mine = model.pairs.row_client == c
        rows = model.item_emb[model.pairs.row_item[mine]].clone().requires_grad_(True)
        theta = model.dense.clone().requires_grad_(True)
        loss, _ = reference_client_loss(model, c, u, rows, theta, model.user_emb)
        gu, gr, gt = torch.autograd.grad(loss, [u, rows, theta])
        torch.testing.assert_close(grad_user[c], gu)
        torch.testing.assert_close(grad_rows[mine], gr)
        torch.testing.assert_close(grad_theta[c], gt)


def test_fixture_exercises_self_rows_and_padding(model):
    assert model.graphs.self_row.numel() > 0  # rows whose client is a neighbour of the item
    assert bool((model.neighbours < 0).any())  # items with fewer users than K


def reference_score(model: FedGNN, c: int, j: int):
    """h_c . h_j for user c and any item j, straight from the definitions."""
    d = model.dim
    W = model.dense[: d * d].view(d, d)
    a_src, a_dst = model.dense[d * d: d * d + d], model.dense[d * d + d:]
    p = model.pairs
    positives = sorted(set(p.row_item[p.pos_row[p.pair_user == c]].tolist()))

    def node(x_self, xs):
        if not xs:
            return W @ x_self
        z = torch.stack([W @ x for x in xs])
        e = F.leaky_relu(a_dst @ (W @ x_self) + z @ a_src, LEAKY_SLOPE)
        return W @ x_self + torch.softmax(e, 0) @ z

    h_user = node(model.user_emb[c], [model.item_emb[i] for i in positives])
    nbrs = [int(n) for n in model.neighbours[j] if n >= 0 and n != c]
    return node(model.item_emb[j], [model.user_emb[n] for n in nbrs]) @ h_user


def test_scores_match_reference_including_own_items(model):
    n_users, n_items = model.user_emb.shape[0], model.item_emb.shape[0]
    users = torch.arange(n_users)
    items = torch.stack([torch.randperm(n_items)[:7] for _ in range(n_users)])
    got = model.scores(users, items)
    for c in range(n_users):
        for k in range(items.shape[1]):
            torch.testing.assert_close(got[c, k], reference_score(model, c, int(items[c, k])))


def test_scores_in_chunks_of_users_are_the_same_bits(model, monkeypatch):
    """Chunks of 2 users (one user's rows, own items among them, in several chunks)."""
    from spattack import fedmf
    n_users, n_items = model.user_emb.shape[0], model.item_emb.shape[0]
    users = torch.arange(n_users)
    items = torch.stack([torch.randperm(n_items, generator=torch.Generator().manual_seed(c))[:7] for c in range(n_users)])
    whole = model.scores(users, items)
    monkeypatch.setattr(fedmf, "CHUNK", 14)
    assert torch.equal(model.scores(users, items), whole)


def test_scores_of_no_users_or_no_items_are_empty(model):
    users = torch.arange(3)
    assert model.scores(users[:0], torch.zeros((0, 5), dtype=torch.long)).shape == (0, 5)
    assert model.scores(users, torch.zeros((3, 0), dtype=torch.long)).shape == (3, 0)


def test_a_clients_uploads_depend_only_on_its_subgraph(model):
    p = model.pairs
    c = 0
    mine = p.row_client == c
    my_items = set(p.row_item[mine].tolist())
    my_neighbours = {int(n) for j in my_items for n in model.neighbours[j] if n >= 0} - {c}
    before = model.local_step(model.user_emb, p, model.graphs)
    stranger_users = [u for u in range(model.user_emb.shape[0]) if u != c and u not in my_neighbours]
    stranger_items = [j for j in range(model.item_emb.shape[0]) if j not in my_items]
    assert stranger_users and stranger_items
    model.user_emb[stranger_users] += 1.0
    model.item_emb[stranger_items] -= 1.0
    after = model.local_step(model.user_emb, p, model.graphs)
    torch.testing.assert_close(after[0][c], before[0][c])
    torch.testing.assert_close(after[1][mine], before[1][mine])
    torch.testing.assert_close(after[2][c], before[2][c])
    # ... while a neighbour's embedding does change them
    model.user_emb[sorted(my_neighbours)] += 1.0
    changed = model.local_step(model.user_emb, p, model.graphs)
    assert not torch.allclose(changed[2][c], before[2][c])


def test_dense_rows_are_clipped_per_client():
    data = synthetic_interactions(n_users=30, n_items=20, per_user=8)
    m = FedGNN(data, dim=4, init_std=0.5, l2=0.1, lr=0.1, seed=0, device=CPU, dense_clip=0.01)
    items, dense = m.client_step()
    assert dense.grads.shape == (30, dense_size(4))
    assert torch.equal(dense.clients, torch.arange(30)) and not dense.items.any()
    assert torch.all(dense.grads.norm(dim=1) <= 0.01 + 1e-6)
    assert len(items) == len(m.pairs.row_item)


def test_user_step_is_clipped_per_client():
    data = synthetic_interactions(n_users=30, n_items=20, per_user=8)
    m = FedGNN(data, dim=4, init_std=0.5, l2=0.1, lr=0.1, seed=0, device=CPU, user_clip=None)
    raw_user, _, _ = m.local_step(m.user_emb, m.pairs, m.graphs)
    m.user_clip = 0.05
    assert bool((raw_user.norm(dim=1) > 0.05).any())  # the clip has something to do
    before = m.user_emb.clone()
    m.client_step()
    step = (before - m.user_emb) / m.lr
    assert torch.all(step.norm(dim=1) <= 0.05 + 1e-6)
    scale = (0.05 / raw_user.norm(dim=1)).clamp(max=1).unsqueeze(1)  # same direction, shorter
    torch.testing.assert_close(step, raw_user * scale)


# ---- through the attacks and simulate() ----

from spattack import attacks  # noqa: E402
from spattack.aggregators import aggregate  # noqa: E402
from spattack.attacks import AttackContext, make_attack  # noqa: E402
from spattack.simulation import RunConfig, simulate  # noqa: E402
from spattack.updates import SparseUpdates  # noqa: E402

# one thread: tiny tensors gain nothing from more, and spinning threads crawl on a busy machine
SMALL = dict(model="fedgnn", dim=8, lr=0.1, init_std=0.1, eval_negatives=30, device="cpu", threads=1)


@pytest.fixture(scope="module")
def data():
    return synthetic_interactions(n_users=200, n_items=80, per_user=12)


def attack_setup(data, name, defense="mean", n_mal=12):
    model = FedGNN(data, dim=8, init_std=0.1, l2=0.1, lr=0.1, seed=0, device=CPU)
    ctx = AttackContext(
        n_benign=data.n_users, n_malicious=n_mal, n_items=data.n_items, dim=8, popularity=data.popularity,
        max_items_per_client=model.pairs.max_items_per_client, profile_size=11, defense=defense,
        grad_limit=1.0, lr=0.1, l2=0.1, init_std=0.1, seed=7, device=CPU, dense_dim=model.dense_dim)
    return model, make_attack(name, ctx), ctx


@pytest.mark.parametrize("name", ["spattack-o-d", "spattack-o-s"])
def test_omniscient_spattack_zeroes_the_dense_mean(data, name):
    model, attack, ctx = attack_setup(data, name)
    items, dense = model.client_step()
    mal = attack.dense_uploads(1, dense, model)
    assert torch.equal(mal.clients, ctx.malicious_ids) and not mal.items.any()
    both = SparseUpdates.concat(dense, mal)
    out = aggregate("mean", both.items, both.grads, 1, counts=both.counts)
    assert out.shape == (1, model.dense_dim)
    torch.testing.assert_close(out, torch.zeros_like(out), atol=1e-7, rtol=0)
    assert dense.grads.abs().sum() > 0


def test_limited_spattack_dense_noise_is_fixed_and_shared(data):
    model, attack, ctx = attack_setup(data, "spattack-l-d")
    _, dense = model.client_step()
    first = attack.dense_uploads(1, dense, model).grads
    _, dense = model.client_step()
    second = attack.dense_uploads(2, dense, model).grads
    assert torch.equal(first, second) and torch.equal(first[0], first[-1])
    assert 0.8 < float(first[0].std()) < 1.2  # N(0, 1)


def test_data_poisoning_attackers_train_the_gnn(data):
    model, attack, ctx = attack_setup(data, "labelflip")
    items, dense = model.client_step()
    rows = attack.uploads(1, items, model)
    mal_dense = attack.dense_uploads(1, dense, model)
    assert torch.equal(mal_dense.clients, ctx.malicious_ids)
    assert mal_dense.grads.shape == (ctx.n_malicious, model.dense_dim)
    assert torch.all(mal_dense.grads.norm(dim=1) <= model.dense_clip + 1e-6)
    assert len(rows) and torch.all(rows.clients >= data.n_users)


@pytest.mark.parametrize("name", sorted(attacks.ATTACKS))
def test_every_attack_runs_on_fedgnn(data, name):
    defense = "median" if name in ("nan", "inf") else "mean"
    result = simulate(data, RunConfig(attack=name, defense=defense, ratio=10, **{**SMALL, "epochs": 3}),
                      progress=False)
    assert result.summary["status"] == "ok"
    assert result.metrics.notna().all().all()


@pytest.mark.parametrize("defense", ["mean", "median", "norm", "trimmed_mean", "krum"])
def test_spattack_o_d_runs_under_every_defense(data, defense):
    result = simulate(data, RunConfig(attack="spattack-o-d", defense=defense, ratio=10, **{**SMALL, "epochs": 2}),
                      progress=False)
    assert result.summary["status"] == "ok"


def test_spattack_o_d_under_mean_keeps_server_weights(data):
    norms = []

    class Spy(FedGNN):
        def dense_step(self, aggregated):
            norms.append(float(aggregated.norm()))
            super().dense_step(aggregated)

    simulate(data, RunConfig(attack="spattack-o-d", ratio=10, **{**SMALL, "epochs": 3}), progress=False, model=Spy)
    assert len(norms) == 3 and max(norms) < 1e-6


def test_fedgnn_learns_above_random(data):
    result = simulate(data, RunConfig(**{**SMALL, "epochs": 60}), progress=False)
    m = result.metrics
    assert result.summary["status"] == "ok"
    assert m.hr10.iloc[-5:].mean() > m.hr10.iloc[0] + 0.2
    assert result.summary["config"]["model"] == "fedgnn"


def test_fedgnn_same_seed_same_numbers(data):
    a = simulate(data, RunConfig(seed=3, **{**SMALL, "epochs": 5}), progress=False).metrics
    b = simulate(data, RunConfig(seed=3, **{**SMALL, "epochs": 5}), progress=False).metrics
    assert a.equals(b)
