"""Reporting: every table and figure of the paper, from the results to the files.

`tables` (Table 2 and Table 3 next to the paper, and the CSV/Markdown writer), `figures`
(Fig. 2(c), Prop. 2, Figs. 3-5; imports matplotlib) and `captions` (the HTML report's
captions, filled from the runs). The analysis of the data stage is `spattack.analysis`.
"""
