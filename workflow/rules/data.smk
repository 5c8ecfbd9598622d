# Data stage: raw files (verified download or offline mirror) -> leave-one-out split.


rule download:
    """Verified raw files of one dataset (sha256-checked; see spattack.data.download).

    The source (mirror or URL) is read from the config by the script, not passed as
    params: where verified bytes came from must not make Snakemake redo every cell."""
    input:
        extensions=extensions_of("dataset"),
    output:
        directory(f"{RESULTS}/raw/{{dataset}}"),
    log:
        f"{LOGS}/download/{{dataset}}.log",
    conda:
        "../../envs/spattack.yaml"
    script:
        "../scripts/download.py"


rule split:
    """Leave-one-out split with 0-based ids (config split_mode: paper or correct)."""
    input:
        extensions=extensions_of("dataset"),
        raw=f"{RESULTS}/raw/{{dataset}}",
    output:
        train=f"{RESULTS}/data/{{dataset}}/train.tsv",
        test=f"{RESULTS}/data/{{dataset}}/test.tsv",
        user_ids=f"{RESULTS}/data/{{dataset}}/users.tsv",
        item_ids=f"{RESULTS}/data/{{dataset}}/items.tsv",
    log:
        f"{LOGS}/split/{{dataset}}.log",
    conda:
        "../../envs/spattack.yaml"
    params:
        mode=config["split_mode"],
    script:
        "../scripts/split.py"


if config["reference_splits"]:

    rule split_check:
        """Match rates of our splits against the authors' reference files."""
        input:
            extensions=config["extensions"],
            splits=expand(
                f"{RESULTS}/data/{{dataset}}/{{part}}.tsv",
                dataset=DATASETS,
                part=["train", "test", "users", "items"],
            ),
        output:
            csv=f"{RESULTS}/tables/split_match.csv",
            md=f"{RESULTS}/tables/split_match.md",
        log:
            f"{LOGS}/split_check.log",
        conda:
            "../../envs/spattack.yaml"
        params:
            reference=abs_or_none(config["reference_splits"]),
            datasets=DATASETS,
            mode=config["split_mode"],
        script:
            "../scripts/split_check.py"
