"""The workflow's configuration typed by its JSON schema, not by guesses.

Values given on the command line (`--config key=value`) reach the workflow as text:
Snakemake keeps nested values and list items as strings, and guesses a type for a
top-level value (`nan` and `1e3` become floats, `1_000` an integer). `given_text` recovers
the text of the top-level values, and `typed_by_schema` turns a string into a number only
where the schema asks for a number or an integer and does not also accept a string. So an
attack named `nan` stays a string, and `seeds=[0,1]` become integers, because the schema
says so (`workflow/schemas/config.schema.yaml`).
"""

from __future__ import annotations

from typing import Any, Iterable

import yaml


def given_text(config_args: Iterable[str] | None) -> dict[str, str]:
    """{key: text} of the `--config key=value` arguments whose value is one scalar.

    The text is the value as YAML's base loader reads it (surrounding quotes removed,
    nothing typed). Values that are a YAML list or mapping (`[0, 1]`, `{a: 1}`) and empty
    values (which Snakemake reads as null) are left out; for a key given twice the last
    one counts, as in Snakemake."""
    out = {}
    for arg in config_args or ():
        key, sep, value = arg.partition("=")
        if not sep or value == "":
            continue
        try:
            loaded = yaml.load(value, Loader=yaml.BaseLoader)
        except yaml.YAMLError:
            loaded = value
        if isinstance(loaded, str):
            out[key] = loaded
        else:
            out.pop(key, None)
    return out


def typed_by_schema(value: Any, schema: dict, root: dict | None = None) -> Any:
    """`value` with each string that sits where `schema` allows a number or an integer, but
    not a string, replaced by that number; everything else unchanged.

    The schema is walked along the value through `$ref` (local `#/...` pointers into
    `root`, by default `schema` itself), `properties`, `additionalProperties` and `items`.
    A string converts as Python reads it: to an integer with `int()` ('3', '-2', '1_000');
    to a number with `int()`, else `float()` (so '3' is the integer 3, and '2.5', '1e-3',
    'nan' and 'inf' are floats). Where the schema allows null, YAML's spellings of null
    ('null', 'Null', 'NULL', '~') become None (`--config mirror=null`). A string that does
    not convert is left as it is, for validation to report."""
    root = schema if root is None else root
    schema = _resolve(schema, root)
    if isinstance(value, str):
        return _as_number(value, schema.get("type", []))
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        other = schema.get("additionalProperties")
        other = other if isinstance(other, dict) else {}
        return {k: typed_by_schema(v, properties.get(k, other), root) for k, v in value.items()}
    if isinstance(value, list):
        items = schema.get("items")
        return [typed_by_schema(v, items if isinstance(items, dict) else {}, root) for v in value]
    return value


def _resolve(schema: dict, root: dict) -> dict:
    while "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local $ref pointers are supported, not {ref!r}")
        schema = root
        for part in ref[2:].split("/"):
            schema = schema[part.replace("~1", "/").replace("~0", "~")]
    return schema


def _as_number(text: str, types: str | list[str]) -> Any:
    types = [types] if isinstance(types, str) else types
    if "null" in types and text in ("null", "Null", "NULL", "~"):
        return None
    if "string" in types:
        return text
    readers = [int] if "integer" in types else []
    if "number" in types:
        readers = [int, float]
    for read in readers:
        try:
            return read(text)
        except ValueError:
            pass
    return text
