"""Proposition 2: predicted lower bound vs measured share of breakable items (rule `prop2_build`)."""

from spattack.analysis import load_summary, prop2_from_summaries
from spattack.analysis.summary import PROP2_FORMATS
from spattack.provenance import Splits
from spattack.reporting.captions import listing, write_caption
from spattack.reporting.figures import plot_prop2, save_figure
from spattack.reporting.tables import write_table
from spattack.runio import start_job

sm = snakemake  # noqa: F821  (injected by Snakemake)
start_job(sm)
items = [load_summary(s, d) for s, d in zip(sm.input.stats, sm.input.degrees)]
data = Splits.from_summaries(s for s, _, _ in items).header()
table = prop2_from_summaries(items, sm.params.alpha, list(sm.params.ratios))
write_table(table, sm.output.csv, sm.output.md, title="Proposition 2: breakable items", formats=PROP2_FORMATS,
            source=data,
            note="n_mal = int(n_benign * rho/(100-rho)) (authors' 6-decimal rho'); threshold x0 = (1-alpha)/alpha "
                 "* n_mal; bound = 1 - C/(beta-1) x0^(1-beta), valid only for x0 >= xmin; measured = share of all "
                 "items with degree < x0.")
save_figure(plot_prop2(table, note=data), sm.output.pdf, sm.output.png)
write_caption(sm.input.caption_template, sm.output.caption, data=data, alpha=listing(table["alpha"]),
              ratios=listing(table["rho_pct"]))
