"""End to end: one training cell and Table 3 through the real Snakefile, on ML-100K
from the mirror, 2 epochs."""

import json
import subprocess
import sys

import pandas as pd
import pytest

pytestmark = pytest.mark.workflow


def snakemake(repo_root, workdir, *args):
    cmd = [sys.executable, "-m", "snakemake", *args, "-s", str(repo_root / "Snakefile"),
           "--directory", str(workdir), "--configfile", str(repo_root / "config.yaml"), "--cores", "2"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_one_cell_and_table3(repo_root, mirror, tmp_path):
    cfg = ["--config", f"mirror={mirror}", "datasets=[ml-100k]", "epochs=2",
           "experiments={table3: {attacks: [none, spattack-o-d]}}"]
    cell = "results/runs/ml-100k/fedmf/spattack-o-d/mean/rho3/start0/seed0"
    proc = snakemake(repo_root, tmp_path, f"{cell}/metrics.csv", "table3", *cfg)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    metrics = pd.read_csv(tmp_path / cell / "metrics.csv")
    assert list(metrics.columns) == ["epoch", "hr5", "ndcg5", "hr10", "ndcg10"]
    assert metrics.epoch.tolist() == [0, 1, 2]
    summary = json.loads((tmp_path / cell / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["n_malicious"] == 29 and summary["device"] == "cpu"
    assert summary["dataset"] == "ml-100k" and summary["final"]["epoch"] == 2
    assert (tmp_path / "results" / "logs" / "train" / "ml-100k" / "fedmf" / "spattack-o-d").is_dir()
    assert list((tmp_path / "results" / "benchmarks" / "train").rglob("*.tsv"))

    t3 = pd.read_csv(tmp_path / "results" / "tables" / "table3.csv")
    assert set(t3.dataset) == {"ml-100k", "ml-1m", "steam"}
    run = t3[t3.dataset == "ml-100k"]
    assert run.ours.notna().all() and len(run) == 8
    assert (t3[t3.dataset == "steam"].note.str.startswith("not run here")).all()

    # Snakemake's HTML report of the target, with the table captioned
    report = tmp_path / "report.html"
    proc = snakemake(repo_root, tmp_path, "table3", "--report", str(report), *cfg)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    html = report.read_text()
    assert "FedMF under every attack" in html and "table3.csv" in html
    caption = (tmp_path / "results" / "report" / "table3.rst").read_text()
    assert "FedMF under every attack, Mean aggregator, ρ = 3%:" in caption
    # the caption and the front page describe these runs (2 epochs), not config.yaml (200)
    runs = "From 2 runs (their summary.json): ML-100K; FedMF; 2 epochs; seed 0; device cpu; code 0.1.0"
    assert runs in html and "Not the paper's protocol: 2 epochs (paper: 200)" in html
    assert "200 epochs" not in html
    md = (tmp_path / "results" / "tables" / "table3.md").read_text()
    assert md.startswith(f"**Runs.** {runs}") and "**Not the paper's protocol: 2 epochs (paper: 200).**" in md

    # a second run has nothing to do
    again = snakemake(repo_root, tmp_path, f"{cell}/metrics.csv", "table3", "-n", *cfg)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_config_typo_names_the_key(repo_root, tmp_path):
    proc = snakemake(repo_root, tmp_path, "-n", "--config", "epochz=3")
    assert proc.returncode != 0
    assert "epochz" in proc.stdout + proc.stderr


def test_misspelt_attack_is_refused(repo_root, tmp_path):
    proc = snakemake(repo_root, tmp_path, "-n", "--config", "experiments={table3: {attacks: [spatack-o-d]}}")
    assert proc.returncode != 0
    assert "spatack-o-d" in proc.stdout + proc.stderr


def test_dry_run_of_the_whole_paper(repo_root, tmp_path):
    proc = snakemake(repo_root, tmp_path, "-n", "all", "fig3", "fig5", "--config", "mirror=/nonexistent")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    for rule in ("download", "split", "train", "table2_build", "fig2c_build", "prop2_build", "table3_build",
                 "fig3_build", "fig5_build"):
        assert f"rule {rule}:" in out, rule
    assert "results/runs/ml-1m/fedmf/spattack-o-d/krum/rho5/start0/seed0/metrics.csv" in out
    assert "results/runs/steam/fedmf/spattack-l-s/krum" not in out  # TrimM/Krum only for -D


def test_seeds_from_the_command_line(repo_root, tmp_path):
    proc = snakemake(repo_root, tmp_path, "-n", "clean_runs", "--config", "mirror=/nonexistent",
                     "datasets=[ml-100k]", "seeds=[0,1]")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "results/runs/ml-100k/fedmf/none/mean/rho0/start0/seed1/metrics.csv" in out


def test_nested_experiment_from_the_command_line(repo_root, tmp_path):
    """A whole experiment given on the command line: its numbers arrive as strings and must
    be read as numbers (ratio 3 -> the rho3 cells)."""
    proc = snakemake(repo_root, tmp_path, "-n", "table3", "--config", "mirror=/nonexistent", "datasets=[ml-100k]",
                     "experiments={table3: {model: fedmf, defense: mean, ratio: 3, attacks: [none, spattack-o-d]}}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "results/runs/ml-100k/fedmf/spattack-o-d/mean/rho3/start0/seed0/metrics.csv" in out
    assert "results/runs/ml-100k/fedmf/fang/" not in out


def test_defense_benchmark_end_to_end_with_report(repo_root, mirror, tmp_path):
    bench = ("experiments={defenses: {datasets: [ml-100k], seeds: [0], defenses: [mean, head_reputation], "
             "attacks: [none, spattack-o-d, evade-o]}}")
    cfg = ["--config", f"mirror={mirror}", "datasets=[ml-100k]", "epochs=2", bench]
    report = tmp_path / "report.html"
    proc = snakemake(repo_root, tmp_path, "defenses", *cfg)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    df = pd.read_csv(tmp_path / "results" / "tables" / "defenses.csv")
    assert len(df) == 6 and set(df.defense) == {"mean", "head_reputation"} and (df.seeds == 1).all()
    assert df.hr10_rel.notna().all() and (df[df.attack == "none"].hr10_rel == 1).all()
    assert (tmp_path / "results" / "figures" / "defenses_ml-100k.png").stat().st_size > 1000
    proc = snakemake(repo_root, tmp_path, "defenses", "--report", str(report), *cfg)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    html = report.read_text()
    assert "Defense benchmark" in html and "defenses_ml-100k.png" in html and "HeadRep" in html
