"""Fig. 4 (FedGNN under Spattack): tidy data and plot from fake summaries, and the target
through the real Snakefile."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from spattack.reporting.figures import fig4_data, plot_fig4, save_figure

ATTACKS = ["none", "spattack-l-s", "spattack-l-d", "spattack-o-s", "spattack-o-d"]


def test_fig4_tidy_table_and_plot(tmp_path, fake_cells):
    paths = []
    for ds in ("ml-100k", "steam"):
        for defense in ("mean", "median"):
            for i, attack in enumerate(ATTACKS):
                ratio = 0 if attack == "none" else 10
                for seed in (0, 1):
                    paths.append(fake_cells.write(tmp_path, ds, attack, defense, ratio, model="fedgnn",
                                                  hr10=0.5 - 0.1 * i + 0.02 * seed, seed=seed,
                                                  status="diverged" if (attack == "spattack-l-d" and seed) else "ok"))
    df = fig4_data(list(reversed(paths)))
    assert len(df) == 2 * 2 * 5 * 2
    assert {"dataset", "model", "defense", "setting", "attack", "ratio", "metric", "ours", "drop_pct",
            "status"} <= set(df.columns)
    assert set(df.metric) == {"hr10", "ndcg10"} and set(df.model) == {"fedgnn"}
    first = df[(df.dataset == "ml-100k")].head(5)  # HR@10 under Mean, attacks in the paper's order
    assert first.attack.tolist() == ATTACKS and (first.setting == "No Defense (Mean)").all()
    row = df[(df.dataset == "steam") & (df.defense == "median") & (df.attack == "spattack-o-d") & (df.metric == "hr10")]
    assert row.ours.iloc[0] == pytest.approx(0.11) and row.seeds.iloc[0] == 2
    assert row.drop_pct.iloc[0] == pytest.approx(100 * (0.11 - 0.51) / 0.51)
    clean = df[df.attack == "none"]
    assert (clean.drop_pct.abs() < 1e-9).all()
    assert (df[df.attack == "spattack-l-d"].status == "diverged").all()
    save_figure(plot_fig4(df), tmp_path / "fig4.png", tmp_path / "fig4.pdf")
    assert (tmp_path / "fig4.png").stat().st_size > 10_000 and (tmp_path / "fig4.pdf").stat().st_size > 5_000


def snakemake(repo_root, workdir, *args):
    cmd = [sys.executable, "-m", "snakemake", *args, "-s", str(repo_root / "Snakefile"),
           "--directory", str(workdir), "--configfile", str(repo_root / "config.yaml"), "--cores", "2"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


@pytest.mark.workflow
def test_fig4_target_dry_run(repo_root, tmp_path):
    proc = snakemake(repo_root, tmp_path, "-n", "fig4", "--config", "mirror=/nonexistent")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "rule fig4_build:" in out
    for ds in ("ml-100k", "ml-1m", "steam"):
        assert f"results/runs/{ds}/fedgnn/spattack-l-s/median/rho10/start0/seed0/metrics.csv" in out
        assert f"results/runs/{ds}/fedgnn/none/median/rho0/start0/seed0/metrics.csv" in out


@pytest.mark.workflow
def test_fig4_target_end_to_end(repo_root, mirror, tmp_path):
    cfg = ["--config", f"mirror={mirror}", "datasets=[ml-100k]", "epochs=1",
           "experiments={fig4: {attacks: [none, spattack-o-d]}}"]
    proc = snakemake(repo_root, tmp_path, "fig4", *cfg)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    df = pd.read_csv(tmp_path / "results" / "tables" / "fig4.csv")
    assert len(df) == 2 * 2 * 2 and set(df.model) == {"fedgnn"} and (df.status == "ok").all()
    assert (tmp_path / "results" / "figures" / "fig4.pdf").stat().st_size > 5_000
    summary = json.loads((tmp_path / "results/runs/ml-100k/fedgnn/spattack-o-d/median/rho10/start0/seed0/"
                                     "summary.json").read_text())
    assert summary["config"]["model"] == "fedgnn" and summary["n_malicious"] == 104
