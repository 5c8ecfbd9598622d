"""The defense benchmark's tidy data and heatmaps, from made-up cells."""

import numpy as np

from spattack.reporting.defenses import defense_benchmark, plot_defense_heatmap
from spattack.reporting.figures import save_figure


def test_tidy_data_relative_to_the_same_defenses_clean_run(tmp_path, fake_cells):
    paths = []
    for seed, noise in [(0, 0.0), (1, 0.02), (2, -0.02)]:
        for defense, clean in [("mean", 0.40), ("head_reputation", 0.50)]:
            paths.append(fake_cells.write(tmp_path, "steam", "none", defense, seed=seed, hr10=clean + noise))
            paths.append(fake_cells.write(tmp_path, "steam", "spattack-o-d", defense, 5, seed=seed,
                                          hr10=clean / 2 + noise))
    paths.append(fake_cells.write(tmp_path, "ml-100k", "spattack-o-d", "krum", 5, hr10=0.2))  # no clean run
    df = defense_benchmark(paths)
    assert list(df.dataset) == ["ml-100k", "steam", "steam", "steam", "steam"]
    row = df[(df.dataset == "steam") & (df.defense == "head_reputation") & (df.attack == "spattack-o-d")].iloc[0]
    assert row.seeds == 3 and np.isclose(row.hr10_mean, 0.25) and np.isclose(row.hr10_std, 0.02)
    assert np.isclose(row.clean_hr10, 0.50) and np.isclose(row.hr10_rel, 0.5)
    assert np.isclose(row.ndcg10_mean, 0.25 / 3)
    assert np.isnan(df[df.defense == "krum"].hr10_rel.iloc[0])
    fig = plot_defense_heatmap(df, "steam", note="made-up cells")
    labels = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "0.50" in labels and "0.500" in labels and "0.400" in labels  # relative and clean values
    save_figure(fig, tmp_path / "h.png")
    assert (tmp_path / "h.png").stat().st_size > 1000


def test_the_heatmap_title_says_what_a_blank_cell_means(tmp_path, fake_cells):
    paths = [fake_cells.write(tmp_path, "steam", "none", d, hr10=0.4) for d in ("mean", "krum")]
    paths.append(fake_cells.write(tmp_path, "steam", "spattack-o-d", "mean", 5, hr10=0.2))
    paths.append(fake_cells.write(tmp_path, "steam", "spattack-o-d", "krum", 5, hr10=0.1))
    full = plot_defense_heatmap(defense_benchmark(paths), "steam")
    paths.append(fake_cells.write(tmp_path, "steam", "spattack-o-s", "mean", 5, hr10=0.2))  # krum refuses -S
    blank = plot_defense_heatmap(defense_benchmark(paths), "steam")
    assert "blank" not in full._suptitle.get_text()
    assert blank._suptitle.get_text().endswith("blank: refused or not run")
