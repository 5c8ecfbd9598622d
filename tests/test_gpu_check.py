"""The prepared GPU check runs end to end; here on the CPU (`--device cpu`)."""

import json
import os
import subprocess
import sys

from spattack.aggregators import DEFENSES
from spattack.data import make_split, write_split


def test_gpu_check_writes_one_report_on_cpu(mirror, tmp_path, repo_root):
    write_split(make_split("ml-100k", mirror / "ml-100k"), tmp_path / "splits" / "ml-100k")
    out = tmp_path / "report.md"
    env = {**os.environ, "PYTHONPATH": str(repo_root / "src")}
    subprocess.run([sys.executable, str(repo_root / "scripts" / "gpu_check.py"), "--device", "cpu",
                    "--splits", str(tmp_path / "splits"), "--datasets", "ml-100k", "--race-datasets", "ml-100k",
                    "--epochs", "2", "--race-repeats", "1", "--out", str(out)], check=True, env=env, cwd=tmp_path)
    text = out.read_text()
    report = json.loads(text.split("```json\n")[1].split("```")[0])
    assert [r["aggregator"] for r in report["aggregators"]] == list(DEFENSES)
    assert all(r["identical"] for r in report["aggregators"])  # CPU against CPU
    assert [c["cell"] for c in report["cells"]] == ["none/mean/rho0", "spattack-l-d/krum/rho15"]
    assert all(c["status"] == "ok" and c["same_twice"]
               and set(c["seconds_per_epoch"]) >= {"client", "aggregate", "evaluate"}
               for c in report["cells"])
    assert all(0 < c["first_epoch_s"] < c["wall_s"] for c in report["cells"])
    assert report["race"][0]["dataset"] == "ml-100k" and report["race"][0]["repeated_runs"] > 1000
    assert not report["errors"]
    assert "## Repeated-index race" in text
