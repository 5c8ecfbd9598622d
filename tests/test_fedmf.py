"""FedMF client step: pair structure and gradients against autograd."""

import numpy as np
import pytest
import torch

from spattack.fedmf import FedMF, PairBatch, bpr_step, sample_train_negatives
from spattack.synthetic import synthetic_interactions


def test_negatives_avoid_positives():
    data = synthetic_interactions(n_users=30, n_items=25, per_user=10)
    neg = sample_train_negatives(data, np.random.default_rng(1))
    assert neg.shape == data.indices.shape
    positives = set(zip(data.train_users.tolist(), data.indices.tolist()))
    assert not any((u, j) in positives for u, j in zip(data.train_users.tolist(), neg.tolist()))


def test_one_row_per_client_item_sorted_by_item():
    data = synthetic_interactions(n_users=20, n_items=15, per_user=8)
    neg = sample_train_negatives(data, np.random.default_rng(2))
    pairs = PairBatch.build(data, neg, torch.device("cpu"))
    keys = list(zip(pairs.row_client.tolist(), pairs.row_item.tolist()))
    assert len(keys) == len(set(keys))
    assert torch.all(pairs.row_item[1:] >= pairs.row_item[:-1])
    expected = set(zip(data.train_users.tolist(), data.indices.tolist())) | set(
        zip(data.train_users.tolist(), neg.tolist()))
    assert set(keys) == expected
    # every pair points at rows of its own client and items
    assert torch.equal(pairs.row_client[pairs.pos_row], pairs.pair_user)
    assert torch.equal(pairs.row_item[pairs.pos_row], torch.as_tensor(data.indices))
    assert torch.equal(pairs.row_item[pairs.neg_row], torch.as_tensor(neg))


def test_bpr_gradients_match_autograd():
    torch.manual_seed(0)
    data = synthetic_interactions(n_users=12, n_items=10, per_user=6, seed=3)
    neg = sample_train_negatives(data, np.random.default_rng(3))
    pairs = PairBatch.build(data, neg, torch.device("cpu"))
    users = torch.randn(data.n_users, 4, dtype=torch.float64)
    items = torch.randn(data.n_items, 4, dtype=torch.float64)
    l2 = 0.1
    grad_user, grad_rows = bpr_step(users, items, pairs, l2)
    for c in range(data.n_users):
        u = users[c].clone().requires_grad_(True)
        mine = pairs.row_client == c
        my_items = pairs.row_item[mine]
        v = items[my_items].clone().requires_grad_(True)
        slot = {int(j): k for k, j in enumerate(my_items)}
        sel = pairs.pair_user == c
        p = torch.tensor([slot[int(j)] for j in pairs.row_item[pairs.pos_row[sel]]])
        n = torch.tensor([slot[int(j)] for j in pairs.row_item[pairs.neg_row[sel]]])
        x = (u * (v[p] - v[n])).sum(-1)
        loss = -torch.nn.functional.logsigmoid(x).sum() + l2 / 2 * (u.pow(2).sum() + v.pow(2).sum())
        loss.backward()
        torch.testing.assert_close(grad_user[c], u.grad)
        torch.testing.assert_close(grad_rows[mine], v.grad)


def test_client_step_updates_users_and_returns_rows():
    data = synthetic_interactions()
    model = FedMF(data, dim=8, init_std=0.1, l2=0.1, lr=0.1, seed=0, device=torch.device("cpu"))
    before = model.user_emb.clone()
    up = model.client_step()[0]
    assert len(up) == len(model.pairs.row_item) and up.grads.shape == (len(up), 8)
    assert not torch.equal(before, model.user_emb)
    assert model.pairs.max_items_per_client == int(torch.bincount(up.clients).max())


def _bpr_step_every_pair(user_emb, item_emb, pairs, l2):
    """The client step written plainly: every pair's gradient added into the rows."""
    u = user_emb.index_select(0, pairs.pair_user)
    diff = item_emb.index_select(0, pairs.pos_item).sub_(item_emb.index_select(0, pairs.neg_item))
    coef = torch.sigmoid(-(u * diff).sum(-1, keepdim=True)).neg_()
    grad_user = torch.zeros_like(user_emb).index_add_(0, pairs.pair_user, diff.mul_(coef))
    grad_user.add_(user_emb, alpha=l2)
    grad_rows = item_emb.index_select(0, pairs.row_item).mul_(l2)
    u.mul_(coef)
    grad_rows.index_add_(0, pairs.pos_row, u)
    grad_rows.index_add_(0, pairs.neg_row, u, alpha=-1)
    return grad_user, grad_rows


@pytest.mark.parametrize("chunk", [7, 1 << 15])
def test_chunked_step_equals_summing_every_pair(chunk, monkeypatch):
    """Negatives drawn twice hit their row twice (few items: many repeats). In one chunk
    the same bits; in chunks of 7 a sigmoid may differ in its last bit (see bpr_step)."""
    from spattack import fedmf
    monkeypatch.setattr(fedmf, "CHUNK", chunk)
    data = synthetic_interactions(n_users=50, n_items=30, per_user=9)
    model = FedMF(data, 8, init_std=0.5, l2=0.1, lr=0.1, seed=1, device=torch.device("cpu"))
    assert model.pairs.hits[3].numel() > 10  # repeated hits exist
    for _ in range(3):
        expected = _bpr_step_every_pair(model.user_emb, model.item_emb, model.pairs, 0.1)
        got = fedmf.bpr_step(model.user_emb, model.item_emb, model.pairs, 0.1)
        for g, e in zip(got, expected):
            if chunk > len(model.pairs.pair_user):
                assert torch.equal(g, e)
            torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)
        model.client_step()
        model.server_step(torch.randn(30, 8) * 0.1)


@pytest.mark.parametrize("chunk", [5, 1 << 15])
def test_scores_are_the_plain_dot_products_bit_for_bit(chunk, monkeypatch):
    """In chunks or not, each score is u . v summed as (u * v).sum(-1) sums it: the
    evaluation's ranks, ties included, do not depend on how the rows are gathered."""
    from spattack import fedmf
    monkeypatch.setattr(fedmf, "CHUNK", chunk)
    data = synthetic_interactions(n_users=23, n_items=40, per_user=5)
    model = FedMF(data, 32, init_std=0.5, l2=0.1, lr=0.1, seed=2, device=torch.device("cpu"))
    users = torch.arange(data.n_users)
    items = torch.randint(0, data.n_items, (data.n_users, 3), generator=torch.Generator().manual_seed(0))
    expected = (model.user_emb[users].unsqueeze(1) * model.item_emb[items]).sum(-1)
    assert torch.equal(model.scores(users, items), expected)
    assert model.scores(users, items[:, :0]).shape == (data.n_users, 0)
    assert model.scores(users[:0], items[:0]).shape == (0, 3)
