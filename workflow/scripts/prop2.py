"""Proposition 2: predicted lower bound vs measured share of breakable items (rule `prop2_build`)."""

import sys

from spattack.analysis import load_summary, prop2_from_summaries, write_table
from spattack.analysis.plots import plot_prop2, save_figure
from spattack.analysis.summary import PROP2_FORMATS

sm = snakemake  # noqa: F821  (injected by Snakemake)
sys.stderr = open(sm.log[0], "w", buffering=1)
items = [load_summary(s, d) for s, d in zip(sm.input.stats, sm.input.degrees)]
table = prop2_from_summaries(items, sm.params.alpha, list(sm.params.ratios))
write_table(table, sm.output.csv, sm.output.md, title="Proposition 2: breakable items", formats=PROP2_FORMATS,
            note="n_mal = int(n_benign * rho/(100-rho)) (authors' 6-decimal rho'); threshold x0 = (1-alpha)/alpha "
                 "* n_mal; bound = 1 - C/(beta-1) x0^(1-beta), valid only for x0 >= xmin; measured = share of all "
                 "items with degree < x0.")
save_figure(plot_prop2(table), sm.output.pdf, sm.output.png)
