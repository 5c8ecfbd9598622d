"""Train one cell of the grid (called by the `train` rule)."""

import sys

from spattack.interactions import Interactions
from spattack.runio import end_job, start_job, write_result
from spattack.simulation import RunConfig, simulate

sm = snakemake  # noqa: F821  (injected by Snakemake)
extensions = start_job(sm)
hyper = sm.params.hyper
cfg = RunConfig(
    model=sm.wildcards.model,
    attack=sm.wildcards.attack,
    defense=sm.wildcards.defense,
    ratio=float(sm.wildcards.ratio),
    start=int(sm.wildcards.start),
    seed=int(sm.wildcards.seed),
    epochs=sm.params.epochs,
    device=sm.params.device,
    threads=sm.threads,
    **hyper,
)
data = Interactions.load(sm.input.split.rsplit("/", 1)[0])
result = simulate(data, cfg)
result.summary = {"dataset": sm.wildcards.dataset, **result.summary}
if extensions:  # which code the names came from, beside code_version
    result.summary["extensions"] = extensions
write_result(result, sm.output.metrics, sm.output.summary)
final = result.summary["final"]
print(f"{result.summary['status']}: epoch {final['epoch']} hr10={final['hr10']:.4f} ndcg10={final['ndcg10']:.4f} "
      f"in {result.summary['wall_s']:.1f} s on {result.summary['device']}", file=sys.stderr)
end_job()  # skip Python's slow teardown of torch: the outputs are written
