"""The workflow keeps the Snakemake ecosystem's conventions: `snakemake --lint` finds
nothing, snakefmt would change nothing, and every rule runs in envs/spattack.yaml, an
environment that holds pyproject.toml's dependencies and this package (installed by the
post-deploy script beside it)."""

import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib.util import find_spec
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.workflow

ENV = "envs/spattack.yaml"
# Snakemake runs <env>.post-deploy.sh, beside the env file, once the environment is made
POST_DEPLOY = "envs/spattack.post-deploy.sh"
# pyproject name -> conda-forge name, where they differ
CONDA_NAMES = {"torch": "pytorch"}
RULE_FILES = ["Snakefile", "workflow/rules/common.smk", "workflow/rules/data.smk", "workflow/rules/analysis.smk",
              "workflow/rules/train.smk", "workflow/rules/figures.smk"]


def test_the_rule_files_are_all_listed(repo_root):
    assert sorted(RULE_FILES) == sorted(["Snakefile"] + [f"workflow/rules/{p.name}" for p in
                                                        (repo_root / "workflow" / "rules").glob("*.smk")])


def test_snakemake_lint_finds_nothing(repo_root, tmp_path):
    # reference_splits set, so that the split_check rule exists and is linted too
    cmd = [sys.executable, "-m", "snakemake", "--lint", "-s", str(repo_root / "Snakefile"),
           "--directory", str(tmp_path), "--configfile", str(repo_root / "config.yaml"),
           "--config", "mirror=/nonexistent", "reference_splits=/nonexistent"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Lints for" not in out, out[-5000:]
    assert "Congratulations, your workflow is in a good condition!" in out


def test_snakefmt_would_change_nothing(repo_root):
    if find_spec("snakefmt") is None:
        message = "snakefmt is not installed: pip install -e '.[test]'"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    proc = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "--diff", "Snakefile", "workflow"],
                          cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]


def test_every_rule_names_the_environment(repo_root):
    """The lint (above) wants a conda environment or container on every rule that runs
    something; here: none has a container, and each rule with a script names ENV."""
    for name in RULE_FILES:
        text = (repo_root / name).read_text()
        assert "container:" not in text, name
        envs = re.findall(r"^\s+conda:\n\s+(.+)$", text, re.M)
        assert len(envs) == len(re.findall(r"^\s+script:$", text, re.M)), name
        for env in envs:
            path = (repo_root / name).parent / yaml.safe_load(env)
            assert path.resolve() == (repo_root / ENV).resolve(), (name, env)


def _name_and_spec(requirement):
    name, spec = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(.*)", requirement).groups()
    return name.lower(), spec.replace(" ", "")


def test_the_environment_holds_the_dependencies_of_pyproject(repo_root):
    """Same packages, same version bounds: Python, pip, the build backend (the post-deploy
    script builds spattack without isolation) and every runtime dependency."""
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())
    wanted = {"python": project["project"]["requires-python"], "pip": ""}
    for requirement in project["build-system"]["requires"] + project["project"]["dependencies"]:
        name, spec = _name_and_spec(requirement)
        wanted[CONDA_NAMES.get(name, name)] = spec
    env = yaml.safe_load((repo_root / ENV).read_text())
    assert all(isinstance(d, str) for d in env["dependencies"]), "no pip: section, see the post-deploy script"
    assert dict(map(_name_and_spec, env["dependencies"])) == wanted
    assert "conda-forge" in env["channels"]


def _checkout_copy(repo_root, where):
    where.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(repo_root / name, where / name)
    shutil.copytree(repo_root / "src" / "spattack", where / "src" / "spattack",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return where


def test_the_post_deploy_script_installs_the_checkout(repo_root, tmp_path):
    """Snakemake runs the script inside the new environment (its python first on PATH), in
    the working directory. A stand-in `python` here is this interpreter, with pip told to
    do a dry run: the script's pip command must install spattack from the checkout."""
    checkout = _checkout_copy(repo_root, tmp_path / "checkout")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec {sys.executable} "$@" --dry-run\n')
    (bin_dir / "python").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("SPATTACK_CHECKOUT", None)
    script = str(repo_root / POST_DEPLOY)

    proc = subprocess.run(["bash", script], cwd=checkout, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Would install spattack-0.1.0" in proc.stdout

    # run from elsewhere: it names the fix ...
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    proc = subprocess.run(["bash", script], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "Would install" not in proc.stdout
    assert f"{elsewhere} is not the spattack checkout" in proc.stderr and "SPATTACK_CHECKOUT" in proc.stderr
    # ... which works
    proc = subprocess.run(["bash", script], cwd=elsewhere, env={**env, "SPATTACK_CHECKOUT": str(checkout)},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Would install spattack-0.1.0" in proc.stdout, proc.stdout + proc.stderr


def test_the_post_deploy_script_installs_editable_without_dependencies(repo_root):
    """Editable: the environment, made once, runs the checkout's code as it is and cells
    record its commit. No dependencies: conda installed them (and pip would fetch torch)."""
    text = (repo_root / POST_DEPLOY).read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    pip = [line for line in text.splitlines() if "pip install" in line]
    assert len(pip) == 1 and "--editable" in pip[0] and "--no-deps" in pip[0], pip


def _dry_run(repo_root, workdir, *python_args, env=None):
    cmd = [sys.executable, *python_args, "-n", "table2", "-s", str(repo_root / "Snakefile"), "--directory",
           str(workdir), "--configfile", str(repo_root / "config.yaml"), "--config", "mirror=/nonexistent"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    return proc.returncode, proc.stdout + proc.stderr


def test_without_the_package_the_workflow_stops_with_the_fix(repo_root, tmp_path):
    """No PYTHONPATH set by the workflow: spattack must be installed, and the message says how."""
    hide = "import sys; sys.modules['spattack'] = None; from snakemake.cli import main; main()"
    rc, out = _dry_run(repo_root, tmp_path, "-c", hide)
    assert rc != 0 and "The spattack package is not importable" in out, out[-3000:]
    assert "`make setup`" in out and "`pip install -e .`" in out


def test_a_spattack_from_another_checkout_is_named(repo_root, tmp_path):
    other = tmp_path / "other" / "src"
    shutil.copytree(repo_root / "src" / "spattack", other / "spattack", ignore=shutil.ignore_patterns("__pycache__"))
    rc, out = _dry_run(repo_root, tmp_path / "work", "-m", "snakemake", env={**os.environ, "PYTHONPATH": str(other)})
    assert rc == 0, out[-3000:]
    assert f"spattack is imported from {other / 'spattack'}, not from this checkout ({repo_root})" in out
    import spattack

    if Path(spattack.__file__).resolve().parent == (repo_root / "src" / "spattack").resolve():
        # as installed by make setup (pip install -e .): nothing to say
        rc, out = _dry_run(repo_root, tmp_path / "work", "-m", "snakemake")
        assert rc == 0 and "spattack is imported from" not in out, out[-3000:]
