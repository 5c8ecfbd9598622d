"""Copy a workflow target's outputs into docs/reproduction/<target>/ (or --dest/--folder)
with their provenance.

    python scripts/export_reproduction.py table3 --command "snakemake --cores 2 table3 --config ..."

Writes the files as the workflow produced them (never edited), plus PROVENANCE.md with
the git commit the run came from, the command line and the config files in force.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from spattack.runio import atomic_path, atomic_write_text

OUTPUTS = {
    "table2": ["tables/table2.csv", "tables/table2.md"],
    "fig2c": ["figures/fig2c.pdf", "figures/fig2c.png", "tables/powerlaw.csv", "tables/powerlaw.md"],
    "prop2": ["tables/prop2.csv", "tables/prop2.md", "figures/prop2.pdf", "figures/prop2.png"],
    "split_check": ["tables/split_match.csv", "tables/split_match.md"],
    "table3": ["tables/table3.csv", "tables/table3.md", "tables/table3.tex"],
    "fig3": ["tables/fig3.csv", "figures/fig3_hr10.pdf", "figures/fig3_hr10.png", "figures/fig3_ndcg10.pdf",
             "figures/fig3_ndcg10.png"],
    "fig4": ["tables/fig4.csv", "figures/fig4.pdf", "figures/fig4.png"],
    "fig5": ["tables/fig5.csv", "figures/fig5.pdf", "figures/fig5.png"],
    "defenses": ["tables/defenses.csv", "tables/defenses.md", "figures/defenses_{dataset}.pdf",
                 "figures/defenses_{dataset}.png"],
}


def output_files(results: Path, target: str) -> list[Path]:
    """The target's outputs under `results`; a `{dataset}` file for each dataset of the
    target's table (a heatmap left over from a run on other datasets is not this run's)."""
    files = []
    for rel in OUTPUTS[target]:
        if "{dataset}" in rel:
            table = results / OUTPUTS[target][0]
            datasets = sorted(set(pd.read_csv(table)["dataset"])) if table.exists() else []
            files += [results / rel.format(dataset=d) for d in datasets]
        else:
            files.append(results / rel)
    return files


def git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("targets", nargs="+", choices=sorted(OUTPUTS))
    p.add_argument("--command", required=True, help="the snakemake command line that produced the outputs")
    p.add_argument("--commit", help="commit the run came from (default: HEAD)")
    p.add_argument("--note", default="", help="anything else a reader must know about the run")
    p.add_argument("--results", default="results")
    p.add_argument("--dest", default="docs/reproduction")
    p.add_argument("--folder", help="name of the folder under --dest (default: the target's; one target only)")
    args = p.parse_args()
    if args.folder and len(args.targets) > 1:
        p.error("--folder names the folder of one target")
    commit = args.commit or git("rev-parse", "HEAD")
    for target in args.targets:
        dest = Path(args.dest) / (args.folder or target)
        dest.mkdir(parents=True, exist_ok=True)
        files = output_files(Path(args.results), target)
        missing = [str(f) for f in files if not f.exists()]
        if missing:
            p.error(f"{target}: missing outputs {missing}; build the target first (snakemake {target})")
        for path in files:
            with atomic_path(dest / path.name) as tmp:
                shutil.copy2(path, tmp)
        config = git("show", f"{commit}:config.yaml") + "\n"
        atomic_write_text(
            dest / "PROVENANCE.md",
            f"# Provenance of `{target}`\n\n"
            f"- commit: `{commit}`\n"
            f"- exported: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC\n"
            f"- command: `{args.command}`\n"
            + (f"- note: {args.note}\n" if args.note else "") + "\n"
            "The files beside this one are the workflow's outputs, copied unchanged.\n"
            "`config.yaml` at that commit, with the command's `--config` overrides on top:\n\n"
            f"```yaml\n{config}```\n")
        print(f"{target}: {len(files)} files -> {dest}")


if __name__ == "__main__":
    main()
