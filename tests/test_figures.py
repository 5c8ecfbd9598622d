"""Figures 3 and 5 from cell outputs."""

from spattack.reporting.figures import FIG5_PROTOCOL, fig3_data, fig5_data, plot_fig3, plot_fig5, save_figure
from spattack.reporting.tables import runs_of


def notes(fig):
    return [(" ".join(t.get_text().split()), t.get_color()) for t in fig.texts]


def test_fig3_tidy_data_and_plot(tmp_path, fake_cells):
    paths = [fake_cells.write(tmp_path, "ml-100k", "none", "mean", 0, hr10=0.4, epochs=3)]
    for defense in ("mean", "median", "krum"):
        for ratio, hr in ((1, 0.3), (3, 0.2), (5, 0.1)):
            for seed in (0, 1):
                paths.append(fake_cells.write(tmp_path, "ml-100k", "spattack-o-d", defense, ratio, seed=seed,
                                              hr10=hr + 0.01 * seed, epochs=3))
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


def test_fig5_curves(tmp_path, fake_cells):
    paths = [fake_cells.write(tmp_path, "steam", "none", "mean", 0, hr10=0.6, epochs=3, metrics=True)]
    for start in (0, 2):
        paths.append(fake_cells.write(tmp_path, "steam", "spattack-l-d", "mean", 10, start=start, hr10=0.2, epochs=3,
                                      metrics=True))
    df = fig5_data([p.with_name("metrics.csv") for p in paths])
    assert set(df.start) == {0, 2} and len(df) == 3 * 4
    assert set(df.epochs) == {"3"} and set(df.device) == {"cpu"}
    runs = runs_of(paths, FIG5_PROTOCOL)
    assert runs.departures == ("3 epochs (paper: 200)",)
    fig = plot_fig5(df, note=runs.header())
    assert "steam" not in notes(fig)[0][0] and "Steam; FedMF; 3 epochs" in notes(fig)[0][0]
    save_figure(fig, tmp_path / "g.png")
    assert (tmp_path / "g.png").stat().st_size > 10_000


def test_fig3_keeps_names_no_registry_has(tmp_path, fake_cells):
    """Results of an extension that is not loaded here (a defense, an attack, a dataset)
    are drawn under their own names, after the registered ones, not dropped."""
    paths = [fake_cells.write(tmp_path, "my-data", "none", "mean", 0)]
    for attack in ("spattack-o-d", "my-attack"):
        for defense in ("median", "my-defense"):
            paths += [fake_cells.write(tmp_path, "my-data", attack, defense, r, hr10=0.1 * r) for r in (1, 3)]
    fig = plot_fig3(fig3_data(paths))
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["my-data · Spattack O-D", "my-data · my-attack"]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["Median", "my-defense", "Clean (Mean)", "untrained"]
