"""Data-poisoning baselines (Table 3): attackers own fake profiles and really train on
them with the benign client step, poisoning only through what they train on.

Shared choices: each attacker's profile holds as many items as a median benign client
has training positives, drawn once without replacement with probability proportional to
item popularity; one uniformly sampled non-profile item per profile item serves as its
negative (drawn once, like benign negatives). Attackers keep private user embeddings,
initialised and updated like benign ones.

On a model with dense weights (FedGNN) attackers run the model's own local step
(`model.local_step`) on their profiles, with neighbour users as benign clients get, and
upload the dense row it gives like any client (clipped as benign ones are); FedAttack
still ranks its candidates by the dot product of its user and item embeddings.

The `-dense` variants (`labelflip-dense`, `fedattack-dense`) put the L2 term of the local
loss on EVERY item and upload a row for every item: the trained rows for their own
items, l2 * v_j for the others. That is what an attacker built from the authors' public
attacker-client template (which uploads every item) would send. Under Mean the extra
rows dilute each item's benign rows; they reproduce the paper's Steam numbers for these
two baselines (docs/reproduction/README.md, Table 3).
"""

from __future__ import annotations

import numpy as np
import torch

from ..fedmf import PairBatch, bpr_step
from ..updates import SparseUpdates


def fake_profiles(ctx, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(n_malicious, s) profile items and (n_malicious, s) distinct negatives, s <= half the items."""
    s = max(1, min(ctx.profile_size, ctx.n_items // 2))
    p = np.asarray(ctx.popularity, dtype=np.float64) + 1e-12
    profiles, negatives = [], []
    for _ in range(ctx.n_malicious):  # once, at set-up: a few hundred clients at most
        items = rng.choice(ctx.n_items, size=s, replace=False, p=p / p.sum())
        rest = np.setdiff1d(np.arange(ctx.n_items), items)
        profiles.append(items)
        negatives.append(rng.choice(rest, size=s, replace=False))
    return np.array(profiles), np.array(negatives)


class _FakeClients:
    every_item = False  # the -dense variants: also upload l2 * v_j for every other item

    def __init__(self, ctx):
        self.ctx = ctx
        rng = np.random.default_rng(ctx.seed)
        self.profiles, self.negatives = fake_profiles(ctx, rng)
        gen = ctx.generator(salt=1)
        self.user_emb = (torch.randn(ctx.n_malicious, ctx.dim, generator=gen) * ctx.init_std).to(ctx.device)

    def _train(self, pairs: PairBatch, model) -> SparseUpdates:
        local_step = getattr(model, "local_step", None)
        if local_step is None:  # FedMF
            grad_user, grad_rows = bpr_step(self.user_emb, model.item_emb, pairs, self.ctx.l2)
        else:  # a model with dense weights: its own client step; keep the dense row
            grad_user, grad_rows, grad_dense = local_step(self.user_emb, pairs)
            self.dense = self.ctx.dense_param_rows(grad_dense)
        self.user_emb.sub_(grad_user, alpha=self.ctx.lr)
        trained = SparseUpdates(pairs.row_client, pairs.row_item, grad_rows)
        return self._with_l2_rows_elsewhere(trained, model.item_emb) if self.every_item else trained

    def _with_l2_rows_elsewhere(self, trained: SparseUpdates, item_emb: torch.Tensor) -> SparseUpdates:
        """`trained` plus, for every (attacker, item) it has no row for, the row l2 * v_j."""
        ctx = self.ctx
        untouched = torch.ones(ctx.n_malicious, ctx.n_items, dtype=torch.bool, device=item_emb.device)
        untouched[trained.clients - ctx.n_benign, trained.items] = False
        client, item = untouched.nonzero(as_tuple=True)
        rest = SparseUpdates(client + ctx.n_benign, item, item_emb.index_select(0, item).mul_(ctx.l2))
        return SparseUpdates.concat(trained, rest)

    def dense_uploads(self, epoch, benign, model) -> SparseUpdates:
        """The dense rows of this epoch's training (`uploads` runs first)."""
        return self.dense


class LabelFlip(_FakeClients):
    """Label flipping (Tolpegin et al., ESORICS 2020, "Data poisoning attacks against
    federated learning systems"): BPR on the fake profile with labels swapped, i.e. the
    sampled negatives are ranked above the profile items."""

    def __init__(self, ctx):
        super().__init__(ctx)
        users = np.repeat(np.arange(ctx.n_malicious), self.profiles.shape[1])
        self.pairs = PairBatch.from_pairs(users, self.negatives.ravel(), self.profiles.ravel(),
                                          ctx.n_malicious, ctx.device, client_offset=ctx.n_benign)

    def uploads(self, epoch, benign, model):
        return self._train(self.pairs, model)


class FedAttack(_FakeClients):
    """FedAttack (Wu et al., RecSys 2022, "FedAttack: effective and covert poisoning attack
    on federated recommendation via hard sampling"): every epoch each attacker ranks its
    candidate items (profile + negatives) by similarity to its user embedding and trains
    BPR with the most similar half as negatives and the least similar half as positives
    (the i-th least similar paired with the i-th most similar)."""

    def __init__(self, ctx):
        super().__init__(ctx)
        cand = np.sort(np.concatenate([self.profiles, self.negatives], axis=1), axis=1)
        self.cand = torch.as_tensor(cand, device=ctx.device)  # (n_mal, 2s), distinct per row
        n_mal, width = self.cand.shape
        self.row_client = ctx.malicious_ids.repeat_interleave(width)
        self.row_item = self.cand.reshape(-1)
        self.base = (torch.arange(n_mal, device=ctx.device) * width).unsqueeze(1)

    def uploads(self, epoch, benign, model):
        n_mal, width = self.cand.shape
        half = width // 2
        scores = (self.user_emb.unsqueeze(1) * model.item_emb[self.cand]).sum(-1)
        order = scores.argsort(dim=1, descending=True, stable=True)
        neg_row = (order[:, :half] + self.base).reshape(-1)
        pos_row = (order[:, width - half:].flip(1) + self.base).reshape(-1)
        users = torch.arange(n_mal, device=self.cand.device).repeat_interleave(half)
        pairs = PairBatch(users, pos_row, neg_row, self.row_client, self.row_item)
        return self._train(pairs, model)


class LabelFlipDense(LabelFlip):
    """LabelFlip whose attackers upload a row for every item (module docstring)."""

    every_item = True


class FedAttackDense(FedAttack):
    """FedAttack whose attackers upload a row for every item (module docstring)."""

    every_item = True
