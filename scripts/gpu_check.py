"""One report from a CUDA machine, in a few minutes: every aggregator on the device against
the CPU on the same uploads, one short cell per dataset with seconds per epoch by stage and
peak GPU memory, and the repeated-index race of the ML-1M -O gap, per dataset.

    PYTHONPATH=src python3 scripts/gpu_check.py --device cuda --out docs/gpu/report.md
    make gpu-check                      # the same, from a checkout whose splits exist

Needs the splits under --splits (`snakemake table2` writes them; they travel as
results/data), torch, numpy, pandas and tqdm; nothing is installed or downloaded. With
`--device cpu` the same report is made on the CPU (the test suite does that).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import torch

from spattack.aggregators import DEFENSES, aggregate_uploads
from spattack.interactions import Interactions
from spattack.runio import atomic_write_text
from spattack.simulation import RunConfig, attacked_round, simulate
from spattack.updates import SparseUpdates

ROOT = Path(__file__).resolve().parents[1]


def machine(device: torch.device) -> dict:
    info = {"torch": torch.__version__, "python": platform.python_version(), "device": str(device),
            "cpu_threads": torch.get_num_threads()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_memory_gb=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda)
    return info


def timed(fn, device: torch.device, repeat: int = 3):
    """The median seconds of `repeat` calls of fn after one untimed call (first-call costs
    such as the device's allocations left out), and fn's last result."""
    fn()
    seconds, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), out


def aggregators_against_cpu(uploads: SparseUpdates, n_items: int, f: int, device: torch.device) -> list[dict]:
    """Every aggregator on the device and on the CPU, same uploads."""
    moved = SparseUpdates(uploads.clients, uploads.items.to(device), uploads.grads.to(device),
                          None if uploads.counts is None else uploads.counts.to(device))
    rows = []
    for name in DEFENSES:
        params = DEFENSES[name].bind(f=f, clip=1.0)
        cpu_s, cpu = timed(lambda: aggregate_uploads(name, uploads, n_items, **params), torch.device("cpu"))
        dev_s, dev = timed(lambda: aggregate_uploads(name, moved, n_items, **params), device)
        dev = dev.cpu()
        rows.append({"aggregator": name, "cpu_s": cpu_s, "device_s": dev_s, "identical": bool(torch.equal(cpu, dev)),
                     "max_abs_diff": float((cpu - dev).abs().max()),
                     "rows_differing": int((cpu != dev).any(1).sum())})
    return rows


def short_cell(data: Interactions, cfg: RunConfig) -> dict:
    """Timings of one run; `same_twice`: a second run ends with the same metrics, bit for bit."""
    s = simulate(data, cfg, progress=False).summary
    again = simulate(data, cfg, progress=False).summary
    return {"cell": f"{cfg.attack}/{cfg.defense}/rho{cfg.ratio:g}", "epochs": cfg.epochs, "status": s["status"],
            "seconds_per_epoch": s["seconds_per_epoch"], "first_epoch_s": sum(s["seconds_first_epoch"].values()),
            "wall_s": s["wall_s"], "peak_gpu_mb": s["peak_gpu_mb"],
            "peak_rss_mb": s["peak_rss_mb"], "final_hr10": s["final"]["hr10"],
            "same_twice": again["final"] == s["final"]}


def race(data: Interactions, device: torch.device, repeats: int) -> list[dict]:
    path = ROOT / "scripts" / "experiments" / "repeated_index_race.py"
    spec = importlib.util.spec_from_file_location("repeated_index_race", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    layouts = module.client_layouts(data, 0)
    return [module.measure(layouts, data.n_items, 32, str(device)) for _ in range(repeats)]


def attempt(part: str, fn, errors: list):
    """fn(), or None with its traceback added to `errors`: a device check that fails in one
    part still reports the others."""
    try:
        return fn()
    except Exception:  # noqa: BLE001 - any failure on the device is a finding to report
        errors.append({"part": part, "traceback": traceback.format_exc()})
        print(errors[-1]["traceback"], file=sys.stderr, flush=True)
        return None


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"# GPU check ({report['finished']})", "", f"Command: `{report['command']}`", "",
             "Machine: " + ", ".join(f"{k} {v}" for k, v in m.items()), "",
             f"## Aggregators, device against CPU ({report['aggregators_round']})", "",
             "| aggregator | CPU s | device s | identical | max abs diff | items differing |",
             "|---|---:|---:|---|---:|---:|"]
    for r in report["aggregators"]:
        lines.append(f"| {r['aggregator']} | {r['cpu_s']:.4f} | {r['device_s']:.4f} | {r['identical']} "
                     f"| {r['max_abs_diff']:.2e} | {r['rows_differing']} |")
    lines += ["", "## Short cells", "",
              "Seconds per epoch by stage, over all epochs; the first epoch (one-time costs such as "
              "CUDA's start-up included) in all, apart.", "",
              "| dataset | cell | epochs | client s | attack s | aggregate s | evaluate s | first epoch s | peak GPU MB "
              "| final HR@10 | same twice |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for c in report["cells"]:
        s = c["seconds_per_epoch"]
        gpu = "-" if c["peak_gpu_mb"] is None else f"{c['peak_gpu_mb']:.0f}"
        lines.append(f"| {c['dataset']} | {c['cell']} | {c['epochs']} | {s['client']:.4f} | {s['attack']:.4f} "
                     f"| {s['aggregate']:.4f} | {s['evaluate']:.4f} | {c['first_epoch_s']:.4f} | {gpu} "
                     f"| {c['final_hr10']:.4f} | {c['same_twice']} |")
    lines += ["", "## Repeated-index race", "",
              "Share of columns of a repeated (client, item) run in which the FIRST row survives "
              "`x[items] += rows` with PyTorch's default kernels, as the authors' code runs it (the leak "
              "fraction f of scripts/experiments/leaky_omniscient_sum.py):", ""]
    for r in report["race"]:
        lines.append(f"- {r['dataset']}: {r['repeated_runs']} repeated runs, f = {r['first_wins_fraction']:.4f}")
    for e in report["errors"]:
        lines += ["", f"## Failed: {e['part']}", "", "```", e["traceback"].rstrip(), "```"]
    lines += ["", f"Total wall time: {report['wall_s']:.0f} s", "", "```json", json.dumps(report, indent=1), "```", ""]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--splits", default="results/data", help="folder with one split folder per dataset")
    p.add_argument("--datasets", default="ml-100k,steam,ml-1m")
    p.add_argument("--race-datasets", default="ml-1m,ml-100k,steam")
    p.add_argument("--device", default="cuda")
    p.add_argument("--epochs", type=int, default=5, help="epochs of each short cell")
    p.add_argument("--race-repeats", type=int, default=3)
    p.add_argument("--out", default="docs/gpu/report.md")
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("CUDA is not available here; run with --device cpu to check the script itself")
    started = time.perf_counter()
    datasets, race_datasets = args.datasets.split(","), args.race_datasets.split(",")
    data = {name: Interactions.load(Path(args.splits) / name) for name in {*datasets, *race_datasets}}
    first = data[datasets[0]]
    ratio = 15.0
    round_label = f"{datasets[0]}, round 4 of Spattack-L-D at {ratio:g}% under Mean, f = attackers"
    uploads = attacked_round(first, "spattack-l-d", ratio)
    f = int(uploads.counts.max()) if uploads.counts is not None else 0
    report = {"command": " ".join(sys.argv), "machine": machine(device), "aggregators_round": round_label,
              "cells": [], "race": [], "errors": []}
    errors = report["errors"]
    report["aggregators"] = attempt("aggregators", lambda: aggregators_against_cpu(uploads, first.n_items, f, device),
                                    errors) or []
    print(json.dumps(report["aggregators"]), flush=True)
    for name in datasets:
        for attack, defense, ratio in (("none", "mean", 0.0), ("spattack-l-d", "krum", 15.0)):
            cfg = RunConfig(attack=attack, defense=defense, ratio=ratio, epochs=args.epochs, device=args.device)
            cell = attempt(f"cell {name} {attack}/{defense}", lambda: short_cell(data[name], cfg), errors)
            if cell is not None:
                report["cells"].append({"dataset": name, **cell})
                print(json.dumps(report["cells"][-1]), flush=True)
    for name in race_datasets:
        runs = attempt(f"race {name}", lambda: race(data[name], device, args.race_repeats), errors) or []
        report["race"] += [{"dataset": name, **r} for r in runs]
    report["wall_s"] = time.perf_counter() - started
    report["finished"] = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
    out = Path(args.out)
    atomic_write_text(out, markdown(report))
    print(f"wrote {out} ({report['wall_s']:.0f} s, {len(errors)} parts failed)")
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
