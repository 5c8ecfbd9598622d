"""The training loop: determinism, learning, divergence, malicious counts."""

import pandas as pd
import pytest
import torch

from spattack.evaluation import METRICS, random_ranking_metrics
from spattack.malicious import n_malicious
from spattack.simulation import RunConfig, simulate
from spattack.synthetic import synthetic_interactions
from spattack.updates import SparseUpdates

FAST = dict(epochs=15, dim=8, lr=1.0, init_std=0.1, eval_negatives=30, device="cpu")


@pytest.fixture(scope="module")
def data():
    return synthetic_interactions(n_users=200, n_items=80, per_user=12)


@pytest.mark.parametrize("ratio,paper_rho_prime", [(1, 0.010101), (3, 0.030927), (5, 0.052631),
                                                   (10, 0.111111), (15, 0.176470)])
def test_malicious_count_follows_the_authors_ratio(ratio, paper_rho_prime):
    for n_benign in (943, 3753, 6040):
        assert n_malicious(n_benign, ratio) == int(n_benign * paper_rho_prime)
    assert n_malicious(943, 0) == 0


def test_same_seed_same_numbers(data):
    a = simulate(data, RunConfig(seed=3, **FAST), progress=False).metrics
    b = simulate(data, RunConfig(seed=3, **FAST), progress=False).metrics
    c = simulate(data, RunConfig(seed=4, **FAST), progress=False).metrics
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_training_beats_random_ranking(data):
    result = simulate(data, RunConfig(**{**FAST, "epochs": 60}), progress=False)
    m = result.metrics
    assert list(m.columns) == ["epoch", "hr5", "ndcg5", "hr10", "ndcg10"]
    assert m.epoch.tolist() == list(range(61))
    assert m.hr10.iloc[-5:].mean() > m.hr10.iloc[0] + 0.2
    assert result.summary["status"] == "ok" and result.summary["final"]["epoch"] == 60
    # the first epoch's seconds by stage are part of the per-epoch means
    first, mean = result.summary["seconds_first_epoch"], result.summary["seconds_per_epoch"]
    assert set(first) == set(mean) and all(0 <= first[k] <= 60 * mean[k] + 1e-12 for k in mean)
    assert sum(first.values()) > 0


def test_an_all_zero_model_evaluates_at_chance_not_perfect(data):
    """init_std 1e-30: every score underflows to 0 at epoch 0, so every item ties."""
    m = simulate(data, RunConfig(**{**FAST, "epochs": 1, "init_std": 1e-30}), progress=False).metrics
    assert m.iloc[0][list(METRICS)].to_dict() == pytest.approx(random_ranking_metrics(FAST["eval_negatives"]))


def test_eval_every_keeps_init_and_last_epoch(data):
    m = simulate(data, RunConfig(**{**FAST, "epochs": 7, "eval_every": 3}), progress=False).metrics
    assert m.epoch.tolist() == [0, 3, 6, 7]


class NanAttack:
    """Every malicious client uploads NaN for every item."""

    def __init__(self, ctx):
        self.ctx = ctx

    def uploads(self, epoch, benign, model):
        n = self.ctx.n_items
        clients = self.ctx.malicious_ids.repeat_interleave(n)
        items = torch.arange(n).repeat(self.ctx.n_malicious)
        return SparseUpdates(clients, items, torch.full((len(items), self.ctx.dim), float("nan")))


def test_non_finite_model_stops_as_diverged(data):
    result = simulate(data, RunConfig(attack="nan-test", ratio=10, start=2, **FAST), progress=False, attack=NanAttack)
    assert result.summary["status"] == "diverged"
    assert result.summary["diverged_epoch"] == 3
    assert result.metrics.epoch.tolist() == [0, 1, 2]
    assert result.metrics.notna().all().all()


@pytest.mark.parametrize("defense", ["median", "trimmed_mean", "krum", "norm"])
def test_robust_defenses_survive_non_finite_uploads(data, defense):
    result = simulate(data, RunConfig(attack="nan-test", defense=defense, ratio=10, **FAST), progress=False,
                      attack=NanAttack)
    assert result.summary["status"] == "ok"


def test_unknown_names_are_clear_errors(data):
    with pytest.raises(ValueError, match="unknown attack 'spatack'"):
        simulate(data, RunConfig(attack="spatack", ratio=3, **FAST), progress=False)
    with pytest.raises(ValueError, match="unknown model"):
        simulate(data, RunConfig(model="fedxx", **FAST), progress=False)


def test_attack_rows_are_appended_into_the_upload_buffer():
    """From the second attacked round on, the attack's rows go into room the model kept
    after its own rows: the concatenated batch shares the benign rows' storage."""
    from spattack.attacks import make_attack
    from spattack.fedmf import FedMF
    from spattack.simulation import attack_context
    from spattack.synthetic import synthetic_interactions
    from spattack.updates import SparseUpdates
    data = synthetic_interactions(n_users=40, n_items=30, per_user=6)
    model = FedMF(data, 4, 0.1, 0.1, 0.1, 0, torch.device("cpu"))
    cfg = RunConfig(attack="spattack-l-d", ratio=10, dim=4)
    attack = make_attack("spattack-l-d", attack_context(data, cfg, model, torch.device("cpu")))
    benign = model.client_step()[0]
    rows = attack.uploads(1, benign, model)
    copied = SparseUpdates.concat(benign, rows)
    benign = model.client_step(room=len(rows))[0]
    expected = benign.grads.clone()
    appended = SparseUpdates.concat(benign, attack.uploads(2, benign, model))
    assert appended.grads.data_ptr() == benign.grads.data_ptr()
    assert torch.equal(appended.grads[: len(benign)], expected) and torch.equal(appended.grads[len(benign):], rows.grads)
    assert torch.equal(appended.items, copied.items) and torch.equal(appended.counts, copied.counts)
    assert torch.equal(appended.clients, copied.clients)
