"""The hot kernels of one ML-1M epoch, timed through the library's stable API, so that two
versions of the code can be compared in one run.

    python benchmarks/bench_kernels.py --split results/data/ml-1m
    python benchmarks/bench_kernels.py --split results/data/ml-1m --base ../spattack-base/src

With --base, every kernel is timed in alternating fresh processes, the other version first
importing the library from that folder (e.g. a `git worktree add ../spattack-base <commit>`),
and the table gives both medians and their ratio. Kernels, on the uploads of round 4 of a
clean FedMF cell: the client step (`bpr_step`), each aggregator (f = 3% of the users for
trimmed mean, Krum and Multi-Krum), the evaluation, and a clean Mean epoch (client step, Mean and
evaluation); FedGNN's client step and evaluation, after three client steps. With
--attack, the aggregators run on round 4 of a FedMF cell under that attack at --ratio
percent (`simulation.attacked_round`, made once by this version: both versions
aggregate the same rows, the attackers' with their counts), f = the attackers' number:

    python benchmarks/bench_kernels.py --split results/data/ml-1m --kernels krum --attack spattack-o-d
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile

from bench_machine import run_child, timed

KERNELS = ["client_step", "mean", "median", "trimmed_mean", "krum", "multi_krum", "norm", "evaluate", "mean_epoch",
           "fedgnn_client_step", "fedgnn_evaluate"]


def measure(split: str, kernel: str, threads: int, repeat: int, round_file: str | None = None,
            ratio: float = 15.0) -> float:
    import torch

    from spattack.aggregators import aggregate
    from spattack.evaluation import Evaluator
    from spattack.fedmf import FedMF, bpr_step
    from spattack.interactions import Interactions
    from spattack.malicious import n_malicious

    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    try:  # this version's allocator setting, where it has one
        from spattack.device import keep_freed_memory
        keep_freed_memory()
    except ImportError:
        pass
    data = Interactions.load(split)
    evaluator = Evaluator(data, 99, 0, torch.device("cpu"))
    if kernel.startswith("fedgnn_"):
        from spattack.fedgnn import FedGNN

        gnn = FedGNN(data, 32, 0.01, 0.1, 0.01, 0, torch.device("cpu"))
        for _ in range(3):
            gnn.client_step()
        step = {"fedgnn_client_step": gnn.client_step, "fedgnn_evaluate": lambda: evaluator(gnn.scores)}[kernel]
        return timed(step, repeat)
    model = FedMF(data, 32, 0.01, 0.1, 0.01, 0, torch.device("cpu"))
    def client_step():  # this code returns (rows, None); the code before it (--base) the rows
        up = model.client_step()
        return up[0] if isinstance(up, tuple) else up

    for _ in range(3):
        up = client_step()
        model.server_step(aggregate("mean", up.items, up.grads, data.n_items))
    up = client_step()
    items, grads, counts = up.items.clone(), up.grads.clone(), None
    f = n_malicious(data.n_users, 3.0)
    if round_file:  # an attacked round, the same for both versions
        saved = torch.load(round_file)
        items, grads, counts, f = saved["items"], saved["grads"], saved["counts"], n_malicious(data.n_users, ratio)
    weighted = {} if counts is None else {"counts": counts}

    def epoch():
        u = client_step()
        model.server_step(aggregate("mean", u.items, u.grads, data.n_items))
        evaluator(model.scores)

    fns = {
        "client_step": lambda: bpr_step(model.user_emb, model.item_emb, model.pairs, 0.1),
        "evaluate": lambda: evaluator(model.scores),
        "mean_epoch": epoch,
    }
    for name in ("mean", "median", "trimmed_mean", "krum", "multi_krum", "norm"):
        params = {"f": f} if name in ("trimmed_mean", "krum", "multi_krum") else {}
        fns[name] = lambda name=name, params=params: aggregate(name, items, grads, data.n_items, **params, **weighted)
    return timed(fns[kernel], repeat)


def child(src: str | None, args, kernel: str) -> float:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    extra = ["--round", args.round, "--ratio", args.ratio] if args.round else []
    return run_child(__file__, "--split", args.split, "--threads", args.threads, "--repeat", args.repeat,
                     *extra, "--kernel", kernel, env=env)["seconds"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--split", required=True)
    p.add_argument("--base", help="src folder of another version to compare with")
    p.add_argument("--kernels", default=",".join(KERNELS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=5, help="timed calls per process (median)")
    p.add_argument("--pairs", type=int, default=3, help="processes per version and kernel (median)")
    p.add_argument("--attack", default="none", help="aggregators on round 4 of a cell under this attack")
    p.add_argument("--ratio", type=float, default=15.0, help="the attack's malicious percentage")
    p.add_argument("--kernel", help=argparse.SUPPRESS)  # child mode
    p.add_argument("--round", help=argparse.SUPPRESS)  # child mode: the attacked round's file
    args = p.parse_args()
    if args.kernel:
        print(json.dumps({"seconds": measure(args.split, args.kernel, args.threads, args.repeat, args.round,
                                             args.ratio)}))
        return
    with tempfile.TemporaryDirectory() as tmp:
        if args.attack != "none":  # made once, by this version: both versions aggregate the same rows
            import torch

            from spattack.interactions import Interactions
            from spattack.simulation import attacked_round

            up = attacked_round(Interactions.load(args.split), args.attack, args.ratio)
            args.round = os.path.join(tmp, "round.pt")
            torch.save({"items": up.items, "grads": up.grads, "counts": up.counts}, args.round)
        table(args)


def table(args) -> None:
    uploads = "clean" if args.attack == "none" else f"{args.attack} at {args.ratio}%"
    print(f"{args.split}, {uploads}, {args.threads} threads, median of {args.repeat} calls, "
          f"median of {args.pairs} processes\n")
    if args.base:
        print("| kernel | this version s | base s | base / this |")
        print("|---|---:|---:|---:|")
    else:
        print("| kernel | seconds |")
        print("|---|---:|")
    for kernel in args.kernels.split(","):
        this, base = [], []
        for _ in range(args.pairs):
            if args.base:
                base.append(child(args.base, args, kernel))
            this.append(child(None, args, kernel))
        t = statistics.median(this)
        if args.base:
            b = statistics.median(base)
            print(f"| {kernel} | {t:.4f} | {b:.4f} | {b / t:.2f} |", flush=True)
        else:
            print(f"| {kernel} | {t:.4f} |", flush=True)


if __name__ == "__main__":
    main()
