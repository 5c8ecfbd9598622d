"""Fig. 4: FedGNN under Spattack, No Defense (Mean) vs Defense (Median), final HR@10 and nDCG@10."""

from spattack.reporting.captions import percents, write_caption
from spattack.reporting.figures import FIG4_PROTOCOL, fig4_data, plot_fig4, save_figure
from spattack.reporting.tables import runs_of
from spattack.runio import atomic_write_text, start_job

sm = snakemake  # noqa: F821
start_job(sm)
df = fig4_data(sm.input.summaries)
runs = runs_of(sm.input.summaries, FIG4_PROTOCOL)
atomic_write_text(sm.output.csv, df.to_csv(index=False, float_format="%.6f"))
save_figure(plot_fig4(df, runs.header()), sm.output.pdf, sm.output.png)
write_caption(sm.input.caption_template, sm.output.caption, runs=runs.header(),
              ratio=percents(df[df.attack != "none"].ratio))
