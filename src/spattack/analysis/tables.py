"""Writing small result tables as CSV and GitHub-flavoured Markdown."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import pandas as pd

from ..runio import atomic_write_text

Formats = dict[str, str | Callable[[object], str]]


def _cell(value, fmt=None) -> str:
    """Text of one Markdown cell: thousands separators, 4 significant digits, '' for NA.

    `fmt` (a format string such as '{:.2f}' or a callable) overrides the default."""
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if fmt is not None:
        return fmt(value) if callable(fmt) else fmt.format(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    return str(value)


def markdown_table(df: pd.DataFrame, title: str | None = None, note: str | None = None,
                   formats: Formats | None = None, source: str | None = None) -> str:
    """`df` as a Markdown table with optional title, `source` (what the numbers come from,
    right under the title), note (under the table) and per-column `formats`."""
    formats = formats or {}
    header = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "|".join("---:" if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
                          else "---" for c in df.columns) + "|"
    rows = ["| " + " | ".join(_cell(v, formats.get(c)) for c, v in zip(df.columns, row)) + " |"
            for row in df.itertuples(index=False)]
    parts = ([f"## {title}", ""] if title else []) + ([source, ""] if source else []) + [header, rule, *rows]
    if note:
        parts += ["", note]
    return "\n".join(parts) + "\n"


def write_table(df: pd.DataFrame, csv_path: str | Path | None, md_path: str | Path | None = None,
                title: str | None = None, note: str | None = None, formats: Formats | None = None,
                md_columns: list[str] | None = None, source: str | None = None) -> None:
    """Write `df` to `csv_path` (all columns) and/or `md_path` (Markdown, `md_columns` only
    if given, `formats` per column, `source` under the title), each atomically; None skips
    a file."""
    if csv_path is not None:
        atomic_write_text(csv_path, df.to_csv(index=False))
    if md_path is not None:
        atomic_write_text(md_path, markdown_table(df[md_columns] if md_columns else df, title, note, formats, source))
