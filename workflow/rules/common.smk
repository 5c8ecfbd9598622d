# Config validation, wildcard constraints and the cell lists of every target.
import os

from snakemake.utils import validate



def _numbers_in_lists(value):
    """--config seeds=[0,1,2] or experiments={table3: {ratio: 3, ...}} arrive with their
    list items and nested values as strings; read those that are numbers as numbers.
    (Top-level values arrive typed.)"""
    if isinstance(value, dict):
        return {k: _as_number(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_number(v) for v in value]
    return value


def _as_number(item):
    if isinstance(item, str):
        for kind in (int, float):
            try:
                return kind(item)
            except ValueError:
                pass
    return _numbers_in_lists(item)


config.update(_numbers_in_lists(dict(config)))
validate(config, schema="../schemas/config.schema.yaml")

# Jobs import the library from this checkout even where it is not pip-installed
# (e.g. inside a conda environment made from envs/spattack.yaml).
_SRC = os.path.abspath(os.path.join(workflow.basedir, "src"))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_SRC, os.environ.get("PYTHONPATH")) if p)

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
