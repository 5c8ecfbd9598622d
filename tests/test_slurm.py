"""The workflow on a real SLURM: profiles/slurm, the official executor plugin, sacct.

Stands up a single-node SLURM on this machine (scripts/slurm/local-slurm.sh: apt packages,
munged, MariaDB, slurmdbd, slurmctld, slurmd), runs tiny ML-100K cells through it and reads
the accounting database back. Needs root and apt (or SLURM already installed); skips
without them, except under CI (CI=true), where it fails instead. Deselected by default
(pyproject addopts); run it with `make test-slurm` or `pytest -m slurm`.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slurm

# A fixed folder, not a pytest tmp dir: a cluster left behind by a killed run is found by its
# pid files and stopped before this one starts.
STATE_DIR = Path("/tmp/spattack-slurm-pytest")
LOCK = Path("/tmp/spattack-slurm-pytest.lock")  # one test cluster per machine (fixed ports)
IN_CI = os.environ.get("CI", "").lower() == "true"
TINY = "results/runs/ml-100k/fedmf/none/mean/rho0/start0/seed0"
KEEP = "results/runs/ml-100k/fedmf/none/median/rho0/start0/seed0"  # runs to the end
CANCEL = "results/runs/ml-100k/fedmf/spattack-o-d/mean/rho3/start0/seed0"  # scancel'd
RETRY = "results/runs/ml-100k/fedmf/none/norm/rho0/start0/seed0"  # scancel'd, retried
GPU = "results/runs/ml-100k/fedmf/none/krum/rho0/start0/seed0"  # device=cuda
GROUPED_A = "results/runs/ml-100k/fedmf/none/mean/rho0/start0/seed1"  # these two: one job
GROUPED_B = "results/runs/ml-100k/fedmf/none/trimmed_mean/rho0/start0/seed0"
LONG_EPOCHS = 60  # ~15-20 s a cell on one core: long enough to be cancelled mid-run


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"{reason} (required when CI=true)")
    pytest.skip(reason)


@dataclass
class Cluster:
    env: dict
    setup_s: float


@pytest.fixture(scope="module")
def slurm(repo_root, tmp_path_factory):
    """A running local SLURM (with one device-less GPU declared); stopped at the end, even on failure."""
    if os.geteuid() != 0:
        _unavailable("the SLURM test needs root (apt-get install, daemons as munge/mysql users)")
    installed = all(shutil.which(b) for b in ("slurmctld", "slurmd", "slurmdbd", "munged", "mariadbd"))
    if not installed and not shutil.which("apt-get"):
        _unavailable("SLURM is not installed and there is no apt-get to install it")
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        _unavailable("snakemake-executor-plugin-slurm missing: pip install -e '.[slurm]'")

    script = repo_root / "scripts" / "slurm" / "local-slurm.sh"
    env = {**os.environ, "LOCAL_SLURM_DIR": str(STATE_DIR), "LOCAL_SLURM_FAKE_GPUS": "1",
           "SLURM_CONF": str(STATE_DIR / "etc" / "slurm.conf")}
    logs = tmp_path_factory.mktemp("slurm-logs")

    def script_run(action, timeout):
        with open(logs / f"{action}.log", "a") as out:
            return subprocess.run([str(script), action], env=env, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=timeout).returncode

    lock = open(LOCK, "w")
    deadline = time.monotonic() + 600
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                pytest.fail(f"another SLURM test run has held {LOCK} for 10 minutes")
            time.sleep(2)
    try:
        script_run("stop", 120)  # leftovers of an interrupted run, by their pid files
        t0 = time.monotonic()
        rc = script_run("start", 540)
        setup_s = time.monotonic() - t0
        if rc != 0:
            pytest.fail(f"local SLURM did not start (rc {rc}):\n{(logs / 'start.log').read_text()[-4000:]}")
        print(f"\nlocal SLURM up in {setup_s:.1f} s (install included if it was needed)")
        yield Cluster(env=env, setup_s=setup_s)
    finally:
        if (STATE_DIR / "log").is_dir():
            shutil.copytree(STATE_DIR / "log", logs / "daemons", dirs_exist_ok=True)
        script_run("stop", 180)
        lock.close()


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """One working directory for all runs: data stage once, cells added run by run."""
    return tmp_path_factory.mktemp("slurm-work")


def snakemake(repo_root, work, env, targets, config, extra=(), background=False, log=None):
    cmd = [sys.executable, "-m", "snakemake", *targets, "--profile", str(repo_root / "profiles" / "slurm"),
           "-s", str(repo_root / "Snakefile"), "--directory", str(work),
           # first status check after 2 s: tiny jobs end within seconds (the profile keeps the plugin's 40 s)
           "--slurm-init-seconds-before-status-checks", "2", *extra,
           "--configfile", str(repo_root / "config.yaml"), "--config", *config]
    if background:
        return subprocess.Popen(cmd, cwd=repo_root, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(cmd, cwd=repo_root, env=env, capture_output=True, text=True, timeout=300)


def config(mirror, epochs, device="auto"):
    return [f"mirror={mirror}", "datasets=[ml-100k]", f"epochs={epochs}", "threads=1", f"device={device}"]


def sacct(env) -> pd.DataFrame:
    """One row per job allocation (no steps) in the accounting database."""
    out = subprocess.run(["sacct", "-a", "-X", "-n", "-P", "-S", "now-2days",
                          "-o", "JobID,JobName,State,Comment,AllocTRES,Timelimit,Elapsed"],
                         env=env, capture_output=True, text=True, timeout=60, check=True).stdout
    rows = [line.split("|") for line in out.splitlines() if line.strip()]
    return pd.DataFrame(rows, columns=["jobid", "name", "state", "comment", "tres", "timelimit", "elapsed"])


def new_jobs(before: pd.DataFrame, after: pd.DataFrame, train_only=False) -> pd.DataFrame:
    jobs = after[~after.jobid.isin(before.jobid)]
    if train_only:  # leave out the data stage, in case this test runs first
        jobs = jobs[jobs.comment.str.startswith("rule_train_")]
    return jobs.reset_index(drop=True)


def train_comment(cell: str) -> str:
    """The plugin's job comment: rule_<rule>_wildcards_<wildcard values joined by _>."""
    _, _, dataset, model, attack, defense, rho, start, seed = cell.split("/")
    return "_".join(["rule_train_wildcards", dataset, model, attack, defense,
                     rho[3:], start[5:], seed[4:]])


def run_id(output: str) -> str:
    match = re.search(r"SLURM run ID: (\S+)", output)
    assert match, output[-3000:]
    return match.group(1)


def check_cell(work: Path, cell: str, epochs: int):
    metrics = pd.read_csv(work / cell / "metrics.csv")
    assert list(metrics.columns) == ["epoch", "hr5", "ndcg5", "hr10", "ndcg10"]
    assert metrics.epoch.tolist() == list(range(epochs + 1))
    assert metrics[["hr10", "ndcg10"]].notna().all().all()
    summary = json.loads((work / cell / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["device"] == "cpu"
    assert summary["final"]["epoch"] == epochs


def test_tiny_cell_runs_as_slurm_jobs(mirror, slurm, work, repo_root):
    before = sacct(slurm.env)
    t0 = time.monotonic()
    proc = snakemake(repo_root, work, slurm.env, [f"{TINY}/metrics.csv"], config(mirror, 2))
    print(f"\ntiny cell through SLURM (download, split, train): {time.monotonic() - t0:.1f} s")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    check_cell(work, TINY, 2)

    jobs = new_jobs(before, sacct(slurm.env))
    print(jobs.to_string())
    # every rule ran as one SLURM job named after this run, and completed
    assert (jobs.name == run_id(proc.stderr + proc.stdout)).all()
    assert sorted(jobs.comment) == sorted(["rule_download_wildcards_ml-100k", "rule_split_wildcards_ml-100k",
                                           train_comment(TINY)])
    assert (jobs.state == "COMPLETED").all(), jobs
    # resources from the rule: threads=1 -> 1 CPU, mem_mb 2000 for ML-100K; device auto -> no GPU
    # runtime 60 min from the rule, 30 min from the profile's default-resources for the rest
    train = jobs[jobs.comment == train_comment(TINY)].iloc[0]
    assert "cpu=1" in train.tres and "mem=2000M" in train.tres and "gpu" not in train.tres
    assert train.timelimit == "01:00:00"
    assert set(jobs[jobs.comment != train_comment(TINY)].timelimit) == {"00:30:00"}

    # a second run has nothing to do and submits nothing
    again = snakemake(repo_root, work, slurm.env, [f"{TINY}/metrics.csv"], config(mirror, 2))
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
    assert len(new_jobs(before, sacct(slurm.env))) == len(jobs)


def _cancel_mid_training(env, work, cell, proc, timeout=240):
    """scancel the training job of this cell once it is training; its SLURM job id."""
    comment, jobid = train_comment(cell), None
    log = work / cell.replace("results/runs/", "results/logs/train/").rsplit("/", 1)[0] / (cell.rsplit("/", 1)[1] + ".log")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, "snakemake ended before the job to cancel was training"
        if jobid is None:
            out = subprocess.run(["squeue", "-h", "-o", "%i|%T|%k"], env=env, capture_output=True, text=True).stdout
            for line in out.splitlines():
                job, state, job_comment = line.split("|", 2)
                if job_comment == comment and state == "RUNNING":
                    jobid = job
        elif log.is_file() and "it/s" in log.read_text(errors="replace"):  # progress bar: in its epochs
            subprocess.run(["scancel", jobid], env=env, check=True)
            return jobid
        time.sleep(0.25)
    raise AssertionError(f"the job of {cell} was not seen training within {timeout} s")


def _processes_in(work: Path, wait_s=20):
    """pids of processes that still run something of this working directory."""
    end = time.monotonic() + wait_s
    while True:
        found = []
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and str(work) in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(proc.name))
            except OSError:
                pass
        if not found or time.monotonic() > end:
            return found
        time.sleep(1)


def _run_and_cancel(repo_root, work, slurm, targets, cfg, cell, log_path, extra=()):
    """Run the workflow in the background, scancel `cell`'s job mid-training, wait for the
    run to end; returns (exit code, cancelled job id, run log)."""
    with open(log_path, "w") as log:
        proc = snakemake(repo_root, work, slurm.env, targets, cfg, extra=list(extra), background=True, log=log)
        try:
            jobid = _cancel_mid_training(slurm.env, work, cell, proc)
            rc = proc.wait(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
    return rc, jobid, log_path.read_text()


def test_cancelled_cell_is_redone_alone(mirror, slurm, work, repo_root, tmp_path):
    cfg = config(mirror, LONG_EPOCHS)
    targets = [f"{KEEP}/metrics.csv", f"{CANCEL}/metrics.csv"]
    before = sacct(slurm.env)

    # run 1, no retries: scancel one training job while it trains
    rc, jobid, out1 = _run_and_cancel(repo_root, work, slurm, targets, cfg, CANCEL, tmp_path / "run1.log",
                                      extra=["--retries", "0"])
    assert rc != 0, out1[-3000:]
    assert _processes_in(work) == [], "the cancelled job left processes behind"
    assert re.search(rf"SLURM-job '{jobid}' failed, SLURM status is: 'CANCELLED'", out1), out1[-3000:]
    jobs1 = new_jobs(before, sacct(slurm.env), train_only=True)
    print(jobs1.to_string())
    assert jobs1.set_index("comment").state.to_dict() == {train_comment(KEEP): "COMPLETED",
                                                          train_comment(CANCEL): "CANCELLED by 0"}
    check_cell(work, KEEP, LONG_EPOCHS)
    assert not (work / CANCEL / "metrics.csv").exists()
    kept_mtime = (work / KEEP / "metrics.csv").stat().st_mtime_ns

    # run 2: only the cancelled cell is submitted again
    t0 = time.monotonic()
    run2 = snakemake(repo_root, work, slurm.env, targets, cfg)
    print(f"\nre-run of the cancelled cell: {time.monotonic() - t0:.1f} s")
    assert run2.returncode == 0, run2.stdout[-3000:] + run2.stderr[-3000:]
    jobs2 = new_jobs(before, sacct(slurm.env), train_only=True)
    redone = jobs2[~jobs2.jobid.isin(jobs1.jobid)]
    print(redone.to_string())
    assert redone.comment.tolist() == [train_comment(CANCEL)] and redone.state.tolist() == ["COMPLETED"]
    assert (redone.name == run_id(run2.stderr + run2.stdout)).all()
    check_cell(work, CANCEL, LONG_EPOCHS)
    assert (work / KEEP / "metrics.csv").stat().st_mtime_ns == kept_mtime  # not recomputed

    # run 3: nothing to do, no job; 2 cells cost 3 jobs, one of them the cancelled one
    before3 = sacct(slurm.env)
    run3 = snakemake(repo_root, work, slurm.env, targets, cfg)
    assert run3.returncode == 0 and "Nothing to be done" in run3.stdout + run3.stderr
    assert new_jobs(before3, sacct(slurm.env)).empty
    jobs3 = new_jobs(before, sacct(slurm.env), train_only=True)
    assert len(jobs3) == 3
    assert jobs3.groupby("comment").state.apply(lambda s: (s == "COMPLETED").sum()).tolist() == [1, 1]


def test_cancelled_job_is_retried_within_the_run(mirror, slurm, work, repo_root, tmp_path):
    """The profile's retries: a job killed under a running workflow is submitted again."""
    cfg = config(mirror, LONG_EPOCHS)
    before = sacct(slurm.env)
    rc, _, out = _run_and_cancel(repo_root, work, slurm, [f"{RETRY}/metrics.csv"], cfg, RETRY,
                                 tmp_path / "run.log")
    assert rc == 0, out[-3000:]
    assert _processes_in(work) == [], "the cancelled job left processes behind"
    assert "Trying to restart job" in out
    jobs = new_jobs(before, sacct(slurm.env), train_only=True)
    print(jobs.to_string())
    assert jobs.comment.tolist() == [train_comment(RETRY)] * 2
    assert jobs.state.tolist() == ["CANCELLED by 0", "COMPLETED"]
    check_cell(work, RETRY, LONG_EPOCHS)


def test_cuda_cell_is_placed_on_a_gpu(mirror, slurm, work, repo_root):
    """device: cuda -> the train rule asks for gpu=1 -> the plugin submits --gpus=1 and SLURM
    allocates a GPU (the test cluster declares one, backed by no real device)."""
    import torch

    before = sacct(slurm.env)
    proc = snakemake(repo_root, work, slurm.env, [f"{GPU}/metrics.csv"], config(mirror, 2, device="cuda"),
                     extra=["--retries", "0"])
    jobs = new_jobs(before, sacct(slurm.env), train_only=True)
    print(jobs.to_string())
    assert jobs.comment.tolist() == [train_comment(GPU)]
    assert "gres/gpu=1" in jobs.tres[0]
    if torch.cuda.is_available():
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    else:  # the job got its GPU slot, the CPU-only torch then refuses, as asked for cuda
        assert proc.returncode != 0 and jobs.state[0] == "FAILED"
        log = work / "results" / "logs" / "train" / "ml-100k" / "fedmf" / "none" / "krum" / "rho0" / "start0" / "seed0.log"
        assert "CUDA is not available" in log.read_text()


def test_cells_grouped_into_one_job(mirror, slurm, work, repo_root):
    """--groups train=cells --group-components cells=2: two training cells, one sbatch job."""
    cells = [GROUPED_A, GROUPED_B]
    before = sacct(slurm.env)
    proc = snakemake(repo_root, work, slurm.env, [f"{cell}/metrics.csv" for cell in cells], config(mirror, 2),
                     extra=["--groups", "train=cells", "--group-components", "cells=2"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for cell in cells:
        check_cell(work, cell, 2)
    jobs = new_jobs(before, sacct(slurm.env))
    jobs = jobs[~jobs.comment.str.startswith(("rule_download_", "rule_split_"))].reset_index(drop=True)
    print(jobs.to_string())
    assert jobs.comment.tolist() == ["rule_cells_train"] and jobs.state.tolist() == ["COMPLETED"]
    assert "cpu=2" in jobs.tres[0]  # the group asks for its two 1-thread cells at once
