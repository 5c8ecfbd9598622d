"""Table 3: every attack under Mean at 3% malicious clients, next to the paper."""

from spattack.reporting.captions import listing, percents, write_caption
from spattack.reporting.tables import TABLE3_PROTOCOL, runs_of, table3, table3_latex, table3_markdown
from spattack.runio import atomic_write_text, read_summary, start_job

sm = snakemake  # noqa: F821
start_job(sm)
df = table3(sm.input.summaries, sm.params.datasets, sm.params.attacks,
            missing_reason="not run here (dataset not in config datasets)")
runs = runs_of(sm.input.summaries, TABLE3_PROTOCOL)
atomic_write_text(sm.output.csv, df.to_csv(index=False, float_format="%.4f"))
atomic_write_text(sm.output.md, table3_markdown(df, runs))
atomic_write_text(sm.output.tex, table3_latex(df, runs))
cells = [read_summary(p)["config"] for p in sm.input.summaries]
write_caption(sm.input.caption_template, sm.output.caption, runs=runs.header(),
              model=listing(c["model"] for c in cells), defense=listing(c["defense"] for c in cells),
              ratio=percents(c["ratio"] for c in cells if c["attack"] != "none"))
