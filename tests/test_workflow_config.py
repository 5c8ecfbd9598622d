"""The workflow types its config by the schema alone (dry runs through the real Snakefile):
number-like text in a string field stays text, from --config and from a config file alike,
and text in a number field becomes that number. The schema also holds the defaults of the
optional keys."""

import copy
import re
import subprocess
import sys

import pytest
import yaml
from snakemake.utils import validate

pytestmark = pytest.mark.workflow


def dry_run(repo_root, workdir, *args, configfiles=()):
    cmd = [sys.executable, "-m", "snakemake", "-n", *args, "-s", str(repo_root / "Snakefile"),
           "--directory", str(workdir), "--cores", "2",
           "--configfile", str(repo_root / "config.yaml"), *map(str, configfiles)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("text", ["1e3", "nan", "1_000"])
def test_top_level_string_from_the_command_line_stays_text(repo_root, tmp_path, text):
    """reference_splits is a path (string): Snakemake would read these as numbers."""
    rc, out = dry_run(repo_root, tmp_path, "split_check", "--config", "mirror=/nonexistent",
                      f"reference_splits={text}", "datasets=[ml-100k]")
    assert rc == 0, out[-3000:]
    assert "rule split_check:" in out


def test_attacks_named_like_numbers_from_the_command_line(repo_root, tmp_path):
    rc, out = dry_run(repo_root, tmp_path, "fig4", "--config", "mirror=/nonexistent", "datasets=[steam]",
                      "experiments={fig4: {attacks: [none, inf, nan], ratio: 2.5}}", "seeds=[4]")
    assert rc == 0, out[-3000:]
    for attack in ("inf", "nan"):
        for defense in ("mean", "median"):
            assert f"results/runs/steam/fedgnn/{attack}/{defense}/rho2.5/start0/seed4/metrics.csv" in out


def test_config_file_values_are_typed_by_the_schema(repo_root, tmp_path):
    config = tmp_path / "mine.yaml"
    config.write_text("datasets: [steam]\n"
                      "seeds: ['1']\n"
                      "hyper: {lr: '1e-3', init_std: 1e-30, dim: '16'}\n"
                      "experiments:\n"
                      "  fig5: {attacks: [nan, inf], starts: ['20'], ratio: '10'}\n")
    rc, out = dry_run(repo_root, tmp_path / "work", "fig5", "--config", "mirror=/nonexistent",
                      configfiles=[config])
    assert rc == 0, out[-3000:]
    for attack in ("nan", "inf"):
        assert f"results/runs/steam/fedmf/{attack}/mean/rho10/start20/seed1/metrics.csv" in out


def test_text_that_is_no_number_where_one_is_needed_is_named(repo_root, tmp_path):
    rc, out = dry_run(repo_root, tmp_path, "table3", "--config", "hyper={eval_negatives: 0x10}")
    assert rc != 0 and "0x10" in out


# the optional keys and their defaults, as the workflow used them before the schema held them
DEFAULTS = {"mirror": None, "reference_splits": None, "steam_url": None, "threads": 2, "threads_by_dataset": {},
            "analysis": {"head_degree": 200, "alpha": 0.5, "ratios": [1, 3, 5, 10, 15]}}


@pytest.fixture()
def paper_config(repo_root):
    return yaml.safe_load((repo_root / "config.yaml").read_text())


def test_the_schema_fills_in_every_optional_key(repo_root, paper_config):
    config = {k: v for k, v in paper_config.items() if k not in DEFAULTS}
    validate(config, str(repo_root / "workflow" / "schemas" / "config.schema.yaml"))
    assert {k: config[k] for k in DEFAULTS} == DEFAULTS
    # config.yaml spells out the same values, except the thread count
    assert {k: paper_config[k] for k in DEFAULTS} == {**DEFAULTS, "threads": 1}


def test_a_partly_given_analysis_keeps_the_other_defaults(repo_root, paper_config):
    config = {**copy.deepcopy(paper_config), "analysis": {"alpha": 0.4}}
    validate(config, str(repo_root / "workflow" / "schemas" / "config.schema.yaml"))
    assert config["analysis"] == {**DEFAULTS["analysis"], "alpha": 0.4}


def test_a_config_without_the_optional_keys_runs_on_the_defaults(repo_root, tmp_path, paper_config):
    """No threads, threads_by_dataset, analysis, mirror ...: every cell gets 2 threads."""
    config = tmp_path / "bare.yaml"
    config.write_text(yaml.safe_dump({k: v for k, v in paper_config.items() if k not in DEFAULTS}))
    cmd = [sys.executable, "-m", "snakemake", "-n", "clean_runs", "prop2", "-s", str(repo_root / "Snakefile"),
           "--directory", str(tmp_path / "work"), "--cores", "2", "--configfile", str(config),
           "--config", "datasets=[ml-100k]"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    train = out[out.index("rule train:"):]
    assert "threads: 2" in train[:train.index("\n\n")]


@pytest.mark.parametrize("key,value,where", [
    ("experiments", "{fig3: {defenses: [mean, geomed]}}", "experiments.fig3.defenses.1"),
    ("datasets", "[ml-100k, movielens]", "datasets.1"),
    ("experiments", "{fig4: {model: fedxx}}", "experiments.fig4.model"),
])
def test_names_not_in_a_registry_are_refused_with_the_registered_ones(repo_root, tmp_path, key, value, where):
    rc, out = dry_run(repo_root, tmp_path, "--config", "mirror=/nonexistent", f"{key}={value}")
    assert rc != 0
    assert f"Config error at {where}" in out and "is not one of" in out and "extension file" in out


def test_registered_names_make_the_wildcard_constraints(repo_root, tmp_path):
    """A cell path with a name no registry has matches no rule."""
    rc, out = dry_run(repo_root, tmp_path, "results/runs/ml-100k/fedmf/none/geomed/rho0/start0/seed0/metrics.csv",
                      "--config", "mirror=/nonexistent")
    assert rc != 0 and "MissingRuleException" in out or "No rule to produce" in out


def test_a_pair_the_defense_refuses_stops_before_any_job(repo_root, tmp_path):
    rc, out = dry_run(repo_root, tmp_path, "--config", "mirror=/nonexistent",
                      "experiments={table3: {defense: krum, attacks: [none, spattack-o-s]}}")
    assert rc != 0 and "Config error at experiments.table3: krum assumes a fixed number" in out
    assert "rule train" not in out


def test_a_refused_cell_asked_for_by_its_path_stops_before_any_job(repo_root, tmp_path):
    cell = "results/runs/ml-100k/fedmf/spattack-o-s/krum/rho5/start0/seed0/metrics.csv"
    rc, out = dry_run(repo_root, tmp_path, cell, "--config", "mirror=/nonexistent")
    assert rc != 0 and "Cell ml-100k/fedmf/spattack-o-s/krum: krum assumes a fixed number" in out
    assert "rule train:" not in out  # no job planned


def test_the_schema_defaults_of_the_defense_benchmark_are_config_yamls(repo_root, paper_config):
    config = copy.deepcopy(paper_config)
    given = config["experiments"].pop("defenses")
    validate(config, str(repo_root / "workflow" / "schemas" / "config.schema.yaml"))
    assert config["experiments"]["defenses"] == given


def test_the_defense_benchmark_runs_every_pair_but_the_refused(repo_root, tmp_path):
    from spattack.attacks import refusal
    bench = "{defenses: {datasets: [ml-100k], seeds: [0, 1], defenses: [mean, krum, head_reputation], " \
            "attacks: [none, spattack-o-d, spattack-o-s, evade-o]}}"
    rc, out = dry_run(repo_root, tmp_path, "defenses", "--config", "mirror=/nonexistent", f"experiments={bench}")
    assert rc == 0, out[-3000:]
    pairs = [(d, a) for d in ["mean", "krum", "head_reputation"] for a in ["none", "spattack-o-d", "spattack-o-s",
                                                                          "evade-o"] if refusal(d, a) is None]
    assert len(pairs) == 10
    for d, a in pairs:
        for seed in (0, 1):
            assert f"results/runs/ml-100k/fedmf/{a}/{d}/rho{0 if a == 'none' else 5}/start0/seed{seed}/" in out
    assert "fedmf/spattack-o-s/krum/" not in out and "fedmf/evade-o/krum/" not in out
    assert "results/figures/defenses_ml-100k.png" in out


def test_the_defense_benchmark_needs_its_clean_runs(repo_root, tmp_path):
    rc, out = dry_run(repo_root, tmp_path, "defenses", "--config", "mirror=/nonexistent",
                      "experiments={defenses: {attacks: [spattack-o-d]}}")
    assert rc != 0 and "Config error at experiments.defenses.attacks: add none" in out


def test_the_longest_cells_start_first(repo_root, tmp_path):
    """The train rule's priority is the cell's expected time (dataset runtime x defense
    relative cost): ML-1M's Krum cells go first, ML-1M's cells before the same defense's
    on the small datasets, so that short cells fill both cores at the end of a run."""
    rc, out = dry_run(repo_root, tmp_path, "fig3", "--config", "mirror=/nonexistent",
                      "datasets=[ml-100k,ml-1m]")
    assert rc == 0, out[-3000:]
    jobs = [block for block in out.split("\n\n") if "rule train:" in block]
    priority = {}
    for b in jobs:
        key = re.search(r"dataset=([\w-]+)", b).group(1), re.search(r"defense=(\w+)", b).group(1)
        priority.setdefault(key, set()).add(int(re.search(r"priority: (\d+)", b).group(1)))
    assert all(len(p) == 1 for p in priority.values()), priority
    priority = {k: p.pop() for k, p in priority.items()}
    assert {d for _, d in priority} >= {"mean", "median", "krum"}, priority
    assert priority["ml-1m", "krum"] == max(priority.values()), priority
    assert priority["ml-1m", "krum"] > priority["ml-1m", "median"] > priority["ml-1m", "mean"], priority
    for (dataset, defense), p in priority.items():
        if dataset == "ml-100k":
            assert priority["ml-1m", defense] > p, priority
        assert p >= priority[dataset, "mean"] > 0, priority
