"""Tables built from cell summaries, and the paper's numbers we compare against."""

import re

import pytest

from spattack.paperdata import paper_table
from spattack.reporting.tables import METRIC_LABELS, TABLE3_PROTOCOL, runs_of, table3, table3_latex, table3_markdown


def test_table3_tidy_with_drop_and_missing_dataset(tmp_path, fake_cells):
    paths = [
        fake_cells.write(tmp_path, "ml-100k", "none", hr10=0.40),
        fake_cells.write(tmp_path, "ml-100k", "spattack-o-d", hr10=0.10),
        fake_cells.write(tmp_path, "ml-100k", "spattack-o-d", hr10=0.12, seed=1),
        fake_cells.write(tmp_path, "ml-100k", "fang", hr10=float("nan"), status="diverged"),
    ]
    df = table3(paths, ["ml-100k", "ml-1m"], ["none", "fang", "spattack-o-d"])
    assert list(df.columns[:8]) == ["dataset", "attack", "metric", "ours", "paper", "diff", "drop_pct", "paper_drop_pct"]
    assert len(df) == 2 * 3 * 4
    row = df[(df.dataset == "ml-100k") & (df.attack == "spattack-o-d") & (df.metric == "hr10")].iloc[0]
    assert row.ours == pytest.approx(0.11) and row.seeds == 2
    assert row.drop_pct == pytest.approx(-72.5)
    assert row.paper == pytest.approx(0.0944) and row["diff"] == pytest.approx(0.11 - 0.0944)
    assert (df[df.dataset == "ml-1m"].note == "not run here").all()
    assert (df[df.attack == "fang"].note[df.dataset == "ml-100k"] == "diverged").all()
    md, tex = table3_markdown(df), table3_latex(df)
    assert "diverged" in md and "not run here" in md and r"\toprule" in tex
    assert "0.1100 ± 0.0141 -72%" in md  # two seeds: mean ± std
    assert "0.4000 (" in md  # one seed: no spread


def test_table3_says_what_its_numbers_come_from_and_that_20_epochs_are_not_the_paper_s(tmp_path, fake_cells):
    """A quick grid's Table 3 next to the paper's 200-epoch numbers says so in its header."""
    paths = [fake_cells.write(tmp_path, ds, a, hr10=0.3, seed=seed, epochs=20, device="cpu", code_version="0.1.0+g1234")
             for ds in ("ml-100k", "steam") for a in ("none", "spattack-o-d") for seed in (0, 1)]
    df = table3(paths, ["ml-100k", "steam"], ["none", "spattack-o-d"])
    ran = df[df.ours.notna()]
    assert (ran.epochs == "20").all() and (ran.device == "cpu").all() and (ran.code_version == "0.1.0+g1234").all()
    runs = runs_of(paths, TABLE3_PROTOCOL)
    header = ("**Runs.** From 8 runs (their summary.json): ML-100K, Steam; FedMF; 20 epochs; seeds 0, 1; device cpu; "
              "code 0.1.0+g1234. **Not the paper's protocol: 20 epochs (paper: 200).**")
    assert table3_markdown(df, runs).startswith(header + "\n")
    tex = table3_latex(df, runs)
    assert tex.startswith("% From 8 runs (their summary.json)") and "% Not the paper's protocol" in tex
    assert r"\multicolumn{4}{l}{\emph{Not the paper's protocol: 20 epochs (paper: 200).}} \\" in tex
    assert tex.index(r"\multicolumn") < tex.index("Dataset & Metric")


def test_table3_at_the_paper_s_protocol_names_it_and_older_summaries_say_what_they_lack(tmp_path, fake_cells):
    paths = [fake_cells.write(tmp_path / "new", "ml-100k", "none", hr10=0.4, epochs=200, device="cuda:0",
                              code_version="0.1.0+g1234"),
             fake_cells.write(tmp_path / "new", "ml-100k", "fang", hr10=0.3, epochs=200, device="cuda:0",
                              code_version="0.1.0+g1234")]
    md = table3_markdown(table3(paths, ["ml-100k"], ["none", "fang"]), runs_of(paths, TABLE3_PROTOCOL))
    assert "device cuda:0" in md and "The paper's protocol: 200 epochs" in md and "Not the paper" not in md
    old = [fake_cells.write(tmp_path / "old", "ml-100k", "none", hr10=0.4, epochs=None, device=None, code_version=None,
                            hyper=None)]
    df = table3(old, ["ml-100k"], ["none"])
    assert (df.code_version == "not recorded").all()
    assert "**Not the paper's protocol: epochs not recorded" in table3_markdown(df, runs_of(old))


def test_table3_keeps_attacks_the_paper_does_not_have(tmp_path, fake_cells):
    paths = [fake_cells.write(tmp_path, "steam", "none", hr10=0.60),
             fake_cells.write(tmp_path, "steam", "labelflip-dense", hr10=0.54)]
    paths.append(fake_cells.write(tmp_path, "steam", "my-attack", hr10=0.30))
    df = table3(paths, ["steam"], ["none", "labelflip-dense", "my-attack"])
    extra = df[df.attack == "my-attack"]
    assert len(extra) == 4 and extra.paper.isna().all()
    assert extra[extra.metric == "hr10"].drop_pct.iloc[0] == pytest.approx(-50)
    assert "0.3000 -50% (–)" in table3_markdown(df)
    # another reading of a paper baseline is compared with the paper's number for it
    dense = df[(df.attack == "labelflip-dense") & (df.metric == "hr10")].iloc[0]
    assert dense.paper == pytest.approx(0.6429) and dense["diff"] == pytest.approx(0.54 - 0.6429)


@pytest.fixture(scope="module")
def paper_text(repo_root):
    paper_md = repo_root.parent / "shared" / "paper" / "spattack-aaai2025.md"
    if not paper_md.exists():
        pytest.skip(f"paper text not found at {paper_md}")
    return paper_md.read_text()


def test_table2_matches_the_paper_text(paper_text):
    t2 = paper_table("table2").set_index("dataset")
    assert "Steam\t3,753\t5,134\t114,713\t99.40 %" in paper_text and t2.loc["steam", "interactions"] == 114713


def test_every_table3_number_and_percentage_matches_the_paper_text(paper_text):
    """All 132 values and 120 drops of Table 3, parsed from the paper's text."""
    t3 = paper_table("table3")
    datasets = {"ML100K": "ml-100k", "ML1M": "ml-1m", "Steam": "steam"}
    metrics = {label: m for m, label in METRIC_LABELS.items()}
    attacks = list(dict.fromkeys(t3.attack))  # the paper's column order
    parsed, dataset = {}, None
    for line in paper_text.splitlines():
        fields = re.sub(r"</?b>", "", line).split("\t")
        if len(fields) != 2 + len(attacks) or fields[1] not in metrics:
            continue
        dataset = datasets.get(fields[0], dataset)
        for attack, cell in zip(attacks, fields[2:]):
            value, pct = re.fullmatch(r"([\d.]+)(?: \((-?\d+)%\))?", cell.strip()).groups()
            parsed[dataset, attack, metrics[fields[1]]] = (float(value), None if pct is None else float(pct))
    assert len(parsed) == len(t3) == 132
    for r in t3.itertuples():
        value, pct = parsed[r.dataset, r.attack, r.metric]
        assert r.paper == value, (r.dataset, r.attack, r.metric)
        assert (pct is None and r.paper_drop_pct != r.paper_drop_pct) or r.paper_drop_pct == pct
