"""Result files are written whole or not at all."""

import os
import subprocess
import sys

import pytest

from spattack.runio import atomic_path, atomic_write_text


def test_atomic_path_renames_a_complete_file_into_place(tmp_path):
    target = tmp_path / "new" / "table.csv"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".table.") and tmp.suffix == ".csv"
        tmp.write_text("a,b\n")
        assert not target.exists()
    assert target.read_text() == "a,b\n" and os.listdir(target.parent) == ["table.csv"]
    assert (target.stat().st_mode & 0o777) == 0o666 & ~_umask()


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path):
    target = tmp_path / "report.md"
    atomic_write_text(target, "old\n")
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old\n" and os.listdir(tmp_path) == ["report.md"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_end_job_flushes_what_was_written_and_exits_0_at_once(tmp_path):
    """stdout to a pipe, the log a script's stderr goes to and a `logging` file are all
    block-buffered: end_job must flush each before it leaves, and leave before atexit
    handlers run."""
    log, logged = tmp_path / "job.log", tmp_path / "logging.log"
    script = f"""
import atexit, logging, sys
from spattack.runio import end_job
sys.stderr = open({str(log)!r}, "w")
logging.basicConfig(filename={str(logged)!r}, level=logging.INFO)
atexit.register(lambda: print("atexit ran"))
print("result line", end="")
sys.stderr.write("log tail")
logging.getLogger("job").info("logged")
end_job()
print("after end_job")
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0
    assert done.stdout == "result line"
    assert log.read_text() == "log tail"
    assert "logged" in logged.read_text()
