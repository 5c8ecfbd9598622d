"""scripts/compare_reproduction.py: a rerun's final metrics against the committed tables."""

import subprocess
import sys

import pandas as pd


def test_counts_only_cells_the_rerun_has_and_lists_those_that_moved(repo_root, tmp_path):
    committed = pd.DataFrame({"dataset": ["ml-100k", "ml-100k", "ml-1m"], "attack": ["none", "lie", "none"],
                              "metric": ["hr10"] * 3, "ours": [0.4012, 0.3900, 0.4745]})
    rerun = committed.assign(ours=[0.4012, 0.3990, float("nan")])  # lie moved by 0.009; ml-1m not rerun
    (tmp_path / "docs" / "reproduction" / "table3").mkdir(parents=True)
    (tmp_path / "results" / "tables").mkdir(parents=True)
    committed.to_csv(tmp_path / "docs" / "reproduction" / "table3" / "table3.csv", index=False)
    rerun.to_csv(tmp_path / "results" / "tables" / "table3.csv", index=False)

    out = subprocess.run([sys.executable, str(repo_root / "scripts" / "compare_reproduction.py"),
                          "--out", "RERUN.md"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    table3 = out.split("## Table 3")[1].split("##")[0]
    assert "2 final metrics of 2 cells compared at 4 decimals: 1 identical, largest difference 0.009000, " \
           "1 beyond 0.005." in table3
    assert "| ml-100k/lie | hr10 | 0.390000 | 0.399000 | 0.009000 |" in table3
    assert "## Fig. 3, ML-1M\n\nNo cell of the rerun matches a committed one." in out
    assert (tmp_path / "RERUN.md").read_text().startswith("# Rerun against the committed numbers")
