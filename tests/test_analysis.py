"""Dataset statistics, power-law fit, Proposition 2 and the analysis figures."""

import numpy as np
import pytest

from spattack.analysis import (fit_power_law, head_tail, prop2_from_summaries, prop2_table, split_stats, table2,
                               table2_from_summaries)
from spattack.analysis.summary import fit_table
from spattack.malicious import n_malicious
from spattack.provenance import Splits
from spattack.reporting.figures import plot_degree_distribution, plot_prop2, save_figure
from spattack.reporting.tables import markdown_table


def _discrete_power_law(beta, xmin, n, seed=0):
    u = np.random.default_rng(seed).random(n)
    return np.floor((xmin - 0.5) * (1 - u) ** (-1 / (beta - 1)) + 0.5).astype(int)


def test_split_stats_and_table2():
    s = split_stats(3, 4, np.array([0, 1, 1, 2]), np.array([3, 0, 2]))
    assert s == {"users": 3, "items": 4, "items_used": 4, "interactions": 7, "train": 4, "test": 3,
                 "sparsity": pytest.approx(1 - 7 / 12)}
    t = table2({"steam": {"ours (paper mode)": s}})
    assert list(t["source"]) == ["paper (Table 2)", "ours (paper mode)"]
    assert t.iloc[0][["users", "items", "interactions", "sparsity_pct"]].tolist() == [3753, 5134, 114713, 99.40]
    assert t.iloc[1]["sparsity_pct"] == 41.67


def test_power_law_fit_recovers_beta_and_normalises_c_over_all_items():
    deg = np.concatenate([_discrete_power_law(2.5, 10, 4000), np.arange(1, 10).repeat(100), [0] * 100])
    fit = fit_power_law(deg, xmin=10)
    assert fit.beta == pytest.approx(2.5, abs=0.08)
    assert fit.n_items == len(deg) and fit.n_tail == (deg >= 10).sum()
    assert fit.tail_share(fit.xmin) == pytest.approx(fit.n_tail / len(deg))  # C's normalisation
    assert fit_power_law(deg).xmin > 1  # automatic xmin


def test_malicious_counts_follow_the_paper():
    # "if an attacker can control rho = 5% clients, each item can receive 197 malicious gradients at most" (Steam)
    assert [n_malicious(3753, r) for r in (1, 3, 5, 10, 15)] == [37, 116, 197, 416, 662]
    assert n_malicious(943, 3) == int(943 * 0.030927)


def test_prop2_table_measured_share_and_bound():
    deg = np.concatenate([_discrete_power_law(2.2, 5, 3000, seed=1), [0] * 50])
    fit = fit_power_law(deg, xmin=5)
    t = prop2_table(deg, fit, n_benign=1000, alpha=0.5, ratios=[1, 5])
    assert t["n_mal"].tolist() == [10, 52]
    assert t["measured"].tolist() == [(deg < 10).mean(), (deg < 52).mean()]
    expected = 1 - fit.C / (fit.beta - 1) * 52.0 ** (1 - fit.beta)
    assert t["bound"].iloc[1] == pytest.approx(expected)
    assert t["bound_valid"].all()
    assert abs(t["bound"].iloc[1] - t["measured"].iloc[1]) < 0.03  # the fitted law describes the data
    t = prop2_table(deg, fit, n_benign=1000, alpha=0.8, ratios=[1])  # threshold 2.5 < xmin
    assert not t["bound_valid"].iloc[0]


def test_figures_are_written(tmp_path):
    deg = np.concatenate([_discrete_power_law(2.2, 5, 2000), [0] * 10])
    fit = fit_power_law(deg)
    assert head_tail(deg, 200)["tail_share"] == (deg < 200).mean()
    save_figure(plot_degree_distribution({"steam": deg}, {"steam": fit}, 200), tmp_path / "f.pdf", tmp_path / "f.png")
    table = prop2_table(deg, fit, 1000, 0.5, [1, 3, 5]).assign(dataset="steam")
    save_figure(plot_prop2(table), tmp_path / "p.png")
    for name in ("f.pdf", "f.png", "p.png"):
        assert (tmp_path / name).stat().st_size > 5000


def test_analysis_tables_and_figures_say_which_splits_and_code_made_them():
    deg = np.concatenate([_discrete_power_law(2.2, 5, 2000), [0] * 10])
    fit = fit_power_law(deg)
    stats = split_stats(3, 4, np.array([0, 1, 1, 2]), np.array([3, 0, 2]))
    summary = {"dataset": "steam", "mode": "correct", "code_version": "0.1.0+g1234", "n_benign": 1000,
               "stats": {"ours (correct mode)": stats}, "head_tail": head_tail(deg, 200)}
    items = [(summary, deg, fit)]
    assert table2_from_summaries([summary]).code_version.tolist() == ["", "0.1.0+g1234"]  # the paper's row: none
    assert fit_table(items)[["split_mode", "code_version"]].values.tolist() == [["correct", "0.1.0+g1234"]]
    prop2 = prop2_from_summaries(items, 0.5, [1, 5])
    assert set(prop2.split_mode) == {"correct"} and set(prop2.code_version) == {"0.1.0+g1234"}
    data = Splits.from_summaries([summary]).header()
    md = markdown_table(prop2, title="Proposition 2", source=data)
    assert md.startswith(f"## Proposition 2\n\n{data}\n\n| dataset |")
    assert "**Not the paper's protocol: split mode correct" in data
    for fig in (plot_degree_distribution({"steam": deg}, {"steam": fit}, 200, note=data), plot_prop2(prop2, note=data)):
        [note] = fig.texts
        assert " ".join(note.get_text().split()).startswith("Data. From the leave-one-out splits of Steam")
        assert note.get_color() == "#b00000"
