"""FedMF client step: pair structure and gradients against autograd."""

import numpy as np
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
    up = model.client_step()
    assert len(up) == len(model.pairs.row_item) and up.grads.shape == (len(up), 8)
    assert not torch.equal(before, model.user_emb)
    assert model.pairs.max_items_per_client == int(torch.bincount(up.clients).max())
