#!/usr/bin/env bash
# Installs this checkout's spattack package into the conda environment that Snakemake has
# just made from spattack.yaml (--software-deployment-method conda); Snakemake runs it
# once, inside that environment, in its working directory.
#
# Snakemake copies spattack.yaml and this script into its conda folder (.snakemake/conda)
# before using them, so a path relative to them (`-e ../..` under pip: in the yaml) would
# not lead back to the checkout. The working directory does: run snakemake from the
# checkout (as make and the README do), or set SPATTACK_CHECKOUT to it.
# Editable (-e), so the environment runs the checkout's code as it is now, and the cells
# record its git commit; --no-deps: spattack.yaml has the dependencies from conda.
set -euo pipefail
checkout="${SPATTACK_CHECKOUT:-.}"
if ! grep -qs '^name = "spattack"$' "$checkout/pyproject.toml"; then
    echo "spattack.post-deploy.sh: ${SPATTACK_CHECKOUT:-$PWD} is not the spattack checkout:" \
        "run snakemake from the checkout, or set SPATTACK_CHECKOUT to it." >&2
    exit 1
fi
python -m pip install --no-deps --no-build-isolation --editable "$checkout"
