"""Dataset analysis: statistics (Table 2), item-degree power law (Fig. 2(c)), Proposition 2.

Its tables and plots are drawn by `spattack.reporting`.
"""

from .degrees import PowerLawFit, fit_power_law, head_tail, prop2_table
from .stats import item_degrees, paper_table2, split_stats, table2
from .summary import load_summary, prop2_from_summaries, save_summary, summarise, table2_from_summaries

__all__ = [
    "PowerLawFit", "fit_power_law", "head_tail", "prop2_table",
    "item_degrees", "paper_table2", "split_stats", "table2",
    "load_summary", "prop2_from_summaries", "save_summary", "summarise", "table2_from_summaries",
]
