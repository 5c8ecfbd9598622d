"""Dataset analysis: statistics (Table 2), item-degree power law (Fig. 2(c)), Proposition 2.

Plots live in `spattack.analysis.plots` (imports matplotlib); everything else is light.
"""

from .degrees import PowerLawFit, fit_power_law, head_tail, prop2_table
from .stats import item_degrees, paper_table2, split_stats, table2
from .summary import load_summary, prop2_from_summaries, save_summary, summarise, table2_from_summaries
from .tables import markdown_table, write_table

__all__ = [
    "PowerLawFit", "fit_power_law", "head_tail", "prop2_table",
    "item_degrees", "paper_table2", "split_stats", "table2",
    "load_summary", "prop2_from_summaries", "save_summary", "summarise", "table2_from_summaries",
    "markdown_table", "write_table",
]
