"""Fig. 5: HR@10 per epoch when the attack starts at different epochs."""

import sys

from spattack.figures import fig5_data, plot_fig5, save_figure
from spattack.runio import atomic_write_text

sm = snakemake  # noqa: F821
sys.stderr = open(sm.log[0], "w")
df = fig5_data(sm.input.metrics)
atomic_write_text(sm.output.csv, df.to_csv(index=False, float_format="%.6f"))
save_figure(plot_fig5(df), sm.output.pdf, sm.output.png)
