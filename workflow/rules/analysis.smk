# Dataset analysis: statistics (Table 2), degree distribution and power law (Fig. 2(c)),
# Proposition 2 bound vs measured share of breakable items.


rule dataset_stats:
    """Statistics of the split (and of the other split mode), item degrees, power-law fit."""
    input:
        extensions=extensions_of("dataset"),
        raw=f"{RESULTS}/raw/{{dataset}}",
        train=f"{RESULTS}/data/{{dataset}}/train.tsv",
        test=f"{RESULTS}/data/{{dataset}}/test.tsv",
        user_ids=f"{RESULTS}/data/{{dataset}}/users.tsv",
        item_ids=f"{RESULTS}/data/{{dataset}}/items.tsv",
    output:
        stats=f"{RESULTS}/analysis/{{dataset}}/stats.json",
        degrees=f"{RESULTS}/analysis/{{dataset}}/degrees.tsv",
    log:
        f"{LOGS}/analysis/{{dataset}}.log",
    conda:
        "../../envs/spattack.yaml"
    params:
        mode=config["split_mode"],
        head_degree=config["analysis"]["head_degree"],
    script:
        "../scripts/dataset_stats.py"


rule table2_build:
    input:
        extensions=config["extensions"],
        stats=analysis_files("stats.json"),
        caption_template=caption_template("table2"),
    output:
        csv=report(
            f"{RESULTS}/tables/table2.csv",
            caption=caption("table2"),
            category="Table 2",
        ),
        md=f"{RESULTS}/tables/table2.md",
        caption=f"{RESULTS}/report/table2.rst",
    log:
        f"{LOGS}/table2.log",
    conda:
        "../../envs/spattack.yaml"
    script:
        "../scripts/table2.py"


rule table2:
    """Table 2: dataset statistics next to the paper's."""
    input:
        rules.table2_build.output,


rule fig2c_build:
    input:
        extensions=config["extensions"],
        stats=analysis_files("stats.json"),
        degrees=analysis_files("degrees.tsv"),
        caption_template=caption_template("fig2c"),
    output:
        pdf=f"{RESULTS}/figures/fig2c.pdf",
        png=report(
            f"{RESULTS}/figures/fig2c.png",
            caption=caption("fig2c"),
            category="Fig. 2(c)",
        ),
        csv=report(
            f"{RESULTS}/tables/powerlaw.csv",
            caption=caption("fig2c"),
            category="Fig. 2(c)",
        ),
        md=f"{RESULTS}/tables/powerlaw.md",
        caption=f"{RESULTS}/report/fig2c.rst",
    log:
        f"{LOGS}/fig2c.log",
    conda:
        "../../envs/spattack.yaml"
    params:
        head_degree=config["analysis"]["head_degree"],
    script:
        "../scripts/fig2c.py"


rule fig2c:
    """Fig. 2(c): item-degree distribution, head vs tail, fitted power law (+ fit table)."""
    input:
        rules.fig2c_build.output,


rule prop2_build:
    input:
        extensions=config["extensions"],
        stats=analysis_files("stats.json"),
        degrees=analysis_files("degrees.tsv"),
        caption_template=caption_template("prop2"),
    output:
        csv=report(
            f"{RESULTS}/tables/prop2.csv",
            caption=caption("prop2"),
            category="Proposition 2",
        ),
        md=f"{RESULTS}/tables/prop2.md",
        pdf=f"{RESULTS}/figures/prop2.pdf",
        png=report(
            f"{RESULTS}/figures/prop2.png",
            caption=caption("prop2"),
            category="Proposition 2",
        ),
        caption=f"{RESULTS}/report/prop2.rst",
    log:
        f"{LOGS}/prop2.log",
    conda:
        "../../envs/spattack.yaml"
    params:
        alpha=config["analysis"]["alpha"],
        ratios=config["analysis"]["ratios"],
    script:
        "../scripts/prop2.py"


rule prop2:
    """Proposition 2: predicted lower bound vs measured share of breakable items."""
    input:
        rules.prop2_build.output,
