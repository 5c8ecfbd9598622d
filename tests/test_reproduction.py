"""The paper's findings, checked on the committed outputs of real runs (docs/reproduction)."""

import json

import pandas as pd
import pytest

from spattack.paperdata import paper_table


@pytest.fixture(scope="module")
def fig5(repo_root):
    return pd.read_csv(repo_root / "docs" / "reproduction" / "fig5" / "fig5.csv")


def curve(df, attack, start):
    return df[(df.attack == attack) & (df.start == start)].set_index("epoch").hr10


def test_fig5_limited_attack_collapses_a_converging_model(fig5):
    """RQ4: started later, Spattack-L lets the model converge first, then breaks it."""
    for start in (20, 40, 60):
        hr = curve(fig5, "spattack-l-d", start)
        assert hr.iloc[-1] < hr[start] - 0.02, start
        assert hr.iloc[-1] < 0.1  # below an untrained model (10/100)


def test_fig5_omniscient_attack_stalls_convergence(fig5):
    """RQ4: Spattack-O freezes what was learnt: later starts keep more, none keeps learning
    at the clean pace."""
    clean = curve(fig5, "none", 0)
    finals = []
    for start in (0, 20, 40, 60):
        hr = curve(fig5, "spattack-o-d", start)
        assert hr.iloc[-1] - hr[start] < (clean.iloc[-1] - clean[start]) / 2, start
        finals.append(hr.iloc[-1])
    assert finals == sorted(finals)
    assert finals[-1] < clean.iloc[-1] - 0.3


def test_table3_spattack_drops_and_baselines(repo_root):
    t3 = pd.read_csv(repo_root / "docs" / "reproduction" / "table3" / "table3.csv")
    ran = t3[t3.ours.notna()]
    assert set(ran.dataset) == {"ml-100k", "ml-1m", "steam"}
    spattack = ran[ran.attack.str.startswith("spattack")]
    # the one miss, discussed in the report: ML-100K L-S HR@10 (-42%; the paper's -47% is
    # one favourable seed-0 GPU run of the authors' code)
    miss = (spattack.dataset == "ml-100k") & (spattack.attack == "spattack-l-s") & (spattack.metric == "hr10")
    assert (spattack[~miss].drop_pct <= -45).all() and (spattack[miss].drop_pct > -45).all()
    weak = ran[ran.dataset.isin(["ml-100k", "ml-1m"]) & ran.attack.isin(["labelflip", "fedattack", "gaussian", "lie"])]
    assert (weak.drop_pct.abs() <= 5).all()
    # the paper's values in the table are the transcribed ones
    paper = paper_table("table3").set_index(["dataset", "attack", "metric"]).paper
    for r in ran.itertuples():
        assert r.paper == paper[r.dataset, r.attack, r.metric]


def test_table3_ml100k_three_seeds_within_003_of_the_paper(repo_root):
    """With 3 seeds every ML-100K number of Table 3 (11 attacks x 4 metrics) lies within
    ±0.03 of the paper's, and the paper's RQ1 ordering holds: every Spattack variant
    beats every baseline on every metric."""
    t3 = pd.read_csv(repo_root / "docs" / "reproduction" / "ml-100k-3seeds" / "table3" / "table3.csv")
    ran = t3[t3.dataset == "ml-100k"]
    assert len(ran) == 44 and (ran.seeds == 3).all()
    assert (ran["diff"].abs() <= 0.03).all(), ran.loc[ran["diff"].abs() > 0.03, ["attack", "metric", "diff"]]
    for metric, rows in ran.groupby("metric"):
        spattack = rows[rows.attack.str.startswith("spattack")].ours
        baselines = rows[~rows.attack.str.startswith("spattack") & (rows.attack != "none")].ours
        assert spattack.max() < baselines.min(), metric


# Steam numbers outside ±0.03 of the paper with 3 seeds, each discussed in
# docs/reproduction/README.md: LabelFlip/FedAttack (the paper's attackers upload a row for
# every item; `-dense` variants), and -O's HR@10, which under Mean is set by the initial
# item draw (the paper's is the authors' seed-0 draw; scripts/experiments/omniscient_item_init.py).
STEAM_KNOWN_GAPS = {(attack, metric) for attack in ("labelflip", "fedattack")
                    for metric in ("hr5", "ndcg5", "hr10", "ndcg10")}
STEAM_KNOWN_GAPS |= {("spattack-o-s", "hr10"), ("spattack-o-d", "hr10")}


def test_table3_steam_three_seeds_within_003_except_the_reported_gaps(repo_root):
    """With 3 seeds every Steam number lies within ±0.03 of the paper's except the gaps the
    report discusses, and those gaps are still there (if one closes, update the report)."""
    t3 = pd.read_csv(repo_root / "docs" / "reproduction" / "steam-3seeds" / "table3" / "table3.csv")
    ran = t3[t3.dataset == "steam"]
    assert len(ran) == 44 and (ran.seeds == 3).all()
    off = {(r.attack, r.metric) for r in ran.itertuples() if abs(r.diff) > 0.03}
    assert off == STEAM_KNOWN_GAPS
    assert (ran[ran.attack.str.startswith("spattack")].drop_pct <= -45).all()


# ML-1M numbers (seed 0) outside ±0.03 of the paper, each discussed in the report's ML-1M
# section: our Fang reading collapses ML-1M, and -O stays at an untrained model's level,
# as the authors' published code does on ML-1M.
ML1M_KNOWN_GAPS = {("fang", metric) for metric in ("hr5", "ndcg5", "hr10", "ndcg10")}
ML1M_KNOWN_GAPS |= {(attack, metric) for attack in ("spattack-o-s", "spattack-o-d")
                    for metric in ("hr5", "hr10", "ndcg10")}


def test_table3_ml1m_within_003_except_the_reported_gaps(repo_root):
    t3 = pd.read_csv(repo_root / "docs" / "reproduction" / "table3" / "table3.csv")
    ran = t3[t3.dataset == "ml-1m"]
    assert len(ran) == 44 and ran.ours.notna().all()
    off = {(r.attack, r.metric) for r in ran.itertuples() if abs(r.diff) > 0.03}
    assert off == ML1M_KNOWN_GAPS


def test_clean_ml1m_three_seeds_within_001_of_the_paper(repo_root):
    paper = paper_table("table3").set_index(["dataset", "attack", "metric"]).paper
    for metric in ("hr5", "ndcg5", "hr10", "ndcg10"):
        assert abs(clean_final(repo_root, "ml-1m", "fedmf", metric) - paper["ml-1m", "none", metric]) <= 0.01


def test_table3_steam_dense_row_data_poisoning_matches_the_paper(repo_root):
    """The measured cause of the Steam LabelFlip/FedAttack gap: attackers that upload a row
    for every item land within ±0.03 of the paper's LabelFlip/FedAttack on every metric."""
    t3 = pd.read_csv(repo_root / "docs" / "reproduction" / "steam-dense-3seeds" / "table3" / "table3.csv")
    dense = t3[(t3.dataset == "steam") & t3.attack.isin(["labelflip-dense", "fedattack-dense"])]
    assert len(dense) == 8 and (dense.seeds == 3).all()
    assert (dense["diff"].abs() <= 0.03).all(), dense[["attack", "metric", "diff"]]


UNTRAINED_HR10 = 0.10  # 10 of the 100 ranked items
NEAR_UNTRAINED_HR10 = UNTRAINED_HR10 + 0.05


@pytest.fixture(scope="module", params=["fig3", "fig3-steam", "fig3-ml-1m"])
def fig3(repo_root, request):
    path = repo_root / "docs" / "reproduction" / request.param / "fig3.csv"
    if not path.exists():
        pytest.skip(f"{path} not committed")
    df = pd.read_csv(path)
    return df[df.metric == "hr10"]


def test_fig3_omniscient_dense_breaks_every_defense_at_5pct(fig3):
    """RQ2: with 5% malicious clients Spattack-O-D drives every defense it was run against
    close to an untrained model."""
    for dataset, part in fig3.groupby("dataset"):
        cells = part[(part.attack == "spattack-o-d") & (part.ratio == 5)]
        assert {"mean", "median", "norm"} <= set(cells.defense), dataset
        assert (cells.ours < NEAR_UNTRAINED_HR10).all(), cells[["defense", "ours"]]


def test_fig3_limited_attacks_degrade_every_defense_as_rho_grows(fig3):
    """RQ2: under -L every defense gets worse as rho grows from 5% to 10% to 15%, until it
    is near an untrained model; from there on the values only wobble."""
    limited = fig3[fig3.attack.str.startswith("spattack-l")]
    for (dataset, attack, defense), line in limited.groupby(["dataset", "attack", "defense"]):
        values = line.sort_values("ratio").ours.tolist()
        assert len(values) == 3, (dataset, attack, defense, values)
        for before, after in zip(values, values[1:]):
            assert after < before or max(before, after) <= NEAR_UNTRAINED_HR10, (dataset, attack, defense, values)


def test_fig3_median_falls_further_than_mean_at_the_largest_ratio(fig3):
    """Sparse aggregation: at the largest ratio, Median ends below Mean under L-S, L-D and
    O-D, unless both are near an untrained model already, where neither can fall further.
    (Not under O-S: -O cancels Mean exactly on every attacked item whatever the number of
    attackers, while Median needs them to be the majority of the item's rows.)"""
    for dataset, part in fig3.groupby("dataset"):
        for attack in ("spattack-l-s", "spattack-l-d", "spattack-o-d"):
            cells = part[(part.attack == attack) & (part.ratio == part[part.attack == attack].ratio.max())]
            final = cells.set_index("defense").ours
            at_floor = max(final["median"], final["mean"]) <= NEAR_UNTRAINED_HR10
            assert final["median"] < final["mean"] or at_floor, (dataset, attack, final.to_dict())


@pytest.fixture(scope="module")
def fig4(repo_root):
    return pd.read_csv(repo_root / "docs" / "reproduction" / "fig4" / "fig4.csv")


def test_fig4_fedgnn_drops_dramatically_under_spattack(fig4):
    """RQ3: every Spattack variant costs FedGNN at least 45% of HR@10 and nDCG@10 against
    the clean run under the same aggregator; -L brings both aggregators to an untrained
    model's level."""
    assert set(fig4.dataset) == {"ml-100k", "ml-1m", "steam"}
    attacked = fig4[fig4.attack != "none"]
    assert len(attacked) == fig4.dataset.nunique() * 2 * 4 * 2  # datasets x aggregators x variants x metrics
    assert (attacked.drop_pct <= -45).all(), attacked[attacked.drop_pct > -45]
    limited = attacked[attacked.attack.str.startswith("spattack-l") & (attacked.metric == "hr10")]
    assert (limited.ours <= NEAR_UNTRAINED_HR10).all(), limited


# Where Median ends above Mean, reported in docs/reproduction/README.md (Fig. 4): under
# O-S, Mean is cancelled exactly on every attacked item, Median only where the attackers
# are the majority of the item's rows.
FIG4_MEDIAN_ABOVE_MEAN = {("ml-100k", "spattack-o-s")}


def test_fig4_spattack_is_more_effective_under_defense(fig4):
    """RQ3: 'Spattack can achieve more effective attacks under defense': the attacked model
    ends lower under Median than under Mean, on both metrics, except where both are at an
    untrained model's level (HR@10 <= NEAR_UNTRAINED_HR10) and the reported exception."""
    attacked = fig4[fig4.attack != "none"]
    final = attacked.pivot_table(index=["dataset", "attack"], columns=["metric", "defense"], values="ours")
    assert len(final) == fig4.dataset.nunique() * 4 and final.notna().all().all()
    above = final[("hr10", "median")] > final[("hr10", "mean")]
    above |= final[("ndcg10", "median")] > final[("ndcg10", "mean")]
    at_floor = final["hr10"].max(axis=1) <= NEAR_UNTRAINED_HR10
    assert set(final.index[above & ~at_floor]) == FIG4_MEDIAN_ABOVE_MEAN, final


def clean_final(repo_root, dataset, model, metric):
    """Mean over seeds 0-2 of a clean cell's final metric, from docs/reproduction/clean."""
    tag = "" if model == "fedmf" else f"-{model}"
    folder = repo_root / "docs" / "reproduction" / "clean"
    values = [json.loads((folder / f"{dataset}{tag}-seed{s}.summary.json").read_text())["final"][metric]
              for s in range(3)]
    return sum(values) / len(values)


@pytest.mark.parametrize("metric", ["hr5", "ndcg5", "hr10", "ndcg10"])
def test_clean_fedgnn_against_clean_fedmf(repo_root, metric):
    """#6: clean FedGNN beats clean FedMF on both datasets we can run (3 seeds)."""
    for dataset in ("ml-100k", "steam"):
        assert clean_final(repo_root, dataset, "fedgnn", metric) > clean_final(repo_root, dataset, "fedmf", metric)
