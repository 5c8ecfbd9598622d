"""scripts/export_reproduction.py copies a target's outputs with their provenance."""

import subprocess
import sys

import pandas as pd


def export(repo_root, results, dest, *extra):
    return subprocess.run([sys.executable, str(repo_root / "scripts" / "export_reproduction.py"), "defenses",
                           "--command", "snakemake defenses", "--commit", "HEAD", "--results", str(results),
                           "--dest", str(dest), "--folder", "run", *extra],
                          cwd=repo_root, capture_output=True, text=True)


def test_defenses_export_takes_the_heatmaps_of_the_table_s_datasets_only(repo_root, tmp_path):
    results = tmp_path / "results"
    (results / "tables").mkdir(parents=True)
    (results / "figures").mkdir()
    pd.DataFrame({"dataset": ["ml-100k", "ml-100k"], "hr10_mean": [0.4, 0.1]}).to_csv(
        results / "tables" / "defenses.csv", index=False)
    (results / "tables" / "defenses.md").write_text("table\n")
    for dataset in ("ml-100k", "steam"):  # steam's heatmap is left over from another run
        for ext in ("pdf", "png"):
            (results / "figures" / f"defenses_{dataset}.{ext}").write_text(dataset)
    done = export(repo_root, results, tmp_path / "docs")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "docs" / "run").iterdir()) == [
        "PROVENANCE.md", "defenses.csv", "defenses.md", "defenses_ml-100k.pdf", "defenses_ml-100k.png"]
    assert "- command: `snakemake defenses`" in (tmp_path / "docs" / "run" / "PROVENANCE.md").read_text()


def test_export_names_missing_outputs(repo_root, tmp_path):
    done = export(repo_root, tmp_path / "results", tmp_path / "docs")
    assert done.returncode != 0 and "missing outputs" in done.stderr and "snakemake defenses" in done.stderr
