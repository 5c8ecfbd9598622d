"""Fig. 5: HR@10 per epoch when the attack starts at different epochs."""

from spattack.reporting.captions import listing, percents, write_caption
from spattack.reporting.figures import FIG5_PROTOCOL, fig5_data, plot_fig5, save_figure
from spattack.reporting.tables import runs_of
from spattack.runio import atomic_write_text, read_summary, start_job

sm = snakemake  # noqa: F821
start_job(sm)
df = fig5_data(sm.input.metrics)
runs = runs_of(sm.input.summaries, FIG5_PROTOCOL)
atomic_write_text(sm.output.csv, df.to_csv(index=False, float_format="%.6f"))
save_figure(plot_fig5(df, note=runs.header()), sm.output.pdf, sm.output.png)
cells = [read_summary(p)["config"] for p in sm.input.summaries]
attacked = [c for c in cells if c["attack"] != "none"]
write_caption(sm.input.caption_template, sm.output.caption, runs=runs.header(), dataset=listing(df.dataset),
              defense=listing(c["defense"] for c in cells), ratio=percents(c["ratio"] for c in attacked),
              attacks=listing(c["attack"] for c in attacked), starts=listing(c["start"] for c in attacked))
