"""Registries: one entry per name carries everything about it; simulate() takes parts."""

import functools
import sys

import pandas as pd
import pytest
import torch

from spattack.aggregators import DEFENSES, DefenseSpec, mean, trimmed_mean
from spattack.attacks import ATTACKS, refusal
from spattack.attacks.spattack import SpattackOD
from spattack.data import DATASETS
from spattack.fedgnn import FedGNN
from spattack.models import MODELS
from spattack.registry import ORIGINS, REGISTRIES, label, load_extensions, ordered
from spattack.simulation import RunConfig, simulate
from spattack.synthetic import synthetic_interactions

FAST = dict(epochs=4, dim=8, lr=1.0, init_std=0.1, eval_negatives=30, device="cpu")


@pytest.fixture(scope="module")
def data():
    return synthetic_interactions(n_users=120, n_items=60, per_user=10)


def test_every_entry_has_a_label_and_the_paper_names():
    for registry in REGISTRIES.values():
        for name, entry in registry.items():
            assert entry.label and label(name) == entry.label, name
    assert {"mean", "median", "trimmed_mean", "krum", "norm", "multi_krum", "bulyan", "geometric_median",
            "centered_clipping", "nnm_median", "nnm_krum", "head_reputation"} == set(DEFENSES)
    assert {"fedmf", "fedgnn"} == set(MODELS) and {"ml-100k", "ml-1m", "steam"} == set(DATASETS)
    assert label("spattack-o-d") == "Spattack O-D" and label("spattack-o-d", short=True) == "O-D"
    assert label("trimmed_mean") == "TrimM" and label("ml-1m") == "ML-1M" and label("fedgnn") == "FedGNN"


def test_unregistered_names_are_kept_not_dropped():
    assert label("my-defense") == "my-defense" and label(3.0) == "3.0"
    assert ordered("defense", ["zeta", "krum", "mean", "krum", "alpha"]) == ["mean", "krum", "alpha", "zeta"]


def test_fixed_f_defenses_refuse_exactly_the_sparse_attacks():
    for d, spec in DEFENSES.items():
        for a, attack in ATTACKS.items():
            assert (refusal(d, a) is not None) == (spec.fixed_f and attack.sparse), (d, a)
    assert {a for a, s in ATTACKS.items() if s.sparse} == {"spattack-o-s", "spattack-l-s", "evade-o", "evade-l", "evade-h"}
    assert {d for d, s in DEFENSES.items() if s.fixed_f} == {"trimmed_mean", "krum", "multi_krum", "bulyan",
                                                             "nnm_median", "nnm_krum"}


def test_defense_params_come_from_the_run():
    assert DEFENSES["krum"].bind(f=7, clip=2.0) == {"f": 7}
    assert DEFENSES["norm"].bind(f=7, clip=2.0) == {"clip": 2.0}
    assert DEFENSES["median"].bind(f=7, clip=2.0) == {}
    with pytest.raises(ValueError, match="'tau'"):
        DefenseSpec(mean, "x", params=("tau",))
    with pytest.raises(ValueError, match="relative_cost must be > 0"):
        DefenseSpec(mean, "x", relative_cost=0)


def run(data, cfg, **parts):
    return simulate(data, cfg, progress=False, **parts).metrics


@pytest.mark.parametrize("model", ["fedmf", "fedgnn"])
def test_injected_parts_give_the_numbers_of_their_names(data, model):
    cfg = RunConfig(model=model, attack="spattack-o-d", defense="trimmed_mean", ratio=10, **FAST)
    named = run(data, cfg)
    factory = MODELS[model].factory
    pd.testing.assert_frame_equal(named, run(data, cfg, model=factory, attack=SpattackOD,
                                             defense=DefenseSpec(trimmed_mean, "TrimM", params=("f",))))
    if model == "fedgnn":  # a factory with other settings is what an experiment swaps in
        other = run(data, cfg, model=functools.partial(FedGNN, neighbours=2))
        assert not other.equals(named)


def test_a_bare_aggregator_and_a_built_model_object(data):
    cfg = RunConfig(**FAST)
    model = MODELS["fedmf"].factory(data, cfg.dim, cfg.init_std, cfg.l2, cfg.lr, cfg.seed, torch.device("cpu"))
    pd.testing.assert_frame_equal(run(data, cfg), run(data, cfg, model=model, defense=mean))


def test_an_injected_attack_takes_part_whatever_the_config_names(data):
    cfg = RunConfig(attack="none", ratio=10, **FAST)
    assert run(data, cfg, attack=SpattackOD).hr10.iloc[-1] != run(data, cfg).hr10.iloc[-1]


def test_extension_files_register_their_entries(tmp_path):
    ext = tmp_path / "my_defense.py"
    ext.write_text("from spattack.aggregators import DEFENSES, DefenseSpec, median\n"
                   "DEFENSES['toy-median'] = DefenseSpec(median, 'Toy median')\n"
                   "COUNT = globals().get('COUNT', 0) + 1\n")
    try:
        load_extensions([ext, ext])
        load_extensions([str(ext)])
        assert label("toy-median") == "Toy median" and ordered("defense", ["toy-median", "mean"])[0] == "mean"
        loaded = [m for name, m in sys.modules.items() if name.startswith("spattack_extension_my_defense")]
        assert len(loaded) == 1 and loaded[0].COUNT == 1
    finally:
        DEFENSES.pop("toy-median", None)
        ORIGINS.pop(("defense", "toy-median"), None)
    with pytest.raises(FileNotFoundError, match="missing.py.*extensions"):
        load_extensions([tmp_path / "missing.py"])


def test_an_attack_without_dense_rows_is_refused_on_fedgnn(data):
    class ItemsOnly:
        def __init__(self, ctx):
            self.ctx = ctx

        def uploads(self, epoch, benign, model):
            return self.ctx.dense_rows(torch.zeros(self.ctx.n_items, self.ctx.dim))

    cfg = RunConfig(model="fedgnn", attack="items-only", ratio=10, **FAST)
    with pytest.raises(ValueError, match="ItemsOnly needs a dense_uploads"):
        run(data, cfg, attack=ItemsOnly)
    run(data, RunConfig(attack="items-only", ratio=10, **FAST), attack=ItemsOnly)  # FedMF: fine


def test_an_extension_that_replaces_an_entry_is_named(tmp_path):
    ext = tmp_path / "replace_mean.py"
    ext.write_text("from spattack.aggregators import DEFENSES, DefenseSpec, median\n"
                   "DEFENSES['mean'] = DefenseSpec(median, 'Mean?')\n")
    original = DEFENSES["mean"]
    try:
        with pytest.warns(UserWarning, match="replaces the registered defense 'mean'"):
            loaded = load_extensions([ext])
        assert set(loaded) == {str(ext)} and len(loaded[str(ext)]) == 64
        from spattack.registry import extension_files
        assert extension_files(defense="mean", attack="none") == [str(ext)]
    finally:
        DEFENSES["mean"] = original
        ORIGINS.pop(("defense", "mean"))
