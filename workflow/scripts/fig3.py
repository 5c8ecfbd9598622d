"""Fig. 3: Spattack against every defense, final HR@10 and nDCG@10 over the ratio."""

import sys

from spattack.registry import load_extensions
from spattack.reporting.captions import listing, percents, write_caption
from spattack.reporting.figures import fig3_data, plot_fig3, save_figure
from spattack.reporting.tables import runs_of
from spattack.runio import atomic_write_text

sm = snakemake  # noqa: F821
load_extensions(sm.config["extensions"])  # registry entries of the config's extension files
sys.stderr = open(sm.log[0], "w")
df = fig3_data(sm.input.summaries)
runs = runs_of(sm.input.summaries)
atomic_write_text(sm.output.csv, df.to_csv(index=False, float_format="%.6f"))
save_figure(plot_fig3(df, "hr10", sm.params.n_negatives, runs.header()), sm.output.hr_pdf, sm.output.hr_png)
save_figure(plot_fig3(df, "ndcg10", sm.params.n_negatives, runs.header()), sm.output.ndcg_pdf, sm.output.ndcg_png)
attacked = df[df.attack != "none"]
write_caption(sm.input.caption_template, sm.output.caption, runs=runs.header(), attacks=listing(attacked.attack),
              omniscient_ratios=percents(attacked[attacked.attack.str.startswith("spattack-o")].ratio),
              limited_ratios=percents(attacked[attacked.attack.str.startswith("spattack-l")].ratio))
