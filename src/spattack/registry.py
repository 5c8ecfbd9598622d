"""Every name a config can use, in one place to look up: datasets, models, attacks and
defenses, each registry next to its code (`data.DATASETS`, `models.MODELS`,
`attacks.ATTACKS`, `aggregators.DEFENSES`). Their entries carry everything about a name:
the callable, its label, how its parameters come from the config and its constraints.
The workflow's schema enums, wildcard constraints, table rows and figure labels are read
from here, so a new name is one entry (docs/extending.md).

Your own entries live in extension files: Python files that add entries to the
registries when imported, named in the config's `extensions` list and loaded by the
workflow and by each of its jobs (`load_extensions`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import warnings
from pathlib import Path

from .aggregators import DEFENSES
from .attacks import ATTACKS
from .data.datasets import DATASETS
from .models import MODELS

# config/wildcard name -> registry; also the order in which `label` looks a name up
REGISTRIES = {"dataset": DATASETS, "model": MODELS, "attack": ATTACKS, "defense": DEFENSES}


def label(name, short: bool = False) -> str:
    """The label of a registered name ('FedMF', 'Spattack O-D', with `short` 'O-D'), or
    the name itself as text when no registry knows it (e.g. a result of an extension
    that is not loaded)."""
    for registry in REGISTRIES.values():
        entry = registry.get(name) if isinstance(name, str) else None
        if entry is not None:
            return (getattr(entry, "short_label", None) if short else None) or entry.label or name
    return str(name)


def cell_priority(dataset: str, defense: str) -> int:
    """A training cell's scheduling priority (Snakemake `priority:`): its dataset's
    runtime estimate (minutes, `DatasetSpec.cell_resources`) times its defense's
    `relative_cost`, so that the longest cells (ML-1M under Krum) start first and short
    ones fill the cores at the end of a run (longest processing time first)."""
    runtime = DATASETS[dataset].cell_resources["runtime"]
    return round(runtime * DEFENSES[defense].relative_cost)


def ordered(kind: str, values) -> list:
    """The distinct `values` (names of `kind`) in registry order, then any unregistered
    ones sorted: tables and figures keep every name they are given."""
    present = set(values)
    known = [n for n in REGISTRIES[kind] if n in present]
    return known + sorted(present - set(known), key=str)


# (kind, name) -> the extension file (as given) that registered or replaced that entry
ORIGINS: dict[tuple[str, str], str] = {}


def load_extensions(paths) -> dict[str, str]:
    """Import every extension file in `paths` (each once per process), so its registry
    entries exist here; returns {path as given: sha256 of its content}. Records which
    file registered which names (`ORIGINS`) and warns when a file replaces an entry that
    was there before. Raises FileNotFoundError naming a missing file and the config key."""
    loaded = {}
    for given in paths or ():
        path = Path(given).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"extension file {path} (config `extensions`) does not exist")
        loaded[str(given)] = hashlib.sha256(path.read_bytes()).hexdigest()
        module = f"spattack_extension_{path.stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"
        if module in sys.modules:
            continue
        before = {kind: dict(registry) for kind, registry in REGISTRIES.items()}
        spec = importlib.util.spec_from_file_location(module, path)
        sys.modules[module] = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(sys.modules[module])
        except BaseException:
            del sys.modules[module]
            raise
        for kind, registry in REGISTRIES.items():
            for name, entry in registry.items():
                if before[kind].get(name) is not entry:
                    ORIGINS[(kind, name)] = str(given)
                    if name in before[kind]:
                        warnings.warn(f"extension file {given} replaces the registered {kind} {name!r}", stacklevel=2)
    return loaded


def extension_files(**names) -> list[str]:
    """The extension files that registered any of the given names, e.g.
    `extension_files(dataset="my-data", defense="mean")`: what a job on them depends on."""
    return sorted({ORIGINS[(kind, name)] for kind, name in names.items() if (kind, name) in ORIGINS})
