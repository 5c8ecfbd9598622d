"""End to end: the real Snakefile builds Table 2, Fig. 2(c), Prop. 2 and the split check
for ML-100K and Steam from the mirror, in a temporary working directory."""

import subprocess
import sys

import pandas as pd
import pytest

pytestmark = pytest.mark.workflow


def test_snakemake_data_and_analysis_targets(repo_root, mirror, reference_splits, tmp_path):
    cmd = [sys.executable, "-m", "snakemake", "table2", "fig2c", "prop2", "split_check",
           "-s", str(repo_root / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(repo_root / "config.yaml"), "--cores", "2", "--quiet", "all", "--config", f"mirror={mirror}", f"reference_splits={reference_splits}", "datasets=[ml-100k,steam]"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    res = tmp_path / "results"
    t2 = pd.read_csv(res / "tables" / "table2.csv")
    ours = t2[t2["source"] == "ours (paper mode)"].set_index("dataset")
    assert ours.loc["ml-100k", ["users", "items", "interactions"]].tolist() == [943, 1682, 99_999]
    assert ours.loc["steam", ["users", "items", "interactions", "sparsity_pct"]].tolist() == [3753, 5134, 114_713, 99.4]
    assert (t2["source"] == "ours (correct mode)").sum() == 2

    match = pd.read_csv(res / "tables" / "split_match.csv").set_index("dataset")
    assert (match[["train_bytes_identical", "test_bytes_identical"]] == "yes").all().all()

    prop2 = pd.read_csv(res / "tables" / "prop2.csv")
    assert prop2.loc[(prop2["dataset"] == "steam") & (prop2["rho_pct"] == 5), "n_mal"].item() == 197
    for f in ("fig2c.pdf", "fig2c.png", "prop2.pdf", "prop2.png"):
        assert (res / "figures" / f).stat().st_size > 5000
    for f in ("table2.md", "prop2.md", "powerlaw.md", "split_match.md"):
        assert (res / "tables" / f).read_text().startswith("## ")
    for log in ("download/steam.log", "split/ml-100k.log", "analysis/steam.log", "table2.log", "fig2c.log",
                "prop2.log", "split_check.log"):
        assert (res / "logs" / log).is_file()
    assert {p.name for p in (res / "data" / "steam").iterdir()} == {"train.tsv", "test.tsv", "users.tsv", "items.tsv"}
