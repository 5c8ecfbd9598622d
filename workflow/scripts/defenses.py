"""The defense benchmark: tidy CSV and Markdown, one heatmap per dataset."""

from spattack.reporting.captions import listing, percents, write_caption
from spattack.reporting.defenses import defense_benchmark, plot_defense_heatmap
from spattack.reporting.figures import save_figure
from spattack.reporting.tables import markdown_table, runs_of
from spattack.runio import atomic_write_text, start_job

sm = snakemake  # noqa: F821
start_job(sm)
df = defense_benchmark(sm.input.summaries)
runs = runs_of(sm.input.summaries)
atomic_write_text(sm.output.csv, df.to_csv(index=False, float_format="%.6f"))
shown = df[["dataset", "defense", "attack", "seeds", "hr10_mean", "hr10_std", "clean_hr10", "hr10_rel"]]
formats = {c: "{:.4f}" for c in ["hr10_mean", "hr10_std", "clean_hr10"]} | {"hr10_rel": "{:.2f}"}
atomic_write_text(sm.output.md, markdown_table(shown, "Defense benchmark: final HR@10", runs.header(), formats))
for dataset, pdf, png in zip(sm.params.datasets, sm.output.pdf, sm.output.png):
    save_figure(plot_defense_heatmap(df, dataset, runs.header()), pdf, png)
write_caption(sm.input.caption_template, sm.output.caption, runs=runs.header(),
              ratio=percents(df[df.attack != "none"].ratio), seeds=listing(df.seeds))
