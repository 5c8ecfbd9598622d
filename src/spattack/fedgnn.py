"""Federated graph neural network recommender (FedGNN), simulated for all clients at once.

After Wu et al., "A federated graph neural network framework for privacy-preserving
personalization", Nature Communications 13, 3091 (2022).

The model, per client c:

- Parameters: its private user embedding u_c; the item embeddings V_j of the items it
  touches (its training positives P_c and its sampled negatives), held by the server;
  the shared GNN weights theta = (W in R^{d x d}, a_src, a_dst in R^d) of one single-head
  graph-attention layer (GAT, Velickovic et al. 2018), also held by the server.
- Local subgraph: the edges (c, p) for p in P_c, expanded with anonymous neighbour users:
  for every item j the client touches it receives the current embeddings of the users
  N(j) \\ {c}. N(j) is a fixed set of up to K (`neighbours`, default 10) users who have j
  among their training positives, drawn uniformly without replacement once at set-up
  (seeded) and shared by every client that touches j. Neighbour embeddings are those at
  the start of the epoch; they are inputs: no gradient flows to them (they are other
  clients' private parameters). Malicious clients are never anybody's neighbours.
- Graph attention with a skip connection: z_k = W x_k, and node i with neighbours S_i
  gets h_i = z_i + sum_{k in S_i} alpha_ik z_k, alpha_ik = softmax over k in S_i of
  LeakyReLU_0.2(a_dst . z_i + a_src . z_k) (an empty S_i gives h_i = z_i); linear output.
  User node: x = u_c, S = its positives' item embeddings. Item node j: x = V_j,
  S = the users N(j) \\ {c}.
- Score s(c, j) = h_c . h_j. At evaluation every candidate item j is an item node of the
  user's graph in the same way, so training and test items are represented alike (a test
  or evaluation-negative item is nobody's training positive for c, so c is never among
  its neighbours; no self-exclusion happens there).
- Local loss: BPR as in FedMF over the same (positive, negative) pairs (one negative per
  positive, sampled once with the same seed as FedMF), plus l2 * 1/2 (|u_c|^2 +
  sum_{j in S} |V_j|^2) as in FedMF; theta carries no L2 term. One full-batch step per
  epoch; u_c <- u_c - lr * grad locally, the gradient clipped by the client to L2 norm
  <= `user_clip` (default 1.0).
- Uploads: one item-embedding gradient row per (client, item it touches), aggregated per
  item exactly as FedMF's; one DENSE row per client: its gradient of theta flattened to
  d*d + 2d values (W row-major, a_src, a_dst), clipped by the client to L2 norm <=
  `dense_clip` (default 1.0; the clipping half of FedGNN's local differential privacy
  module). The dense rows form a SparseUpdates whose rows all belong to one "item"
  (item 0), so the same aggregator code aggregates them; the server steps
  theta <- theta - lr * AGR(dense rows).
  Why the clip: h_c . h_j is quadratic in W and the client gradient is a sum over its
  pairs, so the server's step on theta grows with the embeddings; on ML-100K with the
  paper's settings theta's step explodes to NaN around epoch 75 without it (measured),
  with it the run is stable. Item rows are NOT clipped, so the item aggregation (the
  object of the attack) stays exactly FedMF's.
  Why the user clip: an item node carries its neighbour users' embeddings, which grow
  to 7-14x the item embeddings unclipped, so a heavy user's loss (a sum over hundreds
  of pairs) is steep in u_c and the plain step overshoots. Unclipped, on clean Steam the
  user block falls into a 2-cycle (cosine of consecutive steps -0.97 at epoch 200, 5% of users
  reversing every step) and HR@10 alternates 0.585 / 0.616 at epochs 200 / 199; clipped,
  the steps stay aligned and HR@10 is 0.753 (seed 0; FedMF: 0.687). On ML-100K the clip
  costs a little (HR@10 0.516 vs 0.527). scripts/experiments/fedgnn_user_clip.py
  measures both.
- Init: U and V as FedMF (same generator and values for the same seed), then
  W = I + N(0, init_std^2), a_src, a_dst ~ N(0, init_std^2): attention starts uniform and
  the layer starts as "own embedding + mean of the neighbours'".

Simplifications of the original system (deliberate):
- The client clips its private user-embedding gradient (above). The original system
  clips only what it uploads; this is a stabiliser of our plain-SGD setting.
- No encryption, no homomorphic item-id matching and no third-party server: the
  neighbour expansion is computed centrally from the training data (what the trusted
  third party would return) and embeddings are exchanged in the clear.
- Neighbour users are capped at K per item and fixed for the run (the original shares all
  users of an item through the server); synchronous clients.
- The client also receives neighbours for its sampled negatives (as if the matching ran
  over every item it touches), so positive and negative items are represented alike.
- No pseudo-interacted items (random items with fake gradients that hide the real ones)
  and no LDP Laplace noise: both only add noise to benign uploads and would confound the
  attack study. Only the gradient clip of the LDP module is kept, for the dense part.
- BPR with sampled negatives instead of the original rating regression, one GAT layer,
  one head, skip connection, linear output; full-batch SGD step with FedMF's learning
  rate instead of the original optimiser; no client sampling: the paper's FedMF setting
  applied to FedGNN.

Batched over clients, gradients by hand (tested against autograd on per-client
subgraphs). Why no graph library such as PyTorch Geometric: every client uploads its own
gradient of the shared GNN weights, and batched autograd over all subgraphs returns that
gradient only summed over clients; per-client backward passes would cost one pass per
client and epoch. The hand-derived gradients give every client's in one batched pass.
Every client holds the same theta, so all forward values that do not involve
a client's own vectors are shared: b_src = W^T a_src and b_dst = W^T a_dst turn
attention logits into dot products with raw embeddings, M = W^T W turns scores into
t_c . y_j with t_c = M xbar_c (xbar_c = u_c + sum alpha v) and y_j = V_j + sum alpha u,
and y_j is computed once per item (rows whose client is among the item's neighbours are
recomputed without it). The per-client gradients are then sums over each client's rows
and edges (`RowOps`: sampled dot products and embedding-bag sums, rows in client order),
the same over each client's distinct (client, neighbour user) pairs for the attention over
neighbour users (7% of Steam's clients x users, 25% of ML-1M's), and per-client outer
products for theta; each upload row's gradient is one weighted sum of five rows of a
small table (`LocalGraphs.combine`). CPU, one thread: a FedGNN epoch (client step,
aggregation, evaluation) takes 1.8x a FedMF epoch on ML-100K, 2.2x on Steam and 1.7x on
ML-1M (benchmarks/bench_fedgnn.py --threads 1).

Under attack: Spattack-L (fixed N(0, 1) rows) makes the item embeddings grow linearly
under Mean, as in FedMF. Users are also pulled toward their neighbour users; without the
user clip their embeddings then grew exponentially and every -L cell of Fig. 4 under
Mean ended as "diverged" (commit 053ad7d: epochs 111-112 on ML-100K, 84-88 on Steam).
With it, every Fig. 4 cell stays finite.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .aggregators import clip_rows
from .device import rows_at
from .fedmf import PairBatch, sample_train_negatives, users_per_chunk
from .interactions import Interactions
from .updates import SparseUpdates

LEAKY_SLOPE = 0.2
DEFAULT_NEIGHBOURS = 10
DEFAULT_DENSE_CLIP = 1.0
DEFAULT_USER_CLIP = 1.0


def sample_item_neighbours(data: Interactions, k: int, rng: np.random.Generator) -> np.ndarray:
    """(n_items, k) int64: up to k distinct users with the item among their training
    positives, uniformly without replacement; -1 pads items with fewer users."""
    users, items = data.train_users, data.indices
    order = np.lexsort((rng.random(users.size), items))  # by item, random within item
    items_s, users_s = items[order], users[order]
    first = np.searchsorted(items_s, np.arange(data.n_items))
    rank = np.arange(items_s.size) - first[items_s]
    keep = rank < k
    table = np.full((data.n_items, k), -1, dtype=np.int64)
    table[items_s[keep], rank[keep]] = users_s[keep]
    return table


def dense_size(dim: int) -> int:
    """Number of GNN weights: W (dim x dim), a_src (dim), a_dst (dim)."""
    return dim * dim + 2 * dim


@dataclass
class Theta:
    """The GNN weights and the products the forward pass uses."""

    w: torch.Tensor  # (d, d)
    a_src: torch.Tensor  # (d,)
    a_dst: torch.Tensor  # (d,)

    @classmethod
    def of(cls, flat: torch.Tensor, dim: int) -> "Theta":
        return cls(flat[: dim * dim].view(dim, dim), flat[dim * dim: dim * dim + dim], flat[dim * dim + dim:])

    @property
    def b_src(self) -> torch.Tensor:  # a_src . W x = b_src . x
        return self.w.T @ self.a_src

    @property
    def b_dst(self) -> torch.Tensor:
        return self.w.T @ self.a_dst

    @property
    def gram(self) -> torch.Tensor:  # h_c . h_j = xbar_c^T W^T W y_j
        return self.w.T @ self.w


@dataclass
class Attention:
    """Item nodes' attention over their neighbour users, for X item slots.

    alpha (X, K) weights (0 on padding), weight = alpha * LeakyReLU'(logit) (X, K),
    pooled = sum alpha u (X, d), slope_pooled = sum weight u, shift = slope_pooled -
    (sum weight) pooled = d pooled / d (a_dst . z_item).
    """

    alpha: torch.Tensor
    weight: torch.Tensor
    pooled: torch.Tensor
    slope_pooled: torch.Tensor
    shift: torch.Tensor

    @classmethod
    def of(cls, q: torch.Tensor, nbr: torch.Tensor, valid: torch.Tensor, src: torch.Tensor,
           users: torch.Tensor) -> "Attention":
        """q (X,) a_dst . z_item; nbr (X, K) user ids, -1 padding; valid (X, K); src
        (n_users,) a_src . z_user; users (n_users, d)."""
        x, k = nbr.shape
        d = users.shape[1]
        if k == 0:
            zeros = users.new_zeros(x, d)
            return cls(users.new_zeros(x, 0), users.new_zeros(x, 0), zeros, zeros, zeros)
        idx = nbr.clamp(min=0)
        pre = q.unsqueeze(1) + src[idx]
        logit = F.leaky_relu(pre, LEAKY_SLOPE).masked_fill(~valid, float("-inf"))
        top = logit.amax(1, keepdim=True).nan_to_num(neginf=0.0)
        e = torch.exp(logit - top)
        alpha = e / e.sum(1, keepdim=True).clamp_min(torch.finfo(e.dtype).tiny)
        weight = alpha * torch.where(pre > 0, 1.0, LEAKY_SLOPE).to(alpha.dtype)
        u = users[idx]  # (X, K, d); elementwise: batched 1 x K x d products are slow as bmm
        pooled = (alpha.unsqueeze(2) * u).sum(1)
        slope_pooled = (weight.unsqueeze(2) * u).sum(1)
        shift = slope_pooled - weight.sum(1, keepdim=True) * pooled
        return cls(alpha, weight, pooled, slope_pooled, shift)


def csr(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A sparse CSR matrix, unchecked (its indices are built here)."""
    with warnings.catch_warnings():  # torch calls every CSR tensor "beta"; tests check the products used
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        return torch.sparse_csr_tensor(crow, col, values, size, check_invariants=False)


class RowOps:
    """Per-row dot products a[c_r] . b[j_r] and per-client sums sum_r x_r b[j_r] over rows
    (client c_r, item j_r), one row per (client, item), with the rows in CSR order (by
    client): the dots are `torch.sparse.sampled_addmm` on the (clients x items) pattern,
    the sums a weighted `embedding_bag` per client. Both read each row's indices once and
    gather from a and b, small enough to stay in cache: no (rows x d) copy and no dense
    (clients x items) matrix is made. Each output is summed by one thread in a fixed
    order, so the numbers do not depend on the thread count.
    """

    def __init__(self, client: torch.Tensor, item: torch.Tensor, n_clients: int, n_items: int,
                 in_order: bool = False):
        """client, item: (R,) int64 rows. in_order: the rows are already in CSR order (by
        client, then item); then no permutation is kept or applied, and `client` and `item`
        are not kept (the pattern holds them)."""
        self.n_clients, self.n_items = n_clients, n_items
        self.crow = torch.zeros(n_clients + 1, dtype=torch.int64, device=client.device)
        self.crow[1:] = torch.bincount(client, minlength=n_clients).cumsum(0)
        if in_order:
            self.client = self.item = self.order = self.place = None
            self.col = item
        else:
            self.client, self.item = client, item
            self.order = torch.argsort(client * n_items + item)  # CSR place -> row
            self.place = torch.empty_like(self.order)
            self.place[self.order] = torch.arange(client.numel(), device=client.device)  # row -> CSR place
            self.col = item.index_select(0, self.order)
        self._pattern = None  # the (clients x items) pattern with zero values, made on first use

    def dot(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(R,) a[c_r] . b[j_r] for a (C, d), b (n_items, d)."""
        if self._pattern is None or self._pattern.dtype != a.dtype:
            self._pattern = csr(self.crow, self.col, a.new_zeros(self.col.numel()), (self.n_clients, self.n_items))
        dots = torch.sparse.sampled_addmm(self._pattern, a, b.T).values()
        return dots if self.place is None else dots.index_select(0, self.place)

    def sum(self, x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(C, d) sum over each client's rows of x_r b[j_r] for x (R,), b (n_items, d)."""
        weights = x if self.order is None else x.index_select(0, self.order)
        return F.embedding_bag(self.col, b, self.crow[:-1], per_sample_weights=weights, mode="sum")


@dataclass
class UserNodes:
    """Forward state of the user nodes: xbar = u + agg, agg = sum_e alpha_e v_e."""

    agg: torch.Tensor  # (C, d)
    xbar: torch.Tensor  # (C, d)
    alpha: torch.Tensor  # (E,)
    slope: torch.Tensor  # (E,) LeakyReLU'(logit)

    @classmethod
    def of(cls, user, edges: RowOps, item_emb, theta: Theta) -> "UserNodes":
        """user (C, d); edges: every user-item edge (client, item), distinct."""
        q = user @ theta.b_dst
        pre = q.index_select(0, edges.client) + (item_emb @ theta.b_src).index_select(0, edges.item)
        logit = F.leaky_relu(pre, LEAKY_SLOPE)
        top = torch.full_like(q, float("-inf")).scatter_reduce_(0, edges.client, logit, "amax")
        e = torch.exp(logit - top.index_select(0, edges.client))
        norm = torch.zeros_like(q).index_add_(0, edges.client, e)
        alpha = e / norm.index_select(0, edges.client)
        agg = edges.sum(alpha, item_emb)
        slope = torch.where(pre > 0, 1.0, LEAKY_SLOPE).to(alpha.dtype)
        return cls(agg, user + agg, alpha, slope)


@dataclass
class LocalGraphs:
    """Index structure of the subgraphs of the clients of one PairBatch.

    Rows whose client is among the neighbours of the row's item ("self rows", only
    possible for positives) get their own attention without that neighbour.
    """

    row_client: torch.Tensor  # (R,) local client index (as pair_user) of every upload row
    rows: RowOps  # over (row_client, row item)
    edge_row: torch.Tensor  # (E,) rows that are user-item edges (distinct positive rows)
    edges: RowOps  # over the edges
    nbr_pairs: RowOps  # over the distinct (local client, neighbour user) pairs of the rows (padding: user 0)
    nbr_slot: torch.Tensor  # (R * K,) each (row in CSR order, neighbour slot)'s place in nbr_pairs
    terms: torch.Tensor  # (R, 5) where each upload row's gradient terms sit in gnn_step's stacked table
    self_row: torch.Tensor  # (X,) rows whose client is a neighbour of their item
    self_valid: torch.Tensor  # (X, K) those rows' neighbours without the client

    def combine(self, coef: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """(R, d) each upload row's sum of coef[r, i] table[terms[r, i]], coef (R, 5): one
        weighted embedding-bag sum that writes every row once, the small table in cache."""
        return F.embedding_bag(self.terms, table, per_sample_weights=coef, mode="sum")

    @classmethod
    def build(cls, pairs: PairBatch, neighbours: torch.Tensor, n_clients: int, n_users: int,
              n_items: int) -> "LocalGraphs":
        local = torch.empty_like(pairs.row_client)
        local[pairs.pos_row] = pairs.pair_user
        local[pairs.neg_row] = pairs.pair_user
        edge_row = torch.unique(pairs.pos_row)
        nbr = neighbours.index_select(0, pairs.row_item)
        is_self = nbr == pairs.row_client.unsqueeze(1)
        self_row = torch.nonzero(is_self.any(1)).squeeze(1)
        self_valid = (nbr[self_row] >= 0) & ~is_self[self_row]
        rows = RowOps(local, pairs.row_item, n_clients, n_items)
        # rows in CSR order: the scatter into the pairs then stays within one client's pairs at a time
        key = (local.unsqueeze(1) * n_users + nbr.clamp(min=0)).index_select(0, rows.order).reshape(-1)
        key, slot = torch.unique(key, return_inverse=True)
        nbr_pairs = RowOps(key // n_users, key % n_users, n_clients, n_users, in_order=True)
        edges = RowOps(local[edge_row], pairs.row_item[edge_row], n_clients, n_items)
        table = 2 * n_clients + n_items  # rows of the table: t, grad xbar (clients), item embeddings, b_dst, b_src
        last = torch.full_like(local, table)
        terms = torch.stack([local, n_clients + local, 2 * n_clients + pairs.row_item, last, last + 1], 1)
        return cls(local, rows, edge_row, edges, nbr_pairs, slot, terms, self_row, self_valid)


def gnn_step(user: torch.Tensor, item_emb: torch.Tensor, others: torch.Tensor, theta_flat: torch.Tensor,
             neighbours: torch.Tensor, pairs: PairBatch, graphs: LocalGraphs, l2: float):
    """Gradients of every client's full-batch local loss (see the module docstring).

    user: (C, d) the clients' own embeddings (indexed by pairs.pair_user); others:
    (n_users, d) the embeddings neighbours are drawn from. Returns (grad of user (C, d),
    grad of every upload row (R, d), grad of theta per client (C, P), unclipped).

    Per-item quantities are shared by every row of the item except the self rows, whose
    contributions are added separately.
    """
    n_clients, d = user.shape
    th = Theta.of(theta_flat, d)
    b_src, b_dst, gram = th.b_src, th.b_dst, th.gram
    g = graphs
    rows, sr = g.rows, g.self_row

    # forward: item nodes (once per item, again for the self rows), user nodes, scores
    src_user = others @ b_src
    q_item = item_emb @ b_dst
    att = Attention.of(q_item, neighbours, neighbours >= 0, src_user, others)
    y_item = item_emb + att.pooled
    nodes = UserNodes.of(user, g.edges, item_emb, th)
    t = nodes.xbar @ gram
    score = rows.dot(t, y_item)
    pooled_score = rows.dot(t, att.pooled)
    if sr.numel():
        self_items = pairs.row_item[sr]
        own = Attention.of(q_item[self_items], neighbours[self_items], g.self_valid, src_user, others)
        self_v = item_emb[self_items]
        self_t = t[g.row_client[sr]]
        pooled_score[sr] = (self_t * own.pooled).sum(1)
        score[sr] = (self_t * self_v).sum(1) + pooled_score[sr]
    x = score[pairs.pos_row] - score[pairs.neg_row]
    coef = -torch.sigmoid(-x)  # d/dx of -log sigmoid(x)
    grad_score = torch.zeros_like(score).index_add_(0, pairs.pos_row, coef).index_add_(0, pairs.neg_row, -coef)

    # back through the scores and item nodes (self rows apart)
    shared = grad_score.clone()
    shared[sr] = 0
    grad_q = shared * rows.dot(t, att.shift)  # d loss / d (a_dst . z_item)
    grad_t = rows.sum(shared, y_item)
    grad_b_src = rows.sum(-shared * pooled_score, att.slope_pooled)
    weight = att.weight.index_select(0, rows.col)  # (R, K), rows in CSR order
    if sr.numel():
        gs = grad_score[sr]
        grad_q[sr] = gs * (self_t * own.shift).sum(1)
        rc = g.row_client[sr]
        grad_t.index_add_(0, rc, gs.unsqueeze(1) * (self_v + own.pooled))
        grad_b_src.index_add_(0, rc, (-gs * pooled_score[sr]).unsqueeze(1) * own.slope_pooled)
        weight[rows.place[sr]] = own.weight
    grad_b_dst = rows.sum(grad_q, item_emb)
    if neighbours.shape[1]:  # psi[c, u]: grad_score_r * weight_rk summed over c's rows r and slots k holding u
        pairs_cu = g.nbr_pairs
        psi = t.new_zeros(pairs_cu.col.numel())
        psi.index_add_(0, g.nbr_slot, weight.mul_(grad_score.index_select(0, rows.order).unsqueeze(1)).reshape(-1))
        grad_b_src += pairs_cu.sum(psi * pairs_cu.dot(t, others), others)

    # back through the user nodes
    grad_xbar = grad_t @ gram
    grad_user = grad_xbar + user * l2
    edge_dot = g.edges.dot(grad_xbar, item_emb)
    mean_dot = (grad_xbar * nodes.agg).sum(1).index_select(0, g.edges.client)
    grad_logit = nodes.slope * nodes.alpha * (edge_dot - mean_dot)
    # upload row (c, j): l2 V_j + g t_c + grad_q b_dst, and alpha grad_xbar_c + grad_logit b_src if it is an edge
    edge_alpha, edge_logit = grad_score.new_zeros(2, grad_score.numel())
    edge_alpha[g.edge_row], edge_logit[g.edge_row] = nodes.alpha, grad_logit
    coef = torch.stack([grad_score, edge_alpha, torch.full_like(grad_score, l2), grad_q, edge_logit], 1)
    grad_rows = g.combine(coef, torch.cat([t, grad_xbar, item_emb, b_dst.unsqueeze(0), b_src.unsqueeze(0)]))
    grad_q_user = torch.zeros_like(t[:, 0]).index_add_(0, g.edges.client, grad_logit)
    grad_user.addr_(grad_q_user, b_dst)
    grad_b_dst.addcmul_(grad_q_user.unsqueeze(1), user)
    grad_b_src += g.edges.sum(grad_logit, item_emb)

    # theta per client: t = W^T W xbar, b_src = W^T a_src, b_dst = W^T a_dst
    w = th.w
    grad_w = (torch.einsum("ci,cj->cij", grad_t @ w.T, nodes.xbar) + torch.einsum("ci,cj->cij", nodes.xbar @ w.T, grad_t)
              + torch.einsum("i,cj->cij", th.a_src, grad_b_src) + torch.einsum("i,cj->cij", th.a_dst, grad_b_dst))
    grad_theta = torch.cat([grad_w.reshape(n_clients, -1), grad_b_src @ w.T, grad_b_dst @ w.T], 1)
    return grad_user, grad_rows, grad_theta


class FedGNN:
    """FedGNN: private user embeddings, sparse item embeddings and dense GAT weights."""

    def __init__(self, data: Interactions, dim: int, init_std: float, l2: float, lr: float,
                 seed: int, device: torch.device, neighbours: int = DEFAULT_NEIGHBOURS,
                 dense_clip: float | None = DEFAULT_DENSE_CLIP, user_clip: float | None = DEFAULT_USER_CLIP):
        gen = torch.Generator(device="cpu").manual_seed(seed)
        self.user_emb = (torch.randn(data.n_users, dim, generator=gen) * init_std).to(device)
        self.item_emb = (torch.randn(data.n_items, dim, generator=gen) * init_std).to(device)
        theta = torch.randn(dense_size(dim), generator=gen) * init_std
        theta[: dim * dim] += torch.eye(dim).reshape(-1)
        self.dense = theta.to(device)
        self.dense_dim = dense_size(dim)
        negatives = sample_train_negatives(data, np.random.default_rng(seed))
        self.pairs = PairBatch.build(data, negatives, device)
        table = sample_item_neighbours(data, neighbours, np.random.default_rng([seed, 7]))
        self.neighbours = torch.as_tensor(table, device=device)
        self.dim, self.l2, self.lr, self.dense_clip, self.user_clip = dim, l2, lr, dense_clip, user_clip
        self.graphs = LocalGraphs.build(self.pairs, self.neighbours, data.n_users, data.n_users, data.n_items)

    def local_step(self, user_emb: torch.Tensor, pairs: PairBatch, graphs: LocalGraphs | None = None):
        """Gradients of the local loss of every client of `pairs` (benign or fake clients).

        user_emb: (C, d) the clients' own embeddings, indexed by pairs.pair_user; their
        global ids (pairs.row_client) decide self-exclusion from the neighbours.
        Returns (grad of user_emb per client clipped to L2 norm <= user_clip, grad of every
        upload row, grad of theta per client clipped to L2 norm <= dense_clip).
        """
        if graphs is None:
            graphs = LocalGraphs.build(pairs, self.neighbours, user_emb.shape[0], self.user_emb.shape[0],
                                      self.item_emb.shape[0])
        grad_user, grad_rows, grad_theta = gnn_step(user_emb, self.item_emb, self.user_emb, self.dense,
                                                    self.neighbours, pairs, graphs, self.l2)
        if self.dense_clip is not None:
            grad_theta = clip_rows(grad_theta, self.dense_clip)
        if self.user_clip is not None:
            grad_user = clip_rows(grad_user, self.user_clip)
        return grad_user, grad_rows, grad_theta

    def client_step(self, room: int = 0) -> tuple[SparseUpdates, SparseUpdates]:
        """Every benign client's local step: update its user embedding, return its item
        rows and its dense row (all dense rows belong to item 0). (`room`, for attacks'
        rows, is FedMF's; the dense step costs more than the copy it saves.)"""
        grad_user, grad_rows, grad_theta = self.local_step(self.user_emb, self.pairs, self.graphs)
        self.user_emb.sub_(grad_user, alpha=self.lr)
        clients = torch.arange(grad_theta.shape[0], device=grad_theta.device)
        return (SparseUpdates(self.pairs.row_client, self.pairs.row_item, grad_rows),
                SparseUpdates(clients, torch.zeros_like(clients), grad_theta))

    def server_step(self, aggregated: torch.Tensor) -> None:
        """V <- V - lr * AGR(rows) for every item (items without rows get a zero row)."""
        self.item_emb.sub_(aggregated, alpha=self.lr)

    def dense_step(self, aggregated: torch.Tensor) -> None:
        """theta <- theta - lr * AGR(dense rows)."""
        self.dense.sub_(aggregated.reshape(-1), alpha=self.lr)

    def user_queries(self) -> torch.Tensor:
        """(n_users, d) t_c = W^T h_c of every benign user under the current model."""
        th = Theta.of(self.dense, self.dim)
        g = self.graphs
        return UserNodes.of(self.user_emb, g.edges, self.item_emb, th).xbar @ th.gram

    def scores(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Score of item items[b, k] for user users[b] (the item as a node of b's graph)."""
        th = Theta.of(self.dense, self.dim)
        t = self.user_queries().index_select(0, users)
        src_user = self.user_emb @ th.b_src
        q_item = self.item_emb @ th.b_dst
        att = Attention.of(q_item, self.neighbours, self.neighbours >= 0, src_user, self.user_emb)
        y = self.item_emb + att.pooled
        out = y.new_empty(items.shape)
        # (b, k) where user b is among the sampled neighbours of item items[b, k]
        hits = [items.new_empty((0, 2))]
        step = users_per_chunk(items, y.device)
        for lo in range(0, len(users), step):
            chunk = items[lo:lo + step]
            out[lo:lo + step] = torch.bmm(rows_at(y, chunk), t[lo:lo + step].unsqueeze(2)).squeeze(2)
            is_self = rows_at(self.neighbours, chunk) == users[lo:lo + step].view(-1, 1, 1)
            hits.append(torch.nonzero(is_self.any(2)) + torch.tensor([lo, 0], device=y.device))
        b, j = torch.cat(hits).unbind(1)
        if b.numel():
            it = items[b, j]
            nbr = self.neighbours[it]
            own = Attention.of(q_item[it], nbr, (nbr >= 0) & (nbr != users[b].unsqueeze(1)), src_user, self.user_emb)
            out[b, j] = ((self.item_emb[it] + own.pooled) * t[b]).sum(1)
        return out
