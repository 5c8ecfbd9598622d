# Config validation (defaults from the schema), wildcard constraints, and the helper and
# input functions of all rules: paths, the cell lists of every target.
import copy
import os
import re
import sys

import jsonschema
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import validate

# The workflow and its jobs use the installed spattack package (make setup: pip install -e .).
try:
    import spattack
    from spattack.attacks import ATTACKS, refusal
    from spattack.configtypes import given_text, typed_by_schema
    from spattack.paperdata import paper_table
    from spattack.registry import (
        REGISTRIES,
        cell_priority,
        extension_files,
        load_extensions,
        ordered,
    )
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

# Names are valid when a registry has them: the schema's name enums come from there.
load_extensions(config["extensions"])
_named = copy.deepcopy(_schema)
for _kind, _registry in REGISTRIES.items():
    _named["definitions"][_kind]["enum"] = list(_registry)
try:
    jsonschema.validate(config, _named)
except jsonschema.ValidationError as err:
    raise WorkflowError(
        f"Config error at {'.'.join(map(str, err.absolute_path)) or 'top level'}: "
        f"{err.message}. Add your own names with an extension file (config "
        f"`extensions`, docs/extending.md)."
    ) from None

# A defense refuses some attacks (attacks.refusal): such a pair in a table or figure that
# runs every pair it is given stops here, before any job. (Fig. 3 leaves them out.)
_ex = config["experiments"]
for _where, _defenses, _attacks in [
    ("table3", [_ex["table3"]["defense"]], _ex["table3"]["attacks"]),
    ("fig4", _ex["fig4"]["defenses"], _ex["fig4"]["attacks"]),
    ("fig5", [_ex["fig5"]["defense"]], _ex["fig5"]["attacks"]),
]:
    for _reason in filter(None, (refusal(d, a) for d in _defenses for a in _attacks)):
        raise WorkflowError(f"Config error at experiments.{_where}: {_reason}")
if "none" not in _ex["defenses"]["attacks"]:
    raise WorkflowError(
        "Config error at experiments.defenses.attacks: add none (the clean run); the "
        "benchmark reports every attack relative to the clean run of the same defense."
    )

RESULTS = "results"
DATASETS = config["datasets"]
LOGS = f"{RESULTS}/logs"


def registered(kind):
    """A wildcard pattern that matches exactly the registered names of `kind`."""
    return "|".join(
        re.escape(n) for n in sorted(REGISTRIES[kind], key=len, reverse=True)
    )


wildcard_constraints:
    dataset=registered("dataset"),
    model=registered("model"),
    attack=registered("attack"),
    defense=registered("defense"),
    ratio=r"\d+(\.\d+)?",
    start=r"\d+",
    seed=r"\d+",


def extensions_of(*kinds):
    """Input function: the extension files that registered this job's names (its
    wildcards of `kinds`), so that editing one reruns the jobs built on it."""
    return lambda wc: extension_files(**{k: getattr(wc, k) for k in kinds})


def no_refused_pair(wc):
    """Input function of `train` (no files): a cell asked for by its path whose defense
    refuses its attack (attacks.refusal) stops the DAG here, before any job."""
    reason = refusal(wc.defense, wc.attack)
    if reason:
        raise WorkflowError(
            f"Cell {wc.dataset}/{wc.model}/{wc.attack}/{wc.defense}: {reason}"
        )
    return []


def cell_resource(name):
    """A training cell's resource `name` (mem_mb, runtime), from its dataset's entry."""
    return lambda wc: REGISTRIES["dataset"][wc.dataset].cell_resources[name]


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
                                path = (
                                    f"{cell_dir(d, m, a, df, r, s, seed)}/metrics.csv"
                                )
                                if path not in out:
                                    out.append(path)
    return out


def summaries(metrics_paths):
    """The summary.json beside each cell's metrics.csv."""
    return [p.replace("metrics.csv", "summary.json") for p in metrics_paths]


def abs_or_none(path):
    """Config paths are relative to the working directory; scripts get absolute ones."""
    return os.path.abspath(path) if path else None


def analysis_files(name):
    """One file of the dataset analysis (stats.json, degrees.tsv) per configured dataset."""
    return expand(f"{RESULTS}/analysis/{{dataset}}/{name}", dataset=DATASETS)


def table3_cells():
    """Every attack of Table 3 under its one defense and ratio."""
    t3 = config["experiments"]["table3"]
    return cells(DATASETS, [t3["model"]], t3["attacks"], [t3["defense"]], [t3["ratio"]])


def table3_datasets():
    """The configured datasets and those the paper's Table 3 has (shown with its values)."""
    return ordered("dataset", [*paper_table("table3").dataset, *DATASETS])


def fig3_cells():
    """Omniscient attacks at the omniscient ratios, the others at the limited ones; each
    defense against the attacks it does not refuse (TrimM and Krum skip the sparse ones).
    """
    f3 = config["experiments"]["fig3"]
    out = cells(DATASETS, [f3["model"]], ["none"], ["mean"], [0])
    for attack in f3["attacks"]:
        omniscient = ATTACKS[attack].omniscient
        ratios = f3["omniscient_ratios"] if omniscient else f3["limited_ratios"]
        defenses = [d for d in f3["defenses"] if refusal(d, attack) is None]
        out += cells(DATASETS, [f3["model"]], [attack], defenses, ratios)
    return out


def fig4_cells():
    f4 = config["experiments"]["fig4"]
    return cells(DATASETS, [f4["model"]], f4["attacks"], f4["defenses"], [f4["ratio"]])


def fig5_cells():
    """The clean run and each attack from each start epoch, on one dataset."""
    f5 = config["experiments"]["fig5"]
    return cells(
        [f5["dataset"]], [f5["model"]], ["none"], [f5["defense"]], [0]
    ) + cells(
        [f5["dataset"]],
        [f5["model"]],
        f5["attacks"],
        [f5["defense"]],
        [f5["ratio"]],
        f5["starts"],
    )


def defenses_cells():
    """Every defense against every attack it does not refuse, at one ratio, on the
    benchmark's datasets and seeds (clean runs at ratio 0)."""
    bench = config["experiments"]["defenses"]
    out = []
    for attack in bench["attacks"]:
        defenses = [d for d in bench["defenses"] if refusal(d, attack) is None]
        out += cells(
            bench["datasets"],
            [bench["model"]],
            [attack],
            defenses,
            [bench["ratio"]],
            seeds=bench["seeds"],
        )
    return out


def defenses_figures(suffix):
    """One heatmap per dataset of the defense benchmark."""
    return expand(
        f"{RESULTS}/figures/defenses_{{dataset}}.{suffix}",
        dataset=config["experiments"]["defenses"]["datasets"],
    )
