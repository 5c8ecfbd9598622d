"""The workflow types its config by the schema alone (dry runs through the real Snakefile):
number-like text in a string field stays text, from --config and from a config file alike,
and text in a number field becomes that number."""

import subprocess
import sys

import pytest

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
