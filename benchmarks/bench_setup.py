"""What one training cell costs before its first epoch: interpreter and imports, reading the
split, building the model (pairs, negatives), the evaluator and the attack.

    python benchmarks/bench_setup.py results/data/ml-100k results/data/steam results/data/ml-1m

Each split runs in a fresh process, as a workflow job does. Prints one Markdown row per
split, in seconds.
"""

from __future__ import annotations

import sys
import time

from bench_machine import run_child

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import torch
from spattack.attacks import make_attack
from spattack.evaluation import Evaluator
from spattack.interactions import Interactions
from spattack.models import MODELS
from spattack.simulation import RunConfig, attack_context
t1 = time.perf_counter()
torch.set_num_threads(2)
data = Interactions.load(sys.argv[1])
t2 = time.perf_counter()
cfg = RunConfig(attack="spattack-o-d", ratio=3)
model = MODELS[cfg.model].factory(data, cfg.dim, cfg.init_std, cfg.l2, cfg.lr, cfg.seed, torch.device("cpu"))
t3 = time.perf_counter()
evaluator = Evaluator(data, cfg.eval_negatives, cfg.seed, torch.device("cpu"))
t4 = time.perf_counter()
make_attack(cfg.attack, attack_context(data, cfg, model, torch.device("cpu")))
t5 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "read": t2 - t1, "model": t3 - t2, "evaluator": t4 - t3, "attack": t5 - t4}))
"""


def main() -> None:
    print("| split | interpreter | imports | read split | model | evaluator | attack | total |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for split in sys.argv[1:]:
        start = time.perf_counter()
        r = run_child("-c", CHILD, split)
        total = time.perf_counter() - start
        interpreter = total - sum(r.values())
        print(f"| {split} | {interpreter:.2f} | {r['imports']:.2f} | {r['read']:.2f} | {r['model']:.2f} "
              f"| {r['evaluator']:.2f} | {r['attack']:.2f} | {total:.2f} |", flush=True)


if __name__ == "__main__":
    main()
