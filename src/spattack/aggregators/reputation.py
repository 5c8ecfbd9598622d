"""Head-evidence reputation (designed here; docs/defenses.md): judge clients where benign
rows are many, trust them where they are few.

Spattack wins on tailed items because there the attackers are the majority of an item's
rows, so no per-item statistic can tell them apart (paper, Prop. 2). But the attackers of
the paper's four variants also upload for head items, where benign clients hold most of
the votes (step 1) and their consensus is reliable. This rule scores every client there,
keeps the scores from round to round, and drops the rows of suspicious clients on every
item, head and tail alike.

Round t, with the senders of every row from `clients` (a row sent by k clients is k
uploads) and non-finite rows dropped (their senders are suspicious this round):

1. Votes: client c sent s_c uploads; cap = the `quantile` (0.9) of s_c over the clients
   that sent any; each upload of c carries the vote v_c = min(1, cap / s_c). A client
   that uploads for far more items than its peers (every -D attacker, every -S attacker
   at the benign maximum) has its influence spread thin. A row's mass is the sum of its
   senders' votes.
2. Evidence items E: the items whose total mass is at least the `quantile` of the items'
   masses (those with rows): the items with the most independent support.
3. Per row r of item j in E: alignment a_r = cos(g_r, C_j), C_j the mass-weighted mean of
   j's rows clipped as in step 8 (0 when either is zero), and size s_r = ln|g_r| - the
   mass-weighted median of ln|g| over j's rows (0 for a zero row). Clipping and the median
   bound what one row can do to its item's reference: a huge row cannot turn the centre,
   and a zero or tiny row cannot drag the typical size down so that its item's honest rows
   look large.
4. Per client c with evidence rows: A_c, S_c = the means of a_r, s_r over its uploads of
   them.
5. Robust z-scores across those clients, one value per client: z_A = (A_c - med A) /
   (1.4826 MAD(A)) and z_S likewise (med = the lower median; the MAD is floored at 1e-12
   of the largest |value|).
6. History: per client, the running means of z_A and z_S over the rounds in which it had
   evidence rows, each earlier round discounted by `memory` (0.9) per such round.
7. Suspicious: running z_A < -`threshold` (3: it pulls against the consensus of the head
   items), or running z_S > `threshold` (its rows are far larger than their items' rows),
   or a non-finite row this round. Clients that never had evidence rows are trusted.
8. Every row is clipped to L2 norm <= `budget` (3) x B, B the mass-weighted (lower)
   median of the evidence rows' norms; item j's result is the mean of its clipped rows,
   each weighted by the votes of its trusted senders (a zero row when none is left).

Cost per round: index reductions over rows and uploads, two quantiles and three sorts of
scalars (one per row or upload, never per coordinate): a few times Mean's cost, far below a
coordinate-wise median's.
"""

from __future__ import annotations

import torch

from .groups import finite_mask, stable_argsort


def client_votes(sent: torch.Tensor, quantile: float = 0.9) -> torch.Tensor:
    """Step 1: (n_clients,) float64, each client's vote per upload, min(1, cap / s_c), from
    s_c = sent (n_clients,) its uploads this round; cap = the `quantile` of s_c over the
    clients that sent any (1 where s_c = 0)."""
    cap = float(torch.quantile(sent[sent > 0].double(), quantile))
    return (cap / sent.double()).clamp(max=1)


class HeadEvidenceReputation:
    """One run's head-evidence reputation aggregator (stateful; see the module docstring).

    Called as `(items, grads, n_items, counts=None, clients=...) -> (n_items, d)`:
    items int64 (n_rows,), grads float (n_rows, d), counts int64 (n_rows,) or None,
    clients int64 (sum of counts,) the senders row by row (`SparseUpdates.clients`).
    Raises ValueError when clients does not match the rows' multiplicities.
    """

    def __init__(self, quantile: float = 0.9, threshold: float = 3.0, memory: float = 0.9, budget: float = 3.0):
        self.quantile, self.threshold, self.memory, self.budget = quantile, threshold, memory, budget
        self.z_sum: torch.Tensor | None = None  # (n_clients, 2) discounted sums of (z_A, z_S)
        self.z_weight: torch.Tensor | None = None  # (n_clients,) discounted round counts
        self.suspicious: torch.Tensor | None = None  # (n_clients,) bool, after the last round

    def __call__(self, items: torch.Tensor, grads: torch.Tensor, n_items: int,
                 counts: torch.Tensor | None = None, clients: torch.Tensor | None = None) -> torch.Tensor:
        weights = torch.ones_like(items) if counts is None else counts
        if clients is None:
            raise ValueError("head-evidence reputation needs clients=: one sender per upload (SparseUpdates.clients);"
                             " in simulate(), give it as DefenseSpec(HeadEvidenceReputation, label, "
                             "params=('clients',), stateful=True)")
        clients = torch.as_tensor(clients, dtype=torch.long, device=items.device)
        if clients.numel() != int(weights.sum()):
            raise ValueError(f"clients has {clients.numel()} entries; it needs one sender per upload, "
                             f"{int(weights.sum())} here (the sum of counts)")
        row_of = torch.arange(items.numel(), device=items.device).repeat_interleave(weights)
        self._grow(int(clients.max()) + 1 if clients.numel() else 0, grads)
        n_clients = self.z_weight.numel()
        bad = torch.zeros(n_clients, dtype=torch.bool, device=items.device)
        keep = finite_mask(grads)
        if keep is not None:
            bad[clients[~keep[row_of]]] = True
            sent = keep[row_of]
            items, grads = items[keep], grads[keep]
            clients, row_of = clients[sent], (torch.cumsum(keep.long(), 0) - 1)[row_of[sent]]
        if items.numel() == 0:
            self.suspicious = bad | self._suspicious()
            return grads.new_zeros(n_items, grads.shape[1])
        dtype = grads.dtype
        vote = client_votes(torch.bincount(clients, minlength=n_clients), self.quantile)[clients]  # per upload

        def per_row(values: torch.Tensor) -> torch.Tensor:  # summed over each row's senders
            return torch.zeros(items.numel(), dtype=torch.float64, device=items.device).index_add_(0, row_of, values)

        mass = per_row(vote)
        item_mass = torch.zeros(n_items, dtype=torch.float64, device=items.device).index_add_(0, items, mass)
        evidence = (item_mass >= float(torch.quantile(item_mass[item_mass > 0], self.quantile)))[items]
        norms = torch.linalg.vector_norm(grads, dim=1)
        ev_norms = norms[evidence]
        one_group = torch.zeros_like(ev_norms, dtype=torch.long)  # B is over all evidence rows at once
        bound = self.budget * float(item_weighted_median(one_group, ev_norms, mass[evidence], 1)[0])
        rows = grads if bound <= 0 else grads * (bound / norms.clamp_min(bound)).unsqueeze(1)
        self._score(items, rows, norms, mass, evidence, clients, row_of, n_items)
        self.suspicious = bad | self._suspicious()
        trusted = per_row(vote * (~self.suspicious[clients]).double()).to(dtype)
        out = grads.new_zeros(n_items, grads.shape[1]).index_add_(0, items, rows * trusted.unsqueeze(1))
        total = grads.new_zeros(n_items).index_add_(0, items, trusted)
        return out / total.clamp_min(torch.finfo(dtype).tiny).unsqueeze(1)

    def _grow(self, n_clients: int, grads: torch.Tensor) -> None:
        if self.z_weight is None:
            self.z_sum = torch.zeros(0, 2, dtype=torch.float64, device=grads.device)
            self.z_weight = torch.zeros(0, dtype=torch.float64, device=grads.device)
        extra = n_clients - self.z_weight.numel()
        if extra > 0:
            self.z_sum = torch.cat([self.z_sum, self.z_sum.new_zeros(extra, 2)])
            self.z_weight = torch.cat([self.z_weight, self.z_weight.new_zeros(extra)])

    def _score(self, items, clipped, norms, mass, evidence, clients, row_of, n_items) -> None:
        ev_items, ev_rows, ev_mass, ev_norms = items[evidence], clipped[evidence].double(), mass[evidence], norms[evidence]
        n = ev_items.numel()
        centre = torch.zeros(n_items, clipped.shape[1], dtype=torch.float64, device=items.device).index_add_(
            0, ev_items, ev_rows * ev_mass.unsqueeze(1))[ev_items]  # vote-weighted mean (up to a factor)
        denom = torch.linalg.vector_norm(ev_rows, dim=1) * torch.linalg.vector_norm(centre, dim=1)
        align = torch.where(denom > 0, (ev_rows * centre).sum(1) / denom.clamp_min(1e-300), 0)
        log_norm = torch.log(ev_norms.double().clamp_min(1e-300))
        typical = item_weighted_median(ev_items, log_norm, ev_mass, n_items)
        size = torch.where(ev_norms > 0, log_norm - typical[ev_items], 0)
        # per client: the means over its evidence rows
        index = torch.full((items.numel(),), -1, dtype=torch.long, device=items.device)
        index[evidence] = torch.arange(n, device=items.device)
        at = index[row_of]
        on = at >= 0
        who, which = clients[on], at[on]
        n_clients = self.z_weight.numel()
        rows = torch.bincount(who, minlength=n_clients).double()
        sums = torch.zeros(n_clients, 2, dtype=torch.float64, device=items.device).index_add_(
            0, who, torch.stack([align, size], 1)[which])
        seen = rows > 0
        if not bool(seen.any()):
            return
        means = sums[seen] / rows[seen].unsqueeze(1)
        middle = means.median(0).values
        mad = (means - middle).abs().median(0).values * 1.4826
        z = (means - middle) / mad.clamp_min(1e-12 * float(means.abs().max()) + 1e-300)
        self.z_sum *= self.memory ** seen.double().unsqueeze(1)
        self.z_weight *= self.memory ** seen.double()
        self.z_sum[seen] += z
        self.z_weight[seen] += 1

    def _suspicious(self) -> torch.Tensor:
        z = self.z_sum / self.z_weight.clamp_min(1e-300).unsqueeze(1)
        known = self.z_weight > 0
        return known & ((z[:, 0] < -self.threshold) | (z[:, 1] > self.threshold))


def item_weighted_median(items: torch.Tensor, values: torch.Tensor, weights: torch.Tensor, n_items: int) -> torch.Tensor:
    """(n_items,) float64: per item, the lower weighted median of its rows' `values` (the
    first value, in increasing order, at which the item's cumulative weight reaches half its
    total); 0 for items without rows. items int64 (n,), values float (n,), weights float64 (n,)."""
    order = torch.argsort(values, stable=True)
    order = order[stable_argsort(items[order])]
    at, cum = items[order], torch.cumsum(weights[order], 0)
    rows = torch.bincount(items, minlength=n_items)
    end = torch.cumsum(rows, 0)  # one past each item's last row
    cum0 = torch.cat([cum.new_zeros(1), cum])
    before, total = cum0[end - rows], cum0[end]
    reached = torch.nonzero(2 * (cum - before[at]) >= total[at] - before[at]).view(-1)
    first = torch.full((n_items,), values.numel(), dtype=torch.long, device=items.device).scatter_reduce_(
        0, at[reached], reached, "amin")
    out = torch.zeros(n_items, dtype=torch.float64, device=items.device)
    has = first < values.numel()
    out[has] = values[order][first[has]].double()
    return out
