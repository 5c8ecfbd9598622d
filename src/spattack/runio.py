"""Writing result files so that an interrupted run leaves nothing that looks complete,
and reading and writing a cell's outputs.

Every result file of the package, its workflow scripts and its tools is written through
`atomic_path` (or `atomic_write_text`): under a temporary name beside it, renamed to
its real name only once it is complete.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pandas as pd

if TYPE_CHECKING:  # simulation imports torch; writing a file must not
    from .simulation import RunResult


def _new_temporary(path: Path) -> Path:
    """Create an empty file beside `path` under a fresh name, `.<stem>.<random>.part<suffix>`
    (the suffix kept, so a writer that picks the format from it, such as `savefig` or
    `to_csv`'s compression, sees the real one), with the permissions a new file gets under
    the umask. FileExistsError if no fresh name is found."""
    for _ in range(tempfile.TMP_MAX):
        tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.part{path.suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"no free temporary name beside {path}")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path to write `path`'s content to, renamed over `path` when the block ends.

    The temporary file lies in `path`'s folder (created if missing), so the rename
    (`os.replace`) is atomic: `path` is either its old self or complete, never half
    written. It exists, empty, when the block starts; the block writes it in place
    (`df.to_csv(tmp)`, `fig.savefig(tmp)`, `open(tmp, "wb")`). When the block raises,
    the temporary file is removed, `path` is left as it was and the exception propagates.
    Raises OSError when the folder or the temporary file cannot be created or the rename
    fails (the temporary file is removed then too)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temporary(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` to `path` through `atomic_path` (created with its folder, or replaced
    whole); OSError as `atomic_path` raises it."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_result(result: RunResult, metrics_path: str | Path, summary_path: str | Path) -> None:
    """The summary first, the metrics last: metrics.csv exists only for a finished run."""
    atomic_write_text(summary_path, json.dumps(result.summary, indent=2) + "\n")
    atomic_write_text(metrics_path, result.metrics.to_csv(index=False, float_format="%.6f"))


def read_summary(path: str | Path) -> dict:
    """The summary.json of a cell."""
    return json.loads(Path(path).read_text())


def read_metrics(path: str | Path) -> pd.DataFrame:
    """The metrics.csv of a cell."""
    return pd.read_csv(path)


def start_job(sm) -> dict[str, str]:
    """Set up a workflow script's job (`sm`: the `snakemake` object Snakemake injects):
    its stderr and `logging` (INFO) go to its log, line by line, and the config's
    extension files are loaded so their registry entries exist in this process. Returns
    {extension file: sha256} (`registry.load_extensions`)."""
    import logging
    import sys

    from .registry import load_extensions  # the registries import torch; writing files must not

    sys.stderr = open(sm.log[0], "w", buffering=1)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return load_extensions(sm.config["extensions"])


def end_job() -> NoReturn:
    """End a workflow script's job now that its outputs are written and closed: flush
    stdout, its log and `logging`, then exit with status 0 without Python's shutdown. That
    shutdown tears down torch's ~1,100 modules and runs their finalizers, about 0.5-1 s a
    training job (measured on the 2-core machine), a sixth to a third of what a short
    cell spends outside its epochs. Only for the end of a script: nothing after it runs,
    atexit handlers included."""
    import logging
    import sys

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
