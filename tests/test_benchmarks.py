"""The benchmark scripts run and print their tables (tiny sizes: their numbers are not
checked here; the README quotes full runs)."""

import json
import subprocess
import sys

import pytest

from spattack.data import make_split, write_split


@pytest.fixture(scope="module")
def ml100k_split(mirror, tmp_path_factory):
    out = tmp_path_factory.mktemp("splits") / "ml-100k"
    write_split(make_split("ml-100k", mirror / "ml-100k"), out)
    return out


def run(repo_root, script, *args) -> str:
    cmd = [sys.executable, str(repo_root / "benchmarks" / script), *map(str, args)]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=repo_root).stdout


def rows(table: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()
            if line.startswith("|") and not line.startswith("|--") and not line.startswith("|---")][1:]


def test_attack_overhead_prints_a_ratio_per_defense(repo_root, ml100k_split):
    out = rows(run(repo_root, "bench_attack_overhead.py", "--split", ml100k_split, "--epochs", 3,
                   "--defenses", "mean,krum", "--pairs", 2))
    assert [r[0] for r in out] == ["mean", "krum"] and all(float(r[-1]) > 0 and float(r[-2]) > 0 for r in out)
    # without warm-up epochs left out, the steady ratio is the ratio over all epochs
    out = rows(run(repo_root, "bench_attack_overhead.py", "--split", ml100k_split, "--epochs", 1,
                   "--warm-up", 0, "--defenses", "mean"))
    assert out[0][-1] == out[0][-2]


def test_threads_prints_both_ways_and_their_ratio(repo_root, ml100k_split):
    out = rows(run(repo_root, "bench_threads.py", "--split", ml100k_split, "--epochs", 1, "--pairs", 1,
                   "--cells", "fedmf/none/mean/0,fedmf/spattack-l-d/median/5"))
    assert [r[0] for r in out] == ["fedmf/none/mean/0", "fedmf/spattack-l-d/median/5"]
    for alone, shared, ratio in (map(float, r[1:]) for r in out):
        assert alone > 0 and shared > 0 and ratio == pytest.approx(2 * alone / shared, rel=0.05)


def test_kernels_against_a_base_version(repo_root, ml100k_split):
    """The base version here is this one: the ratio is about 1."""
    out = rows(run(repo_root, "bench_kernels.py", "--split", ml100k_split, "--kernels", "client_step,median",
                   "--repeat", 1, "--pairs", 1, "--base", repo_root / "src"))
    assert [r[0] for r in out] == ["client_step", "median"]
    for _, this, base, ratio in out:  # one timed call each: the times vary, the arithmetic must not
        assert float(this) > 0 and float(base) > 0
        # the printed times are rounded: the ratio of the unrounded ones lies between these
        half = [0.5 * 10 ** -len(text.partition(".")[2]) for text in (this, base)]
        low = (float(base) - half[1]) / (float(this) + half[0])
        high = (float(base) + half[1]) / (float(this) - half[0])
        assert low - 0.005 <= float(ratio) <= high + 0.005, (this, base, ratio)


def test_kernels_on_an_attacked_round(repo_root, ml100k_split):
    """--attack: the aggregators run on a round that holds the attackers' rows, each
    sent once with the attackers' number as its count."""
    from spattack.interactions import Interactions
    from spattack.malicious import n_malicious
    from spattack.simulation import attacked_round
    data = Interactions.load(ml100k_split)
    counts = attacked_round(data, "spattack-o-d", 5.0, 1).counts
    assert counts is not None and int(counts.max()) == n_malicious(data.n_users, 5.0)
    assert int((counts > 1).sum()) == data.n_items  # -D: one row per item
    out = rows(run(repo_root, "bench_kernels.py", "--split", ml100k_split, "--kernels", "krum", "--repeat", 1,
                   "--pairs", 1, "--attack", "spattack-o-d", "--ratio", 5))
    assert [r[0] for r in out] == ["krum"] and float(out[0][1]) > 0


def test_scale_setup_and_machine(repo_root, ml100k_split):
    scale = rows(run(repo_root, "bench_scale.py", "--sizes", "20000", "--epochs", 2))
    assert len(scale) == 1 and int(scale[0][0].replace(",", "")) > 15000
    stages, epoch, first = [float(x) for x in scale[0][3:6]], float(scale[0][6]), float(scale[0][8])
    assert epoch == pytest.approx(sum(stages), abs=2e-3) and first > 0
    setup = rows(run(repo_root, "bench_setup.py", ml100k_split))
    assert len(setup) == 1 and float(setup[0][-1]) > 0
    machine = rows(run(repo_root, "bench_machine.py", "--threads", 1))
    assert machine[0][0].startswith("copy 256 MB") and machine[0][1].endswith("GB/s")


def test_epoch_prints_a_row_per_aggregator(repo_root, ml100k_split):
    out = rows(run(repo_root, "bench_epoch.py", "--dataset", "ml-100k", "--split", ml100k_split,
                   "--aggregators", "mean,median", "--epochs", 1, "--threads", 1))
    assert [r[1] for r in out] == ["mean", "median"]
    for r in out:  # client + aggregate + evaluate = epoch, to the printed rounding
        assert float(r[5]) == pytest.approx(sum(map(float, r[2:5])), abs=2e-4)


def test_aggregators_with_attackers_sent_as_counts(repo_root):
    out = rows(run(repo_root, "bench_aggregators.py", "--items", 50, "--rows", 3000, "--max-count", 200,
                   "--attackers", 30, "--repeat", 1))
    assert [r[0] for r in out] == ["mean", "median", "trimmed_mean", "krum", "norm"]
    assert all(float(r[-1]) < 1e-5 for r in out)  # the loop on the expanded copies agrees


def test_schedule_starts_the_longest_cells_first(repo_root, tmp_path):
    """Ten 10-s Mean cells and one 100-s Krum cell of ML-1M on two cores: Krum first ends
    at 100 s whatever the order of the others; started last it ends at 150 s."""
    def cell(defense, k, seconds):
        tsv = tmp_path / "ml-1m" / "fedmf" / "spattack-o-d" / defense / "rho5" / "start0" / f"seed{k}.tsv"
        tsv.parent.mkdir(parents=True, exist_ok=True)
        tsv.write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:{seconds}\t1.0\n")
    for k in range(10):
        cell("mean", k, 10)
    cell("krum", 0, 100)
    out = run(repo_root, "bench_schedule.py", tmp_path, "--cores", 2, "--orders", 50)
    assert "11 cells, 3.3 min of cell time, 2 cores; bound 1.7 min" in out
    by_rule = {r[0]: [float(v) for v in r[1:]] for r in rows(out[out.index("|"):])}
    assert by_rule["cost"] == [1.7, 1.7, 1.7, 1.0]  # min, median, max, over the bound: 100 s each time
    assert by_rule["runtime"][2] == 2.5  # some random order starts Krum last: 150 s


def test_cells_split_each_job_into_its_stages_and_the_rest(repo_root, tmp_path):
    """Two 10-epoch cells of 120 s jobs: 6 s an epoch in stages, so 60 s of epochs and 60 s
    of rest each; a third cell without a benchmark file counts its epochs only."""
    def cell(defense, seed, job_s=None):
        run_dir = tmp_path / "runs" / "ml-100k" / "fedmf" / "none" / defense / "rho0" / "start0" / f"seed{seed}"
        run_dir.mkdir(parents=True)
        per_epoch = {"client": 1.0, "attack": 0.5, "aggregate": 3.0, "evaluate": 1.5}
        (run_dir / "summary.json").write_text(json.dumps({"final": {"epoch": 10}, "seconds_per_epoch": per_epoch}))
        if job_s is not None:
            tsv = tmp_path / "benchmarks" / "train" / run_dir.relative_to(tmp_path / "runs").parent / f"seed{seed}.tsv"
            tsv.parent.mkdir(parents=True, exist_ok=True)
            tsv.write_text(f"s\th:m:s\tmax_rss\n{job_s}\t0:02:00\t1.0\n")
    cell("krum", 0, 120)
    cell("krum", 1, 120)
    cell("mean", 0)
    table = {tuple(r[:3]): r[3:] for r in rows(run(repo_root, "bench_cells.py", tmp_path))}
    #                                 cells, no benchmark, job, client, attack, aggregate, evaluate, rest (min)
    assert table["ml-100k", "fedmf", "krum"] == ["2", "0", "4.0", "0.3", "0.2", "1.0", "0.5", "2.0"]
    assert table["ml-100k", "fedmf", "mean"] == ["1", "1", "nan", "0.2", "0.1", "0.5", "0.2", "nan"]
    assert table["all", "all", "all"] == ["3", "1", "4.0", "0.5", "0.2", "1.5", "0.8", "2.0"]


def test_cells_without_runs_name_the_layout(repo_root, tmp_path):
    cmd = [sys.executable, str(repo_root / "benchmarks" / "bench_cells.py"), str(tmp_path)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode != 0 and "no summary.json under" in out.stderr and "seed<k>/summary.json" in out.stderr
