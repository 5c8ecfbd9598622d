# Tables and figures of the paper, each a named target, built from the cells' summaries;
# each build also fills in its report caption from them (workflow/report/<name>.rst).


rule table3_build:
    input:
        extensions=config["extensions"],
        summaries=summaries(table3_cells()),
        metrics=table3_cells(),
        caption_template=caption_template("table3"),
    output:
        csv=report(
            f"{RESULTS}/tables/table3.csv",
            caption=caption("table3"),
            category="Table 3",
        ),
        md=f"{RESULTS}/tables/table3.md",
        tex=f"{RESULTS}/tables/table3.tex",
        caption=f"{RESULTS}/report/table3.rst",
    log:
        f"{LOGS}/table3.log",
    conda:
        "../../envs/spattack.yaml"
    params:
        attacks=config["experiments"]["table3"]["attacks"],
        datasets=table3_datasets(),
    script:
        "../scripts/table3.py"


rule table3:
    input:
        rules.table3_build.output,


rule fig3_build:
    input:
        extensions=config["extensions"],
        metrics=fig3_cells(),
        summaries=summaries(fig3_cells()),
        caption_template=caption_template("fig3"),
    output:
        csv=report(
            f"{RESULTS}/tables/fig3.csv", caption=caption("fig3"), category="Fig. 3"
        ),
        hr_pdf=f"{RESULTS}/figures/fig3_hr10.pdf",
        hr_png=report(
            f"{RESULTS}/figures/fig3_hr10.png",
            caption=caption("fig3"),
            category="Fig. 3",
            subcategory="HR@10",
        ),
        ndcg_pdf=f"{RESULTS}/figures/fig3_ndcg10.pdf",
        ndcg_png=report(
            f"{RESULTS}/figures/fig3_ndcg10.png",
            caption=caption("fig3"),
            category="Fig. 3",
            subcategory="nDCG@10",
        ),
        caption=f"{RESULTS}/report/fig3.rst",
    log:
        f"{LOGS}/fig3.log",
    conda:
        "../../envs/spattack.yaml"
    params:
        n_negatives=config["hyper"]["eval_negatives"],
    script:
        "../scripts/fig3.py"


rule fig3:
    """Fig. 3: Spattack against every defense over the malicious ratio."""
    input:
        rules.fig3_build.output,


rule fig4_build:
    input:
        extensions=config["extensions"],
        metrics=fig4_cells(),
        summaries=summaries(fig4_cells()),
        caption_template=caption_template("fig4"),
    output:
        csv=report(
            f"{RESULTS}/tables/fig4.csv", caption=caption("fig4"), category="Fig. 4"
        ),
        pdf=f"{RESULTS}/figures/fig4.pdf",
        png=report(
            f"{RESULTS}/figures/fig4.png", caption=caption("fig4"), category="Fig. 4"
        ),
        caption=f"{RESULTS}/report/fig4.rst",
    log:
        f"{LOGS}/fig4.log",
    conda:
        "../../envs/spattack.yaml"
    script:
        "../scripts/fig4.py"


rule fig4:
    """Fig. 4: FedGNN under Spattack, No Defense (Mean) vs Defense (Median)."""
    input:
        rules.fig4_build.output,


rule fig5_build:
    input:
        extensions=config["extensions"],
        metrics=fig5_cells(),
        summaries=summaries(fig5_cells()),
        caption_template=caption_template("fig5"),
    output:
        csv=report(
            f"{RESULTS}/tables/fig5.csv", caption=caption("fig5"), category="Fig. 5"
        ),
        pdf=f"{RESULTS}/figures/fig5.pdf",
        png=report(
            f"{RESULTS}/figures/fig5.png", caption=caption("fig5"), category="Fig. 5"
        ),
        caption=f"{RESULTS}/report/fig5.rst",
    log:
        f"{LOGS}/fig5.log",
    conda:
        "../../envs/spattack.yaml"
    script:
        "../scripts/fig5.py"


rule fig5:
    """Fig. 5: convergence under attacks starting at different epochs."""
    input:
        rules.fig5_build.output,


rule defenses_build:
    input:
        extensions=config["extensions"],
        metrics=defenses_cells(),
        summaries=summaries(defenses_cells()),
        caption_template=caption_template("defenses"),
    output:
        csv=report(
            f"{RESULTS}/tables/defenses.csv",
            caption=caption("defenses"),
            category="Defense benchmark",
        ),
        md=f"{RESULTS}/tables/defenses.md",
        pdf=defenses_figures("pdf"),
        png=report(
            defenses_figures("png"),
            caption=caption("defenses"),
            category="Defense benchmark",
        ),
        caption=f"{RESULTS}/report/defenses.rst",
    log:
        f"{LOGS}/defenses.log",
    conda:
        "../../envs/spattack.yaml"
    params:
        datasets=config["experiments"]["defenses"]["datasets"],
    script:
        "../scripts/defenses.py"


rule defenses:
    """Beyond the paper: every aggregator against every attack, heatmaps and a tidy CSV."""
    input:
        rules.defenses_build.output,
