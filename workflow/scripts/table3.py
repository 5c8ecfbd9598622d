"""Table 3: every attack under Mean at 3% malicious clients, next to the paper."""

import sys

from spattack.runio import atomic_write_text
from spattack.tables import table3, table3_latex, table3_markdown

sm = snakemake  # noqa: F821
sys.stderr = open(sm.log[0], "w")
df = table3(sm.input.summaries, sm.params.datasets, sm.params.attacks,
            missing_reason="not run here (dataset not in config datasets)")
atomic_write_text(sm.output.csv, df.to_csv(index=False, float_format="%.4f"))
atomic_write_text(sm.output.md, table3_markdown(df))
atomic_write_text(sm.output.tex, table3_latex(df))
