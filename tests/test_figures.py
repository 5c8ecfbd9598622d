"""Figures 3 and 5 from cell outputs."""

import json

import pandas as pd

from spattack.figures import FIG5_PROTOCOL, fig3_data, fig5_data, plot_fig3, plot_fig5, save_figure
from spattack.provenance import PAPER_PROTOCOL
from spattack.tables import runs_of

PAPER_HYPER = {k: v for k, v in PAPER_PROTOCOL.items() if k != "epochs"}


def notes(fig):
    return [(" ".join(t.get_text().split()), t.get_color()) for t in fig.texts]


def fake_cell(root, dataset, attack, defense, ratio, start=0, seed=0, hr10=0.3, epochs=3, device="cpu",
              code_version="0.1.0+g1234"):
    d = root / dataset / attack / defense / f"rho{ratio}" / f"start{start}" / f"seed{seed}"
    d.mkdir(parents=True)
    final = {"epoch": epochs, "hr5": hr10 / 2, "ndcg5": hr10 / 4, "hr10": hr10, "ndcg10": hr10 / 3}
    (d / "summary.json").write_text(json.dumps({
        "dataset": dataset, "status": "ok", "final": final, "device": device, "code_version": code_version,
        "config": {"model": "fedmf", "attack": attack, "defense": defense, "ratio": ratio, "start": start,
                   "seed": seed, "epochs": epochs, **PAPER_HYPER}}))
    pd.DataFrame({"epoch": range(epochs + 1), "hr5": 0.1, "ndcg5": 0.1, "hr10": hr10, "ndcg10": 0.1}).to_csv(
        d / "metrics.csv", index=False)
    return d


def test_fig3_tidy_data_and_plot(tmp_path):
    paths = [fake_cell(tmp_path, "ml-100k", "none", "mean", 0, hr10=0.4) / "summary.json"]
    for defense in ("mean", "median", "krum"):
        for ratio, hr in ((1, 0.3), (3, 0.2), (5, 0.1)):
            for seed in (0, 1):
                paths.append(fake_cell(tmp_path, "ml-100k", "spattack-o-d", defense, ratio, seed=seed,
                                       hr10=hr + 0.01 * seed) / "summary.json")
    df = fig3_data(paths)
    row = df[(df.defense == "krum") & (df.ratio == 3) & (df.metric == "hr10")].iloc[0]
    assert abs(row.ours - 0.205) < 1e-9 and row.seeds == 2
    assert (row.epochs, row.device, row.code_version) == ("3", "cpu", "0.1.0+g1234")
    runs = runs_of(paths)
    fig = plot_fig3(df, note=runs.header())
    [(text, color)] = notes(fig)
    assert "From 19 runs (their summary.json): ML-100K; FedMF; 3 epochs; seeds 0, 1" in text
    assert "Not the paper's protocol: 3 epochs (paper: 200)." in text and color == "#b00000"
    save_figure(fig, tmp_path / "f.png", tmp_path / "f.pdf")
    assert (tmp_path / "f.png").stat().st_size > 10_000 and (tmp_path / "f.pdf").stat().st_size > 5_000


def test_fig5_curves(tmp_path):
    paths = [fake_cell(tmp_path, "steam", "none", "mean", 0, hr10=0.6) / "metrics.csv"]
    for start in (0, 2):
        paths.append(fake_cell(tmp_path, "steam", "spattack-l-d", "mean", 10, start=start, hr10=0.2) / "metrics.csv")
    df = fig5_data(paths)
    assert set(df.start) == {0, 2} and len(df) == 3 * 4
    assert set(df.epochs) == {"3"} and set(df.device) == {"cpu"}
    runs = runs_of([p.with_name("summary.json") for p in paths], FIG5_PROTOCOL)
    assert runs.departures == ("3 epochs (paper: 200)",)
    fig = plot_fig5(df, note=runs.header())
    assert "steam" not in notes(fig)[0][0] and "Steam; FedMF; 3 epochs" in notes(fig)[0][0]
    save_figure(fig, tmp_path / "g.png")
    assert (tmp_path / "g.png").stat().st_size > 10_000
