"""Figures 3 and 5 from cell outputs."""

import json

import pandas as pd

from spattack.figures import fig3_data, fig5_data, plot_fig3, plot_fig5, save_figure


def fake_cell(root, dataset, attack, defense, ratio, start=0, seed=0, hr10=0.3, epochs=3):
    d = root / dataset / attack / defense / f"rho{ratio}" / f"start{start}" / f"seed{seed}"
    d.mkdir(parents=True)
    final = {"epoch": epochs, "hr5": hr10 / 2, "ndcg5": hr10 / 4, "hr10": hr10, "ndcg10": hr10 / 3}
    (d / "summary.json").write_text(json.dumps({
        "dataset": dataset, "status": "ok", "final": final,
        "config": {"model": "fedmf", "attack": attack, "defense": defense, "ratio": ratio, "start": start,
                   "seed": seed}}))
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
    save_figure(plot_fig3(df), tmp_path / "f.png", tmp_path / "f.pdf")
    assert (tmp_path / "f.png").stat().st_size > 10_000 and (tmp_path / "f.pdf").stat().st_size > 5_000


def test_fig5_curves(tmp_path):
    paths = [fake_cell(tmp_path, "steam", "none", "mean", 0, hr10=0.6) / "metrics.csv"]
    for start in (0, 2):
        paths.append(fake_cell(tmp_path, "steam", "spattack-l-d", "mean", 10, start=start, hr10=0.2) / "metrics.csv")
    df = fig5_data(paths)
    assert set(df.start) == {0, 2} and len(df) == 3 * 4
    save_figure(plot_fig5(df), tmp_path / "g.png")
    assert (tmp_path / "g.png").stat().st_size > 10_000
