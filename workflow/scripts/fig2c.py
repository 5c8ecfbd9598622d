"""Fig. 2(c): item-degree distributions with head/tail split and power-law fit (rule `fig2c_build`)."""

from spattack.analysis import load_summary
from spattack.analysis.summary import fit_table
from spattack.provenance import Splits
from spattack.reporting.captions import listing, write_caption
from spattack.reporting.figures import plot_degree_distribution, save_figure
from spattack.reporting.tables import write_table
from spattack.runio import start_job

sm = snakemake  # noqa: F821  (injected by Snakemake)
start_job(sm)
items = [load_summary(s, d) for s, d in zip(sm.input.stats, sm.input.degrees)]
data = Splits.from_summaries(s for s, _, _ in items).header()
fig = plot_degree_distribution({s["dataset"]: deg for s, deg, _ in items}, {s["dataset"]: f for s, _, f in items},
                               sm.params.head_degree, note=data)
save_figure(fig, sm.output.pdf, sm.output.png)
write_table(fit_table(items), sm.output.csv, sm.output.md, title="Power-law fit of item degrees", source=data,
            formats={"tail_share": "{:.2%}", "C": "{:.4g}", "xmin": "{:g}"},
            note="p(x) = C x^-beta for x >= xmin (discrete MLE, xmin by minimal KS distance, `powerlaw` package); "
                 "C = (beta-1) xmin^(beta-1) n_tail/n is normalised over all items, so C/(beta-1) x0^(1-beta) is "
                 "the share of all items with degree >= x0. tail_share = share of items with degree < head_degree.")
write_caption(sm.input.caption_template, sm.output.caption, data=data,
              head_degree=listing(s["head_tail"]["head_degree"] for s, _, _ in items))
