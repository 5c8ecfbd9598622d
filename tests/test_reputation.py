"""Head-evidence reputation (HeadRep) against a plain reference of its rule, and the
adaptive attacks written against it."""

import numpy as np
import pytest
import torch

from spattack.aggregators import DEFENSES, HeadEvidenceReputation, aggregate, aggregate_uploads
from spattack.attacks import AttackContext, make_attack
from spattack.fedmf import FedMF
from spattack.synthetic import synthetic_interactions
from spattack.updates import SparseUpdates


# ---- a plain reference of docs/defenses.md, one client and one item at a time ----

def lower_median(x):
    return np.sort(x)[(len(x) - 1) // 2]


def weighted_lower_median(values, weights):
    """The first value, in increasing order, at which the cumulative weight reaches half."""
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    return values[order][np.searchsorted(cum, cum[-1] / 2)]


class Reference:
    def __init__(self, quantile=0.9, threshold=3.0, memory=0.9, budget=3.0):
        self.q, self.t, self.memory, self.budget = quantile, threshold, memory, budget
        self.z_sum, self.z_weight = {}, {}

    def __call__(self, items, grads, n_items, counts, clients):
        items, grads, counts, clients = map(np.asarray, (items, grads, counts, clients))
        grads = grads.astype(np.float64)
        uploads = [(r, int(c)) for r in range(len(items)) for c in clients[counts[:r].sum():counts[:r + 1].sum()]]
        finite = np.isfinite(grads).all(1)
        bad = {c for r, c in uploads if not finite[r]}
        uploads = [(r, c) for r, c in uploads if finite[r]]
        sent = {}
        for _, c in uploads:
            sent[c] = sent.get(c, 0) + 1
        cap = np.quantile(list(sent.values()), self.q)
        vote = {c: min(1.0, cap / n) for c, n in sent.items()}
        mass = np.zeros(len(items))
        for r, c in uploads:
            mass[r] += vote[c]
        item_mass = np.array([mass[items == j].sum() for j in range(n_items)])
        evidence = set(np.flatnonzero(item_mass >= np.quantile(item_mass[item_mass > 0], self.q)))
        norms = np.linalg.norm(grads, axis=1)
        ev_rows = [r for r in range(len(items)) if items[r] in evidence and finite[r]]
        bound = self.budget * weighted_lower_median(norms[ev_rows], mass[ev_rows])
        clipped = grads * np.minimum(1, bound / np.maximum(norms, 1e-300))[:, None] if bound > 0 else grads
        align, size = {}, {}
        for j in evidence:
            rows = np.flatnonzero((items == j) & finite)
            centre = (clipped[rows] * mass[rows, None]).sum(0)
            typical = weighted_lower_median(np.log(np.maximum(norms[rows], 1e-300)), mass[rows])
            for r in rows:
                d = norms[r] * np.linalg.norm(centre)
                align[r] = grads[r] @ centre / d if d > 0 else 0.0
                size[r] = np.log(norms[r]) - typical if norms[r] > 0 else 0.0
        per_client = {}
        for r, c in uploads:
            if r in align:
                per_client.setdefault(c, []).append((align[r], size[r]))
        if per_client:
            means = {c: np.mean(v, axis=0) for c, v in per_client.items()}
            m = np.array(list(means.values()))
            mid = np.array([lower_median(m[:, k]) for k in range(2)])
            mad = np.array([lower_median(np.abs(m[:, k] - mid[k])) for k in range(2)]) * 1.4826
            for c in set(self.z_weight) | set(means):
                self.z_sum[c] = self.z_sum.get(c, np.zeros(2)) * (self.memory if c in means else 1)
                self.z_weight[c] = self.z_weight.get(c, 0.0) * (self.memory if c in means else 1)
                if c in means:
                    self.z_sum[c] = self.z_sum[c] + (means[c] - mid) / mad
                    self.z_weight[c] += 1
        self.suspicious = set(bad) | {c for c, w in self.z_weight.items() if w > 0 and (
            self.z_sum[c][0] / w < -self.t or self.z_sum[c][1] / w > self.t)}
        trusted = np.zeros(len(items))
        for r, c in uploads:
            trusted[r] += vote[c] * (c not in self.suspicious)
        out = np.zeros((n_items, grads.shape[1]))
        for j in range(n_items):
            rows = np.flatnonzero((items == j) & finite)
            if trusted[rows].sum() > 0:
                out[j] = (clipped[rows] * trusted[rows, None]).sum(0) / trusted[rows].sum()
        return out


def random_round(seed, n_clients=40, n_items=30, d=4, n_bad=4, heavy=True, noise=0.8):
    """Clients upload random item sets (a few very busy ones); the last n_bad upload a
    shared row per item, once with their count, pointing against the others."""
    rng = np.random.default_rng(seed)
    items, grads, clients, counts = [], [], [], []
    direction = rng.normal(size=(n_items, d))
    for c in range(n_clients - n_bad):
        chosen = rng.choice(n_items, size=rng.integers(2, 12 if c % 9 else n_items), replace=False)
        for j in chosen:
            items.append(j)
            grads.append(direction[j] + rng.normal(scale=noise, size=d))
            clients.append([c])
            counts.append(1)
    bad = list(range(n_clients - n_bad, n_clients))
    for j in range(n_items):
        row = -3 * direction[j]
        if heavy:
            items.append(j), grads.append(row), clients.append(bad), counts.append(n_bad)
        else:
            for c in bad:
                items.append(j), grads.append(row), clients.append([c]), counts.append(1)
    return (torch.as_tensor(items), torch.as_tensor(np.array(grads)), torch.as_tensor(counts),
            torch.as_tensor([c for cs in clients for c in cs]))


@pytest.mark.parametrize("seed", range(4))
def test_matches_the_reference_over_rounds(seed):
    ours, ref = HeadEvidenceReputation(), Reference()
    for t in range(3):
        items, grads, counts, clients = random_round(seed * 10 + t)
        if t == 2:
            grads[5, 1] = float("nan")
        out = ours(items, grads, 30, counts, clients)
        np.testing.assert_allclose(out.numpy(), ref(items, grads, 30, counts, clients), rtol=1e-9, atol=1e-12)
        assert set(torch.nonzero(ours.suspicious).view(-1).tolist()) == ref.suspicious
        assert torch.isfinite(out).all()


def test_heavy_rows_give_the_expanded_result():
    items, grads, counts, clients = random_round(3, heavy=True)
    e_items, e_grads, e_counts, e_clients = random_round(3, heavy=False)
    torch.testing.assert_close(HeadEvidenceReputation()(items, grads, 30, counts, clients),
                               HeadEvidenceReputation()(e_items, e_grads, 30, e_counts, e_clients))


def test_flags_the_clients_that_pull_against_head_items_and_not_the_others():
    rep = HeadEvidenceReputation()
    for t in range(3):
        items, grads, counts, clients = random_round(t, noise=0.3)
        out = rep(items, grads, 30, counts, clients)
    assert set(torch.nonzero(rep.suspicious).view(-1).tolist()) == {36, 37, 38, 39}
    # the attackers' rows no longer count: every item moves along its honest direction
    out, mean = out.numpy(), aggregate("mean", items, grads, 30, counts=counts).numpy()
    honest = [j for j in range(30) if (items == j).sum() > 1]
    direction = np.random.default_rng(2).normal(size=(30, 4))
    assert np.mean([np.dot(out[j], direction[j]) > 0 for j in honest]) > 0.9
    assert np.mean([np.dot(mean[j], direction[j]) > 0 for j in honest]) < 0.5


def test_senders_are_required():
    items, grads, counts, _ = random_round(0)
    with pytest.raises(ValueError, match="clients"):
        aggregate("head_reputation", items, grads, 30, counts=counts)
    with pytest.raises(ValueError, match="clients has 3 entries; it needs one sender per upload"):
        HeadEvidenceReputation()(items, grads, 30, counts, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="DefenseSpec"):  # as a bare aggregator in simulate()
        HeadEvidenceReputation()(items, grads, 30, counts)


def test_senders_may_be_a_list():
    items, grads, counts, clients = random_round(1)
    torch.testing.assert_close(HeadEvidenceReputation()(items, grads, 30, counts, clients.tolist()),
                               HeadEvidenceReputation()(items, grads, 30, counts, clients))


def test_a_stateful_defense_gets_its_own_state_per_stream():
    spec = DEFENSES["head_reputation"]
    assert spec.stateful and "clients" in spec.params
    items, grads, counts, clients = random_round(0)
    batch = SparseUpdates(clients, items, grads, counts)
    first, second = spec.for_run(f=0, clip=1.0), spec.for_run(f=0, clip=1.0)
    for _ in range(3):
        first(batch, 30)
    # a fresh stream has no history: its first round equals the registered name's one-off
    torch.testing.assert_close(second(batch, 30), aggregate_uploads("head_reputation", batch, 30))


# ---- the adaptive attacks ----

DIM = 8


def attack_setup(name, n_mal=6):
    data = synthetic_interactions(n_users=80, n_items=100, per_user=10)
    model = FedMF(data, DIM, init_std=0.1, l2=0.1, lr=0.1, seed=0, device=torch.device("cpu"))
    ctx = AttackContext(
        n_benign=data.n_users, n_malicious=n_mal, n_items=data.n_items, dim=DIM,
        popularity=data.popularity, max_items_per_client=model.pairs.max_items_per_client,
        profile_size=int(np.median(data.train_counts)), defense="head_reputation", grad_limit=1.0,
        lr=0.1, l2=0.1, init_std=0.1, seed=0, device=torch.device("cpu"))
    return data, model, make_attack(name, ctx), ctx


@pytest.mark.parametrize("name", ["evade-o", "evade-l"])
def test_evaders_look_like_median_clients_and_stay_off_the_head(name):
    data, model, attack, ctx = attack_setup(name)
    mal = attack.uploads(1, model.client_step()[0], model)
    per_attacker = torch.bincount(mal.clients)[ctx.n_benign:]
    assert torch.all(per_attacker == 2 * ctx.profile_size)
    head = torch.argsort(torch.as_tensor(data.popularity), descending=True, stable=True)[: data.n_items // 10 + 1]
    assert not torch.isin(mal.items, head).any()


def test_evade_o_cancels_headrep_on_its_targets_while_trusted():
    data, model, attack, ctx = attack_setup("evade-o")
    benign = model.client_step()[0]
    mal = attack.uploads(1, benign, model)
    both = SparseUpdates.concat(benign, mal)
    # trusted (nobody flagged), and the norm budget, which the attack does not model, off
    rep = HeadEvidenceReputation(threshold=float("inf"), budget=1e9)
    out = rep(both.items, both.grads, data.n_items, both.weights(), both.clients)
    assert out[mal.items].abs().max() < 1e-5
    assert out[mal.items].abs().max() < 1e-3 * aggregate("mean", benign.items, benign.grads,
                                                         data.n_items)[mal.items].abs().max()


def test_evade_h_reverses_its_head_items_and_keeps_a_typical_size():
    from spattack.attacks.adaptive import row_masses
    from spattack.aggregators.reputation import item_weighted_median
    data, model, attack, ctx = attack_setup("evade-h")
    benign = model.client_step()[0]
    mal = attack.uploads(1, benign, model)
    m = 2 * ctx.profile_size
    head = torch.argsort(torch.as_tensor(data.popularity), descending=True, stable=True)[:m]
    assert torch.all(torch.bincount(mal.clients)[ctx.n_benign:] == m)
    assert set(mal.items.tolist()) == set(head.tolist())
    # trusted and unclipped, an attacked item's result is -overshoot x its benign vote-weighted sum
    both = SparseUpdates.concat(benign, mal)
    out = HeadEvidenceReputation(threshold=float("inf"), budget=1e9)(
        both.items, both.grads, data.n_items, both.weights(), both.clients).double()
    mass = row_masses(benign, ctx)
    sums = torch.zeros(data.n_items, DIM, dtype=torch.float64).index_add_(
        0, benign.items, benign.grads.double() * mass.unsqueeze(1))
    total = torch.zeros(data.n_items, dtype=torch.float64).index_add_(0, benign.items, mass) + ctx.n_malicious
    attacked = head[:(m + 1) // 2]
    want = -attack.overshoot * sums[attacked] / total[attacked].unsqueeze(1)
    torch.testing.assert_close(out[attacked], want, rtol=1e-4, atol=1e-6)
    # its rows' sizes against the benign typical size (weighted median of ln|g|) average to 0
    typical = item_weighted_median(benign.items, torch.log(torch.linalg.vector_norm(benign.grads.double(), dim=1)),
                                   mass, data.n_items)
    size = torch.log(torch.linalg.vector_norm(mal.grads.double(), dim=1)) - typical[mal.items]
    assert abs(float(size.mean())) < 1e-4


@pytest.mark.parametrize("scale", [0.0, 1e-30, 1e6])
def test_one_extreme_row_does_not_get_honest_clients_dropped(scale):
    """A client sending one zero, tiny or huge row for the busiest item must not move that
    item's references (typical size, centre) so far that its honest rows look suspicious."""
    def honest_flagged(extra: bool) -> int:
        rep = HeadEvidenceReputation()
        for t in range(3):
            items, grads, counts, clients = random_round(t, noise=0.3, n_bad=0)
            if extra:
                top = torch.bincount(items).argmax().view(1)
                row = -scale * grads[items == top][:1]  # against an honest row
                items, clients = torch.cat([items, top]), torch.cat([clients, torch.tensor([40])])
                grads, counts = torch.cat([grads, row]), torch.cat([counts, torch.ones(1, dtype=torch.long)])
            rep(items, grads, 30, counts, clients)
        return int(rep.suspicious[:40].sum())
    assert honest_flagged(True) <= honest_flagged(False) + 1
