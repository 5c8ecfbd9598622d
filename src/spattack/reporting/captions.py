"""Captions of the HTML report, filled in by each table's or figure's build from its own data.

The templates are `workflow/report/*.rst`, reStructuredText with `$name` placeholders
(`string.Template`); a build fills them with what its inputs record (the runs' sentence
from `provenance`, the ratios and epochs of its cells) and writes the caption next to its
outputs, where the report rule points. So a caption describes the runs behind its
result, never the configuration in force when the report is made.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

from ..registry import label
from ..runio import atomic_write_text

# Snakemake renders every caption as a Jinja template once more
_JINJA = re.compile(r"\{\{|\{%|\{#")


def fill_caption(template: str, **values: object) -> str:
    """`template` with each `$name` replaced by `str(values[name])`.

    KeyError names a placeholder without a value; ValueError if the result holds Jinja
    markup ('{{', '{%', '{#'), which Snakemake's report would try to render."""
    text = Template(template).substitute({k: str(v) for k, v in values.items()})
    if _JINJA.search(text):
        raise ValueError(f"a caption must not contain Jinja markup: {text[:200]!r}")
    return text


def write_caption(template_path: str | Path, path: str | Path, **values: object) -> None:
    """Fill the template file `template_path` (`fill_caption`) and write it to `path` atomically."""
    atomic_write_text(path, fill_caption(Path(template_path).read_text(), **values))


def listing(values) -> str:
    """The distinct values, sorted and joined by ', ': numbers without a needless '.0',
    names by their labels ('FedMF', 'Mean', 'O-D'); '–' when there are none."""
    out = [f"{v:g}" if isinstance(v, float) else label(v, short=True) for v in sorted(set(values))]
    return ", ".join(out) or "–"


def percents(values) -> str:
    """Malicious ratios for a caption: '1, 3, 5%', or 'none (no attacked cell)' when there
    are none."""
    values = list(values)
    return f"{listing(values)}%" if values else "none (no attacked cell)"
