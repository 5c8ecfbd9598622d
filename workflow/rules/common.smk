# Config validation, wildcard constraints and the cell lists of every target.
import os
import sys

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import validate

# The workflow and its jobs use the installed spattack package (make setup: pip install -e .).
try:
    import spattack
    from spattack.configtypes import given_text, typed_by_schema
except ImportError as err:
    raise WorkflowError(
        f"The spattack package is not importable by the Python that runs Snakemake "
        f"({sys.executable}): {err}. Install this checkout: `make setup` (a .venv with "
        f"everything, then run .venv/bin/snakemake), or `pip install -e .` in "
        f"{workflow.basedir}."
    ) from err

if os.path.realpath(os.path.dirname(spattack.__file__)) != os.path.realpath(
    os.path.join(workflow.basedir, "src", "spattack")
):
    logger.warning(
        f"spattack is imported from {os.path.dirname(spattack.__file__)}, not from this "
        f"checkout ({workflow.basedir}): the jobs run that code. `pip install -e .` here "
        f"installs this checkout's."
    )

# The schema alone types the config: Snakemake's guesses for top-level --config values
# are replaced by the text given, then strings become numbers only where the schema asks.
_SCHEMA = os.path.join(workflow.basedir, "workflow", "schemas", "config.schema.yaml")
with open(_SCHEMA) as _f:
    _schema = yaml.safe_load(_f)
config.update(given_text(workflow.config_settings.config_args))
config.update(typed_by_schema(dict(config), _schema))
validate(config, schema=_SCHEMA)

RESULTS = "results"
DATASETS = config["datasets"]
LOGS = f"{RESULTS}/logs"


wildcard_constraints:
    dataset="[a-z0-9-]+",
    model="fedmf|fedgnn",
    attack="[a-z0-9-]+",
    defense="mean|median|trimmed_mean|krum|norm",
    ratio=r"\d+(\.\d+)?",
    start=r"\d+",
    seed=r"\d+",


def caption_template(name):
    """The report caption template of a result, which its build fills in from its data."""
    return os.path.join(workflow.basedir, "workflow", "report", f"{name}.rst")


def caption(name):
    """The caption a result's build writes to results/report/<name>.rst, as report() wants
    it: absolute (report() reads a relative one from beside the rules)."""
    return os.path.abspath(f"{RESULTS}/report/{name}.rst")


def cell_dir(dataset, model, attack, defense, ratio, start, seed):
    """Output folder of one training cell."""
    return (
        f"{RESULTS}/runs/{dataset}/{model}/{attack}/{defense}/"
        f"rho{ratio}/start{start}/seed{seed}"
    )


def cells(datasets, models, attacks, defenses, ratios, starts=(0,), seeds=None):
    """metrics.csv paths of the cartesian product of the given cell coordinates.

    The clean cell (attack none) has ratio 0 and start 0 whatever was asked."""
    seeds = config["seeds"] if seeds is None else seeds
    out = []
    for d in datasets:
        for m in models:
            for a in attacks:
                for df in defenses:
                    for r in ([0] if a == "none" else ratios):
                        for s in ([0] if a == "none" else starts):
                            for seed in seeds:
                                path = cell_dir(d, m, a, df, r, s, seed) + "/metrics.csv"
                                if path not in out:
                                    out.append(path)
    return out
