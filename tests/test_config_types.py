"""The workflow's config is typed by its schema alone: strings become numbers only where
the schema asks for a number, whatever they look like."""

from pathlib import Path

import pytest
import yaml

from spattack.configtypes import given_text, typed_by_schema

SCHEMA = yaml.safe_load((Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml")
                        .read_text())
NUMBER_LIKE = ["nan", "inf", "-inf", "1e3", "0x10", "1_000", "3", "2.5", "Infinity"]


def instance(schema, leaf, root=SCHEMA):
    """A config with one value at every place the schema describes: `leaf(schema)` at
    the leaves, one entry per property and per list, through $ref."""
    while "$ref" in schema:
        schema = root["definitions"][schema["$ref"].rsplit("/", 1)[1]]
    if "properties" in schema:
        return {k: instance(v, leaf, root) for k, v in schema["properties"].items()}
    if isinstance(schema.get("additionalProperties"), dict):
        return {"ml-100k": instance(schema["additionalProperties"], leaf, root)}
    if "items" in schema:
        return [instance(schema["items"], leaf, root)]
    return leaf(schema)


def types_of(schema):
    t = schema.get("type", [])
    return {t} if isinstance(t, str) else set(t)


@pytest.mark.parametrize("text", NUMBER_LIKE)
def test_every_string_field_keeps_number_like_text(text):
    config = instance(SCHEMA, lambda s: text if "string" in types_of(s) else None)
    assert typed_by_schema(config, SCHEMA) == config
    assert config["experiments"]["table3"]["attacks"] == [text] and config["mirror"] == text


def test_every_number_field_reads_its_text_as_that_number():
    config = instance(SCHEMA, lambda s: "3" if types_of(s) & {"number", "integer"} else "text")
    typed = typed_by_schema(config, SCHEMA)
    numbers = []
    instance(SCHEMA, lambda s: numbers.append(s) if types_of(s) & {"number", "integer"} else None)
    assert len(numbers) >= 15
    assert typed["seeds"] == [3] and typed["epochs"] == 3 and typed["hyper"]["lr"] == 3
    assert typed["threads_by_dataset"] == {"ml-100k": 3} and typed["experiments"]["fig5"]["starts"] == [3]
    assert typed["analysis"]["ratios"] == [3] and typed["experiments"]["table3"]["ratio"] == 3
    assert typed["experiments"]["table3"]["attacks"] == ["text"] and typed["device"] == "text"


@pytest.mark.parametrize("path,text,expected", [
    (("hyper", "lr"), "1e-3", 1e-3), (("hyper", "init_std"), "1e-30", 1e-30),
    (("experiments", "table3", "ratio"), "2.5", 2.5), (("experiments", "table3", "ratio"), "3", 3),
    (("epochs",), "1_000", 1000), (("epochs",), "2.0", "2.0"), (("hyper", "eval_negatives"), "0x10", "0x10"),
])
def test_numbers_as_python_reads_them_and_the_rest_left_for_validation(path, text, expected):
    config = value = {}
    for key in path[:-1]:
        value = value.setdefault(key, {})
    value[path[-1]] = text
    typed = typed_by_schema(config, SCHEMA)
    for key in path:
        typed = typed[key]
    assert typed == expected and type(typed) is type(expected)


def test_values_that_are_already_typed_are_left_alone():
    config = {"seeds": [0, 1], "epochs": 20, "hyper": {"lr": 0.5}, "mirror": None}
    assert typed_by_schema(config, SCHEMA) == config


def test_given_text_keeps_the_text_of_top_level_scalars():
    args = ["mirror=1e3", "seeds=[0,1]", "steam_url=", "epochs=20", 'device="cuda:1"', "reference_splits=nan",
            "experiments={table3: {ratio: 3}}", "epochs=30"]
    assert given_text(args) == {"mirror": "1e3", "epochs": "30", "device": "cuda:1", "reference_splits": "nan"}
    assert given_text(None) == {}


def test_only_local_references_are_followed():
    with pytest.raises(ValueError, match="local"):
        typed_by_schema({"a": "1"}, {"properties": {"a": {"$ref": "other.yaml#/x"}}})


@pytest.mark.parametrize("text", ["null", "Null", "NULL", "~"])
def test_null_where_the_schema_allows_it(text):
    """`--config mirror=null` switches the mirror off, as `mirror: null` in a file does; a
    string field that does not allow null keeps the text (an attack called 'null' stays)."""
    assert typed_by_schema({"mirror": text, "reference_splits": text}, SCHEMA) == {"mirror": None,
                                                                                  "reference_splits": None}
    assert typed_by_schema({"experiments": {"table3": {"attacks": [text]}}}, SCHEMA)["experiments"] == {
        "table3": {"attacks": [text]}}
