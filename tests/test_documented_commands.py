"""Every command README.md and the Makefile document runs as written.

In a copy of the repository that has `../shared/data/raw` beside it (the mirror) and a
stand-in `.venv` whose snakemake and pytest are this interpreter's: the make targets with
their variables unset, empty and set (training targets as dry runs, `make report` for real
on a tiny build of every target), and the snakemake command lines of the README with `-n`.
"""

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.workflow

COPIED = ["Makefile", "Snakefile", "config.yaml", "pyproject.toml", "config", "workflow", "profiles", "envs", "src",
          "tests", "scripts", "benchmarks"]
# every target of the paper on ML-100K, one epoch, one cell per figure panel
TINY = ("datasets=[ml-100k] epochs=1 'experiments={table3: {attacks: [none]}, "
        "fig3: {defenses: [mean], omniscient_ratios: [1], limited_ratios: [5], attacks: [spattack-o-d]}, "
        "fig4: {defenses: [mean], attacks: [none]}, "
        "fig5: {dataset: ml-100k, starts: [0], attacks: [spattack-o-d]}}'")


# the make targets the tests below run, and how
TESTED_TARGETS = {"paper", "quick", "report", "test", "test-slurm", "bench", "gpu-check", "setup"}


@pytest.fixture(scope="module")
def readme(repo_root):
    return (repo_root / "README.md").read_text()


def test_every_documented_make_target_exists_and_is_tested(repo_root, readme):
    makefile = (repo_root / "Makefile").read_text()
    code = re.findall(r"`([^`\n]+)`", readme) + re.findall(r"```bash\n(.*?)```", readme, re.S)
    documented = {m for text in code for m in re.findall(r"(?:^|\s)make ([a-z][\w-]*)", text, re.M)}
    documented |= set(re.findall(r"^#\s+make ([a-z][\w-]*)", makefile, re.M))
    defined = set(re.findall(r"^([a-z][\w-]*):", makefile, re.M))
    assert {"paper", "quick", "test", "report"} <= documented
    assert documented <= defined, documented - defined
    assert documented <= TESTED_TARGETS, documented - TESTED_TARGETS


@pytest.fixture(scope="module")
def checkout(repo_root, mirror, tmp_path_factory):
    """(copy of the repository, the default mirror path the Makefile should find)."""
    root = tmp_path_factory.mktemp("documented")
    repo = root / "spattack"
    ignore = shutil.ignore_patterns("__pycache__", ".snakemake", "results", ".pytest_cache")
    for name in COPIED:
        src = repo_root / name
        if src.is_dir():
            shutil.copytree(src, repo / name, ignore=ignore)
        else:
            repo.mkdir(exist_ok=True)
            shutil.copy2(src, repo / name)
    (root / "shared" / "data").mkdir(parents=True)
    (root / "shared" / "data" / "raw").symlink_to(mirror)
    bin_dir = repo / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for tool, module in (("snakemake", "-m snakemake"), ("pytest", "-m pytest"), ("python", "")):
        (bin_dir / tool).write_text(f'#!/bin/sh\nexec {sys.executable} {module} "$@"\n')
        (bin_dir / tool).chmod(0o755)
    installed = repo / ".venv" / ".installed"
    installed.touch()
    later = (repo / "pyproject.toml").stat().st_mtime + 60
    os.utime(installed, (later, later))
    return repo, root / "shared" / "data" / "raw"


def run(repo, *cmd, timeout=300):
    """(exit status, output) of `cmd` in `repo`; on timeout its whole process group is killed."""
    # as a user types it: not inside the make that may run this suite (make test)
    env = {k: v for k, v in os.environ.items()
           if k not in ("SPATTACK_MIRROR", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    env["PYTHONPATH"] = str(repo / "src")
    proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} ran past {timeout} s: {out[-2000:]}")
    return proc.returncode, out


def command_line(repo, *make_args):
    """The snakemake (or other) command `make -n` prints for a target, as words."""
    rc, out = run(repo, "make", "-n", *make_args)
    assert rc == 0, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, f"make -n {' '.join(make_args)} would run more than the command: {out}"
    return shlex.split(lines[0])


def config_of(words):
    """The words after --config, which must end the command line."""
    if "--config" not in words:
        return []
    tail = words[words.index("--config") + 1:]
    assert not any(w.startswith("-") for w in tail), words
    return tail


@pytest.mark.parametrize("args,given_mirror", [
    (["paper"], "default"), (["paper", "MIRROR="], None), (["paper", "MIRROR=/elsewhere/raw"], "/elsewhere/raw"),
    (["quick"], "default"), (["quick", "MIRROR="], None),
])
def test_make_training_targets_as_dry_runs(checkout, args, given_mirror):
    repo, default_mirror = checkout
    words = command_line(repo, *args)
    assert words[0] == ".venv/bin/snakemake" and "--keep-going" in words
    assert ("--configfile" in words) == (args[0] == "quick")
    expected = [] if given_mirror is None else [
        f"mirror={default_mirror if given_mirror == 'default' else given_mirror}"]
    assert config_of(words) == expected

    assert "-n" in command_line(repo, *args, "SNAKEFLAGS=-n")  # before running it: a dry run, not the paper
    rc, out = run(repo, "make", *args, "SNAKEFLAGS=-n")
    assert rc == 0, out[-3000:]
    assert "rule train:" in out and "rule table3_build:" in out
    assert ("results/runs/ml-1m/" in out) == (args[0] == "paper")  # quick: ML-100K and Steam


def test_make_config_and_flags_reach_snakemake(checkout):
    repo, _ = checkout
    words = command_line(repo, "paper", "MIRROR=", "CONFIG=seeds=[0,1] datasets=[ml-100k]", "SNAKEFLAGS=--quiet")
    assert "--quiet" in words and config_of(words) == ["seeds=[0,1]", "datasets=[ml-100k]"]
    assert "-n" in command_line(repo, "paper", "SNAKEFLAGS=-n")
    rc, out = run(repo, "make", "paper", "MIRROR=", "CONFIG=seeds=[0,1] datasets=[ml-100k]", "SNAKEFLAGS=-n")
    assert rc == 0, out[-3000:]
    assert "results/runs/ml-100k/fedmf/none/mean/rho0/start0/seed1/metrics.csv" in out and "results/runs/ml-1m/" not in out


@pytest.mark.parametrize("targets", [None, "table2", "table3 fig5"])
def test_make_report_command_line(checkout, targets):
    repo, default_mirror = checkout
    words = command_line(repo, "report", *([f"TARGETS={targets}"] if targets else []))
    wanted = (targets or "all").split()
    assert words[1:1 + len(wanted)] == wanted and words[1 + len(wanted)] == "--report"
    assert config_of(words) == [f"mirror={default_mirror}"]


REPORTED = {"table2": "table2.csv", "fig2c": "fig2c.png", "prop2": "prop2.csv", "table3": "table3.csv",
            "fig3": "fig3.csv", "fig4": "fig4.csv", "fig5": "fig5.csv"}


@pytest.fixture(scope="module")
def built(checkout):
    """Every target of the paper, tiny, built by the documented `make paper`."""
    repo, _ = checkout
    assert "epochs=1" in command_line(repo, "paper", f"CONFIG={TINY}")  # before running it: tiny, not the paper
    rc, out = run(repo, "make", "paper", f"CONFIG={TINY}", "CORES=2")
    assert rc == 0, out[-5000:]
    return repo


@pytest.mark.parametrize("targets", [None, "table2", "table3 fig5"])
def test_make_report_for_real(built, targets):
    report = built / "results" / "report.html"
    report.unlink(missing_ok=True)
    rc, out = run(built, "make", "report", f"CONFIG={TINY}", *([f"TARGETS={targets}"] if targets else []))
    assert rc == 0, out[-3000:]
    html = report.read_text()
    wanted = (targets or "table2 fig2c prop2 table3 fig3 fig4 fig5").split()
    for target, result in REPORTED.items():
        assert (f'"{result}"' in html) == (target in wanted), target
    # every caption, and the front page, state the runs behind the result: one epoch here
    assert "200 epochs" not in html
    trained = set(wanted) & {"table3", "fig3", "fig4", "fig5"}  # its caption and its front-page line
    assert html.count("Not the paper's protocol: 1 epoch (paper: 200).") >= 2 * len(trained)
    assert "From the leave-one-out splits of ML-100K (split mode paper; code 0.1.0); no training runs." in html \
        or "table2" not in wanted


def test_readme_report_command_for_real(built, readme):
    documented = "snakemake --report results/report.html table3 fig5"
    assert f"`{documented}`" in readme
    words = shlex.split(documented)
    rc, out = run(built, sys.executable, "-m", *words, "--config", *shlex.split(TINY))
    assert rc == 0, out[-3000:]
    assert (built / "results" / "report.html").stat().st_size > 10_000


# (documented text, full command line it stands for)
README_COMMANDS = [
    ("snakemake --cores all --keep-going", "snakemake --cores all --keep-going"),
    ("snakemake --cores all --configfile config/quick.yaml", "snakemake --cores all --configfile config/quick.yaml"),
    ("snakemake --cores 8 table3 --config mirror=/path/to/raw", "snakemake --cores 8 table3 --config mirror=/path/to/raw"),
    ("--config epochs=50 seeds=[0,1,2]", "snakemake --cores 8 table3 --config epochs=50 seeds=[0,1,2]"),
    ("--config 'experiments={table3: {attacks: [none, spattack-o-d]}}'",
     "snakemake --cores 8 table3 --config 'experiments={table3: {attacks: [none, spattack-o-d]}}'"),
    ("snakemake --cores 8 table3 fig3 --config seeds=[0,1,2]", "snakemake --cores 8 table3 fig3 --config seeds=[0,1,2]"),
    ("--rerun-triggers mtime", "snakemake --cores 8 fig3 --rerun-triggers mtime --forcerun fig3_build"),
    ("--forcerun fig3_build", "snakemake --cores 8 fig3 --rerun-triggers mtime --forcerun fig3_build"),
    ("snakemake --profile profiles/slurm", "snakemake --profile profiles/slurm"),
    ("snakemake --cores all --software-deployment-method conda",
     "snakemake --cores all --software-deployment-method conda"),
    ("--rerun-triggers mtime params input code", "snakemake --cores 8 fig3 --rerun-triggers mtime params input code"),
]


@pytest.mark.parametrize("documented,command", README_COMMANDS)
def test_readme_snakemake_commands_as_dry_runs(checkout, readme, documented, command):
    assert documented in readme
    if "profiles/slurm" in command:
        pytest.importorskip("snakemake_executor_plugin_slurm", reason="the SLURM profile needs the plugin "
                                                                       "(pip install -e '.[slurm]'; make test-slurm)")
    if "conda" in shlex.split(command) and shutil.which("conda") is None:
        pytest.skip("conda is not installed")
    repo, _ = checkout
    words = shlex.split(command)
    rc, out = run(repo, sys.executable, "-m", *words, "-n")
    assert rc == 0, out[-3000:]
    assert "rule " in out or "Nothing to be done" in out


def test_make_test_collects_the_suite(checkout):
    repo, _ = checkout
    rc, out = run(repo, "make", "test", "PYTESTFLAGS=--collect-only -q")
    assert rc == 0, out[-3000:]
    assert re.search(r"^tests/test_evaluation\.py: \d+$", out, re.M), out[-2000:]  # -q -q: counts per file


def test_make_test_slurm_runs_the_slurm_test(checkout):
    repo, default_mirror = checkout
    rc, out = run(repo, "make", "-n", "test-slurm")
    assert rc == 0, out
    last = shlex.split(out.strip().splitlines()[-1])
    assert last[0] == f"SPATTACK_MIRROR=${{SPATTACK_MIRROR:-{default_mirror}}}" and last[1] == ".venv/bin/pytest"
    assert last[-1] == "tests/test_slurm.py" and "slurm" in last
    rc, out = run(repo, ".venv/bin/pytest", *last[2:], "--collect-only", "-q")
    assert rc in (0, 5), out[-2000:]  # 5: collected, none selected (marker) is fine too


@pytest.mark.parametrize("target,script,flags", [
    ("bench", "benchmarks/bench_epoch.py", ["--dataset", "--split"]),
    ("gpu-check", "scripts/gpu_check.py", ["--device", "--out"]),
])
def test_make_script_targets_name_existing_options(checkout, target, script, flags):
    repo, _ = checkout
    words = command_line(repo, target)
    assert script in words and all(f in words for f in flags)
    rc, out = run(repo, sys.executable, script, "--help")
    assert rc == 0, out
    assert all(f in out for f in flags)


def test_make_setup_creates_the_venv(checkout, tmp_path):
    repo, _ = checkout
    rc, out = run(repo, "make", "-n", "setup", f"VENV={tmp_path / 'venv'}")
    assert rc == 0, out
    assert f"-m venv {tmp_path / 'venv'}" in out and "pip install --quiet -e '.[test]'" in out
