# The paper as a DAG: data -> analysis -> one training rule per cell -> tables and figures.
# Every table and figure is a named target: snakemake --cores 8 table2 fig2c prop2 ...


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/figures.smk"


rule all:
    default_target: True
    input:
        rules.table2.input,
        rules.fig2c.input,
        rules.prop2.input,
        rules.table3.input,
        rules.fig3.input,
        rules.fig4.input,
        rules.fig5.input,
