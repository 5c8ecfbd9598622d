"""docs/extending.md's examples, as written there, through the real Snakefile: a new
defense, attack and dataset are each one extension file named in the config."""

import hashlib
import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.workflow


def example(repo_root, name: str) -> str:
    """The code block of docs/extending.md that starts with the line `# <name>`."""
    text = (repo_root / "docs" / "extending.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    found = [b for b in blocks if b.startswith(f"# {name}\n")]
    assert len(found) == 1, f"docs/extending.md has no single example '# {name}'"
    return found[0]


def snakemake(repo_root, workdir, *args):
    cmd = [sys.executable, "-m", "snakemake", *args, "-s", str(repo_root / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(repo_root / "config.yaml"), str(workdir / "extra.yaml"), "--cores", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_a_new_defense_and_attack(repo_root, mirror, tmp_path):
    for name in ("my_defense.py", "my_attack.py"):
        (tmp_path / name).write_text(example(repo_root, name))
    (tmp_path / "extra.yaml").write_text(f"""
mirror: {mirror}
extensions: [my_defense.py, my_attack.py]
datasets: [ml-100k]
epochs: 2
experiments:
  table3: {{defense: clipped_median, attacks: [none, mean-flip]}}
  fig3: {{defenses: [median, clipped_median], attacks: [mean-flip, spattack-l-s], omniscient_ratios: [3],
          limited_ratios: [5]}}
""")
    planned = snakemake(repo_root, tmp_path, "-n", "fig3", "table3")
    for cell in ("mean-flip/clipped_median/rho3", "spattack-l-s/clipped_median/rho5", "mean-flip/median/rho3",
                 "none/clipped_median/rho0"):
        assert f"fedmf/{cell}/start0/seed0/metrics.csv" in planned, cell
    assert "mean-flip/median/rho5" not in planned  # an omniscient attack runs at the omniscient ratios

    snakemake(repo_root, tmp_path, "table3")
    t3 = pd.read_csv(tmp_path / "results" / "tables" / "table3.csv")
    ours = t3[(t3.dataset == "ml-100k") & (t3.attack == "mean-flip")]
    assert len(ours) == 4 and ours.ours.notna().all() and ours.paper.isna().all()
    md = (tmp_path / "results" / "tables" / "table3.md").read_text()
    assert "| Mean flip |" in md
    assert "ClipMed" in (tmp_path / "results" / "report" / "table3.rst").read_text()
    summary = json.loads((tmp_path / "results/runs/ml-100k/fedmf/mean-flip/clipped_median/rho3/start0/seed0"
                          / "summary.json").read_text())
    assert set(summary["extensions"]) == {"my_defense.py", "my_attack.py"}

    # editing an extension file reruns the cells built on its names, and only those
    with open(tmp_path / "my_attack.py", "a") as f:
        f.write("# edited\n")
    planned = snakemake(repo_root, tmp_path, "-n", "table3")
    assert "reason: Updated input files: my_attack.py" in planned and planned.count("rule train:") == 1
    assert "attack=mean-flip, defense=clipped_median" in planned


def test_a_new_dataset(repo_root, tmp_path):
    rng = np.random.default_rng(0)
    rows = [(u, f"game {j}", t) for u in range(40) for t, j in enumerate(rng.choice(50, 12, replace=False))]
    raw = tmp_path / "raw" / "my-data"
    raw.mkdir(parents=True)
    pd.DataFrame(rows, columns=["user", "item", "timestamp"]).to_csv(raw / "ratings.csv", index=False)
    sha = hashlib.sha256((raw / "ratings.csv").read_bytes()).hexdigest()
    code = example(repo_root, "my_dataset.py")
    assert "SHA256 OF YOUR ratings.csv" in code
    (tmp_path / "my_dataset.py").write_text(code.replace("SHA256 OF YOUR ratings.csv", sha))
    (tmp_path / "extra.yaml").write_text("""
mirror: raw
extensions: [my_dataset.py]
datasets: [my-data]
epochs: 2
hyper: {dim: 8, lr: 0.01, l2: 0.1, init_std: 0.01, grad_limit: 1.0, eval_negatives: 20, eval_every: 1}
experiments:
  table3: {attacks: [none, spattack-o-d]}
""")
    planned = snakemake(repo_root, tmp_path, "-n", "fig3", "table3")
    assert "results/runs/my-data/fedmf/spattack-o-d/mean/rho3/start0/seed0/metrics.csv" in planned

    snakemake(repo_root, tmp_path, "table3")
    split = pd.read_csv(tmp_path / "results" / "data" / "my-data" / "test.tsv", sep="\t")
    assert len(split) == 40
    t3 = pd.read_csv(tmp_path / "results" / "tables" / "table3.csv")
    ours = t3[t3.dataset == "my-data"]
    assert len(ours) == 8 and ours.ours.notna().all()
    assert "**MyData**" in (tmp_path / "results" / "tables" / "table3.md").read_text()

    # a wrong file is refused by its checksum
    (raw / "ratings.csv").write_text("user,item,timestamp\n1,a,1\n")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo_root / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(repo_root / "config.yaml"), str(tmp_path / "extra.yaml"), "--cores", "1",
           "--forcerun", "download", "results/data/my-data/train.tsv"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "sha256" in (proc.stdout + proc.stderr).lower()
