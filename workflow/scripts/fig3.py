"""Fig. 3: Spattack against every defense, final HR@10 and nDCG@10 over the ratio."""

from spattack.attacks import ATTACKS
from spattack.reporting.captions import listing, percents, write_caption
from spattack.reporting.figures import fig3_data, plot_fig3, save_figure
from spattack.reporting.tables import runs_of
from spattack.runio import atomic_write_text, start_job

sm = snakemake  # noqa: F821
start_job(sm)
df = fig3_data(sm.input.summaries)
runs = runs_of(sm.input.summaries)
atomic_write_text(sm.output.csv, df.to_csv(index=False, float_format="%.6f"))
save_figure(plot_fig3(df, "hr10", sm.params.n_negatives, runs.header()), sm.output.hr_pdf, sm.output.hr_png)
save_figure(plot_fig3(df, "ndcg10", sm.params.n_negatives, runs.header()), sm.output.ndcg_pdf, sm.output.ndcg_png)
attacked = df[df.attack != "none"]
omniscient = attacked.attack.map(lambda a: ATTACKS[a].omniscient).astype(bool)
write_caption(sm.input.caption_template, sm.output.caption, runs=runs.header(), attacks=listing(attacked.attack),
              omniscient_ratios=percents(attacked[omniscient].ratio),
              limited_ratios=percents(attacked[~omniscient].ratio))
