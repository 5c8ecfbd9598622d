"""Federated matrix factorisation (FedMF) with a full-batch BPR client step.

All benign clients take their local step at once: the (user, positive, negative) pairs
of every client form one flat batch, and per-client sums are index_add reductions.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from .device import rows_at
from .interactions import Interactions
from .updates import SparseUpdates, UploadBuffer


def sample_train_negatives(data: Interactions, rng: np.random.Generator) -> np.ndarray:
    """One negative per training positive, uniform over items not among the user's
    training positives, drawn with replacement (as the authors' clients do, once).

    Vectorised rejection sampling: redraw only the pairs that hit a positive.
    """
    users = data.train_users
    positives = users * data.n_items + data.indices  # sorted: CSR rows are per user
    positives.sort()
    negatives = rng.integers(0, data.n_items, size=users.size)
    while True:
        keys = users * data.n_items + negatives
        pos = np.searchsorted(positives, keys).clip(max=positives.size - 1)
        bad = np.flatnonzero(positives[pos] == keys)
        if bad.size == 0:
            return negatives
        negatives[bad] = rng.integers(0, data.n_items, size=bad.size)


@dataclass
class PairBatch:
    """The fixed training pairs of every benign client and the rows they upload.

    Each client uploads ONE row per distinct item it touches (positives and sampled
    negatives). The authors' client uploads two rows when it sampled the same negative
    twice; one row per (client, item), summing that item's pair gradients, is the intent.
    """

    pair_user: torch.Tensor  # (P,) client of each (pos, neg) pair
    pos_row: torch.Tensor  # (P,) upload row of the pair's positive item
    neg_row: torch.Tensor  # (P,) upload row of the pair's negative item
    row_client: torch.Tensor  # (R,) client of each upload row
    row_item: torch.Tensor  # (R,) item of each upload row, rows sorted by item

    @classmethod
    def build(cls, data: Interactions, negatives: np.ndarray, device: torch.device) -> "PairBatch":
        """The pairs (training positive, its sampled negative) of every user of `data`."""
        return cls.from_pairs(data.train_users, data.indices, negatives, data.n_users, device)

    @classmethod
    def from_pairs(cls, users: np.ndarray, positives: np.ndarray, negatives: np.ndarray,
                   n_clients: int, device: torch.device, client_offset: int = 0) -> "PairBatch":
        """Index (user, positive, negative) pairs and their distinct (client, item) upload
        rows, sorted by item. Client ids in the rows are shifted by `client_offset`."""
        pos_key = positives * n_clients + users  # item-major keys sort rows by item
        neg_key = negatives * n_clients + users
        keys, inverse = np.unique(np.concatenate([pos_key, neg_key]), return_inverse=True)
        n = users.size
        as_long = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.long, device=device)  # noqa: E731
        return cls(
            pair_user=as_long(users),
            pos_row=as_long(inverse[:n]),
            neg_row=as_long(inverse[n:]),
            row_client=as_long(keys % n_clients + client_offset),
            row_item=as_long(keys // n_clients),
        )

    @cached_property
    def pos_item(self) -> torch.Tensor:
        """Item of each pair's positive."""
        return self.row_item[self.pos_row]

    @cached_property
    def neg_item(self) -> torch.Tensor:
        """Item of each pair's negative."""
        return self.row_item[self.neg_row]

    @property
    def max_items_per_client(self) -> int:
        """The largest number of distinct items one client uploads (the paper's m_max)."""
        return int(torch.bincount(self.row_client).max())

    @cached_property
    def hits(self) -> tuple[torch.Tensor, ...]:
        """How pair gradients land on upload rows, in the order positives then negatives,
        each by pair (a negative drawn k times hits its row k times): (first_pair (R,),
        first_negative (R,), row_user (R,)) of each row's first hit and the row's user
        (an index into the embeddings given to bpr_step), and (extra_pair (E,),
        extra_negative (E,), extra_row (E,)) of the hits after a row's first."""
        n = self.pair_user.numel()
        rows = torch.cat([self.pos_row, self.neg_row])
        order = torch.argsort(rows, stable=True)
        rows, pair = rows[order], order % n
        negative = order >= n
        first = torch.ones_like(rows, dtype=torch.bool)
        first[1:] = rows[1:] != rows[:-1]
        return (pair[first], negative[first], self.pair_user[pair[first]], pair[~first], negative[~first],
                rows[~first])


# Pairs / rows per chunk of the CPU client step: every intermediate stays in cache.
CHUNK = 1 << 15


def users_per_chunk(items: torch.Tensor, device: torch.device) -> int:
    """How many users' rows of `items` (B, K) evaluation scores at a time: on CPU about
    CHUNK candidate rows, which stay in cache; on a GPU all of them."""
    if device.type == "cpu":
        return max(1, CHUNK // max(1, items.shape[1]))
    return max(1, items.shape[0])


def bpr_step(user_emb: torch.Tensor, item_emb: torch.Tensor, pairs: PairBatch, l2: float,
             out: torch.Tensor | None = None):
    """Gradients of every client's full-batch local loss.

    Client loss: sum over its pairs of -log sigmoid(u.v_pos - u.v_neg)
    + l2 * 1/2 (|u|^2 + sum over its distinct items of |v_j|^2).
    Returns (grad of every user embedding (n_users, d), grad of every upload row (R, d),
    written into `out` when given).

    Memory-bound: it reads three embedding rows per pair and writes one row per upload.
    On CPU it runs in chunks of CHUNK pairs or rows so that every intermediate stays in
    cache, and an upload row is written once: l2 v_j plus its first pair's gradient
    +-coef u, the pairs that hit it again (a negative drawn twice) added after. Those are
    the operations, in the same order, of adding every pair's gradient into the rows, so
    the rows are the same to the bit for the same pair coefficients. (The coefficients'
    sigmoid may differ in the last bit where a chunk or a thread's share of one large op
    ends: vectorised and scalar code meet there.)
    """
    n_pairs, n_rows = pairs.pair_user.numel(), pairs.row_item.numel()
    chunk = CHUNK if user_emb.device.type == "cpu" else max(n_pairs, n_rows, 1)
    grad_user = torch.zeros_like(user_emb)
    coef = user_emb.new_empty(n_pairs, 1)
    pos_item, neg_item = pairs.pos_item, pairs.neg_item  # read in order, unlike row_item[pos_row]
    for lo in range(0, n_pairs, chunk):
        c = slice(lo, lo + chunk)
        users = pairs.pair_user[c]
        u = user_emb.index_select(0, users)
        diff = item_emb.index_select(0, pos_item[c]).sub_(item_emb.index_select(0, neg_item[c]))
        # d/dx of -log sigmoid(x) is -sigmoid(-x)
        co = torch.sigmoid(-(u * diff).sum(-1, keepdim=True)).neg_()
        grad_user.index_add_(0, users, diff.mul_(co))
        coef[c] = co
    grad_user.add_(user_emb, alpha=l2)
    first_pair, first_negative, row_user, extra_pair, extra_negative, extra_row = pairs.hits
    coef = coef.view(-1)
    rows = item_emb.new_empty(n_rows, item_emb.shape[1]) if out is None else out
    for lo in range(0, n_rows, chunk):  # coefficients gathered per chunk too: no whole-batch intermediates
        c = slice(lo, lo + chunk)
        block = torch.index_select(item_emb, 0, pairs.row_item[c], out=rows[c]).mul_(l2)
        block.add_(user_emb.index_select(0, row_user[c]).mul_(_signed(coef, first_pair[c], first_negative[c])))
    if extra_pair.numel():
        extra = _signed(coef, extra_pair, extra_negative)
        rows.index_add_(0, extra_row, user_emb.index_select(0, pairs.pair_user[extra_pair]).mul_(extra))
    return grad_user, rows


def _signed(coef: torch.Tensor, pair: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """(n, 1) the coefficient of pair `pair` (n,) for a row: coef for its positive item,
    -coef (exact) for its negative."""
    co = coef.index_select(0, pair)
    return torch.where(negative, co.neg(), co).unsqueeze(1)


class FedMF:
    """Private user embeddings on the clients, item embeddings on the server."""

    def __init__(self, data: Interactions, dim: int, init_std: float, l2: float, lr: float,
                 seed: int, device: torch.device):
        gen = torch.Generator(device="cpu").manual_seed(seed)
        self.user_emb = (torch.randn(data.n_users, dim, generator=gen) * init_std).to(device)
        self.item_emb = (torch.randn(data.n_items, dim, generator=gen) * init_std).to(device)
        negatives = sample_train_negatives(data, np.random.default_rng(seed))
        self.pairs = PairBatch.build(data, negatives, device)
        self.l2, self.lr = l2, lr
        self._buffer: UploadBuffer | None = None

    def client_step(self, room: int = 0) -> tuple[SparseUpdates, None]:
        """Every benign client's local step: update its user embedding, return its uploads
        (and None: FedMF has no dense weights).

        The uploads' gradient rows live in a buffer of the model that the next
        client_step overwrites (a fresh tensor of that size each epoch costs page
        faults); copy them to keep them longer. `room`: rows that an attack will append
        (`UploadBuffer`)."""
        if self._buffer is None or self._buffer.room < room:
            self._buffer = UploadBuffer(self.pairs.row_item, self.item_emb.shape[1], room, self.item_emb.dtype)
        rows = self._buffer.grads[: self._buffer.rows]
        grad_user, grad_rows = bpr_step(self.user_emb, self.item_emb, self.pairs, self.l2, out=rows)
        self.user_emb.sub_(grad_user, alpha=self.lr)
        return self._buffer.batch(self.pairs.row_client, grad_rows), None

    def server_step(self, aggregated: torch.Tensor) -> None:
        """V <- V - lr * AGR(rows) for every item (items without rows get a zero row)."""
        self.item_emb.sub_(aggregated, alpha=self.lr)

    def scores(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """(B, K) score u_b . v_j of item items[b, k] for user users[b] (users (B,), items
        (B, K)); on CPU in chunks that keep the gathered item rows in cache."""
        out = self.item_emb.new_empty(items.shape)
        step = users_per_chunk(items, self.item_emb.device)
        for lo in range(0, len(users), step):
            # in place: the same products, summed in the same order, as (u * v).sum(-1)
            rows = rows_at(self.item_emb, items[lo:lo + step])
            rows.mul_(rows_at(self.user_emb, users[lo:lo + step]).unsqueeze(1))
            torch.sum(rows, -1, out=out[lo:lo + step])
        return out
