"""Result files are written whole or not at all."""

import os

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
