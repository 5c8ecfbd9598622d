# One rule per experiment cell: (dataset, model, attack, defense, ratio, start, seed).


rule train:
    input:
        extensions=extensions_of("dataset", "model", "attack", "defense"),
        refused=no_refused_pair,
        split=f"{RESULTS}/data/{{dataset}}/train.tsv",
    output:
        metrics=f"{RESULTS}/runs/{{dataset}}/{{model}}/{{attack}}/{{defense}}/rho{{ratio}}/start{{start}}/seed{{seed}}/metrics.csv",
        summary=f"{RESULTS}/runs/{{dataset}}/{{model}}/{{attack}}/{{defense}}/rho{{ratio}}/start{{start}}/seed{{seed}}/summary.json",
    log:
        f"{LOGS}/train/{{dataset}}/{{model}}/{{attack}}/{{defense}}/rho{{ratio}}/start{{start}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{dataset}}/{{model}}/{{attack}}/{{defense}}/rho{{ratio}}/start{{start}}/seed{{seed}}.tsv"
    priority: lambda wc: cell_priority(wc.dataset, wc.defense)
    conda:
        "../../envs/spattack.yaml"
    threads: lambda wc: config["threads_by_dataset"].get(wc.dataset, config["threads"])
    resources:
        mem_mb=cell_resource("mem_mb"),
        runtime=cell_resource("runtime"),
        gpu=1 if config["device"].startswith("cuda") else 0,
    params:
        epochs=config["epochs"],
        hyper=config["hyper"],
        device=config["device"],
    script:
        "../scripts/train.py"


rule clean_runs:
    """Clean FedMF under Mean on every configured dataset (Table 3's Clean column)."""
    input:
        cells(DATASETS, ["fedmf"], ["none"], ["mean"], [0]),
