"""What a table or figure was computed from, read from the runs' own records.

A training cell's `summary.json` records its dataset, configuration (model, attack,
defense, ratio, seed, epochs, hyper-parameters), the device it ran on and the code version
(`code_version`). `Runs` gathers these over the cells behind one table or figure and
words them (`Runs.sentence`), with every departure from the paper's protocol
(`Runs.departures`); the split summaries behind Table 2, Fig. 2(c) and Proposition 2 get
the same from `Splits`. Tables, figures and report captions print these sentences, so
what they show is described by the runs that made it, not by the configuration in force.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from . import __version__
from .aggregators import DEFENSES
from .registry import label

NOT_RECORDED = "not recorded"
# The paper's training and evaluation protocol (config.yaml's values): epochs, embedding
# dimension, learning rate, L2 weight, initial std, sampled negatives per test item.
PAPER_PROTOCOL = {"epochs": 200, "dim": 32, "lr": 0.01, "l2": 0.1, "init_std": 0.01, "eval_negatives": 99}
# Norm clipping's bound, part of the protocol of the cells whose defense clips (takes `clip`).
PAPER_NORM_PROTOCOL = {"grad_limit": 1.0}
PAPER_SPLIT_MODE = "paper"
KEY_LABELS = {"dim": "dim", "lr": "lr", "l2": "L2", "init_std": "init std", "eval_negatives": "evaluation negatives",
              "grad_limit": "Norm bound", "model": "model", "defense": "defense", "ratio": "malicious %"}


@lru_cache(maxsize=None)
def code_version() -> str:
    """This library's version and, when it runs from its git checkout, the commit:
    '0.1.0+g1a2b3c4d5e6f', with '.dirty' appended when tracked files under src/,
    workflow/ or the Snakefile differ from that commit. Just the version ('0.1.0') when
    the package is installed apart from its repository or git is not available."""
    package = Path(__file__).resolve().parent

    def git(cwd: Path, *args: str) -> str:
        return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, timeout=30,
                              check=True).stdout.strip()

    try:
        top = Path(git(package, "rev-parse", "--show-toplevel")).resolve()
        if top / "src" / "spattack" != package:
            return __version__
        commit = git(top, "rev-parse", "--short=12", "HEAD")
        changed = git(top, "status", "--porcelain", "--untracked-files=no", "--", "src", "workflow", "Snakefile")
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{commit}" + (".dirty" if changed else "")


def _text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:g}" if isinstance(value, float) else label(value)


def _listing(values: Iterable) -> str:
    return ", ".join(_text(v) for v in values)


def _epochs(values: Iterable) -> str:
    values = tuple(values)
    return f"{_listing(values)} epoch{'' if values == (1,) else 's'}"


def _distinct(values: Iterable) -> tuple:
    """Distinct values, sorted, with NOT_RECORDED (for None) last."""
    values = set(values)
    known = sorted((v for v in values if v is not None), key=lambda v: (isinstance(v, str), v))
    return tuple(known) + ((NOT_RECORDED,) if None in values else ())


@dataclass(frozen=True)
class Runs:
    """The training cells behind a table or figure, as their summary.json files record them.

    Each field holds the distinct values over the cells (NOT_RECORDED for a summary that
    lacks the field, e.g. one written before code versions were recorded). `departures`
    lists every recorded difference from the paper's protocol, worded like
    '20 epochs (paper: 200)', and every protocol value some summary lacks."""

    cells: int
    datasets: tuple[str, ...]
    models: tuple[str, ...]
    epochs: tuple
    seeds: tuple
    devices: tuple
    code_versions: tuple
    departures: tuple[str, ...]

    @classmethod
    def from_summaries(cls, summaries: Iterable[dict], protocol: dict | None = None) -> Runs:
        """Runs of the given cell summaries (dicts as in summary.json).

        The paper's protocol is `PAPER_PROTOCOL`, `PAPER_NORM_PROTOCOL` for cells under
        Norm, and `protocol`: more configuration keys of this table or figure and the
        paper's values (e.g. {'defense': 'mean', 'ratio': 3}); `ratio` is checked on the
        attacked cells only, since a clean cell has no malicious clients."""
        summaries = list(summaries)
        configs = [s.get("config", {}) for s in summaries]
        departures = []
        checks = [(key, paper, configs) for key, paper in PAPER_PROTOCOL.items()]
        clipped = [c for c in configs if "clip" in getattr(DEFENSES.get(c.get("defense")), "params", ())]
        checks += [(key, paper, clipped) for key, paper in PAPER_NORM_PROTOCOL.items()]
        attacked = [c for c in configs if c.get("attack") != "none"]
        checks += [(key, paper, attacked if key == "ratio" else configs) for key, paper in (protocol or {}).items()]
        for key, paper, cells in checks:
            values = _distinct(c.get(key) for c in cells)
            if not values or values == (paper,):
                continue
            recorded = [v for v in values if v != NOT_RECORDED]
            if recorded and recorded != [paper]:
                shown = _epochs(recorded) if key == "epochs" else f"{KEY_LABELS.get(key, key)} {_listing(recorded)}"
                departures.append(f"{shown} (paper: {_text(paper)})")
            if NOT_RECORDED in values:
                departures.append(f"{KEY_LABELS.get(key, key)} not recorded")
        return cls(
            cells=len(summaries),
            datasets=_distinct(s.get("dataset") for s in summaries),
            models=_distinct(c.get("model") for c in configs),
            epochs=_distinct(c.get("epochs") for c in configs),
            seeds=_distinct(c.get("seed") for c in configs),
            devices=_distinct(s.get("device") for s in summaries),
            code_versions=_distinct(s.get("code_version") for s in summaries),
            departures=tuple(departures),
        )

    def sentence(self) -> str:
        """One sentence: the number of runs, datasets, models, epochs, seeds, devices and
        code versions, e.g. 'From 8 runs (their summary.json): ML-100K; FedMF; 20 epochs;
        seed 0; device cpu; code 0.1.0+g1a2b3c4d5e6f.'"""
        if not self.cells:
            return "From no runs."
        epochs = self.epochs
        epochs_text = _epochs(epochs) if NOT_RECORDED not in epochs else f"epochs {_listing(epochs)}"
        seeds = f"seed{'s' if len(self.seeds) > 1 else ''} {_listing(self.seeds)}"
        return (f"From {self.cells} run{'s' if self.cells > 1 else ''} (their summary.json): "
                f"{_listing(self.datasets)}; {_listing(self.models)}; {epochs_text}; {seeds}; "
                f"device {_listing(self.devices)}; code {_listing(self.code_versions)}.")

    @property
    def follows_paper(self) -> bool:
        return not self.departures

    def protocol_note(self) -> str:
        """'Not the paper's protocol: <departures>.' or the paper's protocol, named."""
        if self.departures:
            return "Not the paper's protocol: " + "; ".join(self.departures) + "."
        return ("The paper's protocol: " + ", ".join(
            _epochs([v]) if k == "epochs" else f"{KEY_LABELS[k]} {_text(v)}"
            for k, v in PAPER_PROTOCOL.items()) + ".")

    def header(self) -> str:
        """'**Runs.** <sentence> <protocol note>', the note in bold when the runs depart
        from the paper's protocol: the head of a table or caption (Markdown and
        reStructuredText alike)."""
        note = self.protocol_note()
        return f"**Runs.** {self.sentence()} " + (f"**{note}**" if self.departures else note)


@dataclass(frozen=True)
class Splits:
    """The dataset splits behind Table 2, Fig. 2(c), Prop. 2 or the split check, as their
    analysis summaries (stats.json) record them: datasets, split mode, code version."""

    datasets: tuple[str, ...]
    modes: tuple
    code_versions: tuple

    @classmethod
    def from_summaries(cls, summaries: Iterable[dict]) -> Splits:
        summaries = list(summaries)
        return cls(datasets=_distinct(s.get("dataset") for s in summaries),
                   modes=_distinct(s.get("mode") for s in summaries),
                   code_versions=_distinct(s.get("code_version") for s in summaries))

    def header(self) -> str:
        """E.g. '**Data.** From the leave-one-out splits of ML-100K, Steam (split mode
        paper; code 0.1.0+g1a2b3c4d5e6f); no training runs.', with a bold note when the
        split mode is not the paper's."""
        text = (f"**Data.** From the leave-one-out splits of {_listing(self.datasets)} (split mode "
                f"{_listing(self.modes)}; code {_listing(self.code_versions)}); no training runs.")
        if self.modes != (PAPER_SPLIT_MODE,):
            text += (f" **Not the paper's protocol: split mode {_listing(self.modes)} "
                     f"(paper: {PAPER_SPLIT_MODE}, the authors' split).**")
        return text
