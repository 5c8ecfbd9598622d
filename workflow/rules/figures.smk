# Tables and figures of the paper, each a named target, built from the cells' summaries.

T3 = config["experiments"]["table3"]
TABLE3_CELLS = cells(DATASETS, [T3["model"]], T3["attacks"], [T3["defense"]], [T3["ratio"]])


rule table3_build:
    input:
        summaries=[p.replace("metrics.csv", "summary.json") for p in TABLE3_CELLS],
        metrics=TABLE3_CELLS,
    output:
        csv=f"{RESULTS}/tables/table3.csv",
        md=f"{RESULTS}/tables/table3.md",
        tex=f"{RESULTS}/tables/table3.tex",
    params:
        attacks=T3["attacks"],
        datasets=["ml-100k", "ml-1m", "steam"],
    log:
        f"{LOGS}/table3.log",
    script:
        "../scripts/table3.py"


rule table3:
    input:
        rules.table3_build.output,
