"""Report captions and the report's front page describe the runs behind each result, as
the build filled them in from the results' own data, never the configuration."""

import html
from string import Template

import pytest
from docutils.core import publish_parts
from jinja2 import Environment

from spattack.provenance import Runs
from spattack.reporting.captions import fill_caption, listing, percents

@pytest.fixture(scope="module")
def templates(repo_root):
    return {p.stem: p.read_text() for p in (repo_root / "workflow" / "report").glob("*.rst")}


def test_every_caption_starts_with_what_its_numbers_come_from(templates):
    captions = {name: text for name, text in templates.items() if name != "workflow"}
    assert set(captions) == {"table2", "fig2c", "prop2", "table3", "fig3", "fig4", "fig5", "defenses"}
    for name, text in captions.items():
        names = Template(text).get_identifiers()
        assert text.startswith(("$runs\n", "$data\n")), name
        filled = fill_caption(text, **{n: f"<{n}>" for n in names})
        assert "$" not in filled and ("<runs>" in filled or "<data>" in filled), name
    for name, text in templates.items():
        assert "snakemake.config" not in text, f"{name}.rst describes the configuration, not the runs"


def test_a_caption_needs_every_value_and_no_jinja():
    with pytest.raises(KeyError, match="ratio"):
        fill_caption("$runs at $ratio%", runs="x")
    with pytest.raises(ValueError, match="Jinja"):
        fill_caption("$runs", runs="{{ snakemake.config }}")
    assert listing([3.0, 1, 3.0]) == "1, 3" and listing(["spattack-o-d", "mean"]) == "Mean, O-D" and listing([]) == "–"


class Result:
    """What Snakemake's report hands the front page for each result: its name and its
    caption, rendered to HTML."""

    def __init__(self, name, caption_rst):
        self.name = name
        self.caption = publish_parts(caption_rst, writer="html")["body"]


def test_front_page_lists_each_result_with_its_runs(templates, fake_cells):
    runs = Runs.from_summaries([fake_cells.summary("steam", epochs=20)] * 8)
    table3 = fill_caption(templates["table3"], runs=runs.header(), model="FedMF", defense="Mean", ratio="3")
    fig3 = fill_caption(templates["fig3"], runs="**Runs.** From 3 runs.", attacks="O-D", omniscient_ratios="1",
                        limited_ratios="5")
    files = [Result("table3.csv", table3), Result("fig3.csv", fig3), Result("fig3_hr10.png", fig3)]
    env = Environment(trim_blocks=True, lstrip_blocks=True)  # as Snakemake's report renders it

    class Snakemake:
        config = {"epochs": 200, "seeds": [0], "datasets": ["ml-100k", "ml-1m", "steam"]}

    page = env.from_string(templates["workflow"]).render(snakemake=Snakemake, files=files, categories={})
    text = html.unescape(" ".join(publish_parts(page, writer="html")["html_body"].split()))
    assert (f'<tt class="docutils literal">table3.csv</tt>: Runs. {runs.sentence()} '
            "Not the paper's protocol: 20 epochs (paper: 200).</li>") in text
    assert text.count("From 3 runs.") == 1  # one line per caption, not per file
    assert "200 epochs" not in text and "ml-1m" not in text


def test_percents_say_when_no_cell_was_attacked():
    assert percents([3.0]) == "3%" and percents([5.0, 1, 3.0]) == "1, 3, 5%"
    assert percents([]) == "none (no attacked cell)"  # not "ρ = –%"
