# Dataset analysis: statistics (Table 2), degree distribution and power law (Fig. 2(c)),
# Proposition 2 bound vs measured share of breakable items.

ANALYSIS = {"head_degree": 200, "alpha": 0.5, "ratios": [1, 3, 5, 10, 15], **config.get("analysis", {})}


def _summaries(kind):
    return expand(f"{RESULTS}/analysis/{{dataset}}/{kind}", dataset=DATASETS)


rule dataset_stats:
    """Statistics of the split (and of the other split mode), item degrees, power-law fit."""
    input:
        raw=f"{RESULTS}/raw/{{dataset}}",
        train=f"{RESULTS}/data/{{dataset}}/train.tsv",
        test=f"{RESULTS}/data/{{dataset}}/test.tsv",
        user_ids=f"{RESULTS}/data/{{dataset}}/users.tsv",
        item_ids=f"{RESULTS}/data/{{dataset}}/items.tsv",
    output:
        stats=f"{RESULTS}/analysis/{{dataset}}/stats.json",
        degrees=f"{RESULTS}/analysis/{{dataset}}/degrees.tsv",
    params:
        mode=config["split_mode"],
        head_degree=ANALYSIS["head_degree"],
    log:
        f"{LOGS}/analysis/{{dataset}}.log",
    script:
        "../scripts/dataset_stats.py"


rule table2_build:
    input:
        stats=_summaries("stats.json"),
    output:
        csv=f"{RESULTS}/tables/table2.csv",
        md=f"{RESULTS}/tables/table2.md",
    log:
        f"{LOGS}/table2.log",
    script:
        "../scripts/table2.py"


rule table2:
    """Table 2: dataset statistics next to the paper's."""
    input:
        rules.table2_build.output,


rule fig2c_build:
    input:
        stats=_summaries("stats.json"),
        degrees=_summaries("degrees.tsv"),
    output:
        pdf=f"{RESULTS}/figures/fig2c.pdf",
        png=f"{RESULTS}/figures/fig2c.png",
        csv=f"{RESULTS}/tables/powerlaw.csv",
        md=f"{RESULTS}/tables/powerlaw.md",
    params:
        head_degree=ANALYSIS["head_degree"],
    log:
        f"{LOGS}/fig2c.log",
    script:
        "../scripts/fig2c.py"


rule fig2c:
    """Fig. 2(c): item-degree distribution, head vs tail, fitted power law (+ fit table)."""
    input:
        rules.fig2c_build.output,


rule prop2_build:
    input:
        stats=_summaries("stats.json"),
        degrees=_summaries("degrees.tsv"),
    output:
        csv=f"{RESULTS}/tables/prop2.csv",
        md=f"{RESULTS}/tables/prop2.md",
        pdf=f"{RESULTS}/figures/prop2.pdf",
        png=f"{RESULTS}/figures/prop2.png",
    params:
        alpha=ANALYSIS["alpha"],
        ratios=ANALYSIS["ratios"],
    log:
        f"{LOGS}/prop2.log",
    script:
        "../scripts/prop2.py"


rule prop2:
    """Proposition 2: predicted lower bound vs measured share of breakable items."""
    input:
        rules.prop2_build.output,
