"""Fig. 4: FedGNN under Spattack, No Defense (Mean) vs Defense (Median), final HR@10 and nDCG@10."""

import sys

from spattack.figures import fig4_data, plot_fig4, save_figure
from spattack.runio import atomic_write_text

sm = snakemake  # noqa: F821
sys.stderr = open(sm.log[0], "w")
df = fig4_data(sm.input.summaries)
atomic_write_text(sm.output.csv, df.to_csv(index=False, float_format="%.6f"))
save_figure(plot_fig4(df), sm.output.pdf, sm.output.png)
