"""One federated training run (a cell of the paper's grid), epoch by epoch."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from .aggregators import DEFENSES, DefenseSpec, aggregate_uploads
from .attacks import Attack, AttackContext, make_attack
from .device import keep_freed_memory, make_deterministic, resolve_device
from .evaluation import METRICS, Evaluator
from .fedmf import FedMF
from .interactions import Interactions
from .malicious import n_malicious
from .models import MODELS, FederatedModel, ModelFactory
from .provenance import code_version
from .updates import SparseUpdates


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one cell. Defaults are the paper's hyper-parameters."""

    model: str = "fedmf"
    attack: str = "none"
    defense: str = "mean"
    ratio: float = 0.0  # the paper's malicious percentage rho
    start: int = 0  # first epoch in which malicious clients upload
    seed: int = 0
    epochs: int = 200
    dim: int = 32
    lr: float = 0.01
    l2: float = 0.1
    init_std: float = 0.01
    grad_limit: float = 1.0
    eval_negatives: int = 99
    eval_every: int = 1
    device: str = "auto"
    threads: int | None = None
    defense_f: int | None = None  # malicious clients the defense assumes; None = the real count


@dataclass
class EpochTimes:
    """Seconds spent per stage, summed over epochs."""

    client: float = 0.0
    attack: float = 0.0
    aggregate: float = 0.0
    evaluate: float = 0.0
    epochs: int = 0
    first: dict[str, float] | None = None  # epoch 1 alone: it also pays one-time costs (buffers, caches)

    def per_epoch(self) -> dict[str, float]:
        n = max(self.epochs, 1)
        return {k: v / n for k, v in asdict(self).items() if k not in ("epochs", "first")}

    def end_epoch(self) -> None:
        if self.first is None:
            self.first = self.per_epoch()


@dataclass
class RunResult:
    """Per-epoch metrics (epoch 0 = init) and a summary of the run."""

    metrics: pd.DataFrame
    summary: dict = field(default_factory=dict)


@contextmanager
def _timed(times: EpochTimes, name: str, device: torch.device):
    """Add the wall time of the block to `times.<name>` (waiting for CUDA first)."""
    t0 = time.perf_counter()
    yield
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    setattr(times, name, getattr(times, name) + time.perf_counter() - t0)


def attack_context(data: Interactions, cfg: RunConfig, model, device: torch.device,
                   defense: DefenseSpec | None = None, attacked: bool | None = None) -> AttackContext:
    """What the attack of `cfg` knows about the run: sizes, popularity, defense, seed.

    `defense`: the defense in use (default: the one `cfg.defense` names); `attacked`:
    whether malicious clients take part (default: `cfg.attack` is not "none")."""
    defense = DEFENSES.entry(cfg.defense) if defense is None else defense
    attacked = cfg.attack != "none" if attacked is None else attacked
    n_mal = n_malicious(data.n_users, cfg.ratio) if attacked else 0
    return AttackContext(
        n_benign=data.n_users, n_malicious=n_mal, n_items=data.n_items, dim=cfg.dim,
        popularity=data.popularity, max_items_per_client=model.pairs.max_items_per_client,
        profile_size=int(np.median(data.train_counts)), defense=cfg.defense, grad_limit=cfg.grad_limit,
        lr=cfg.lr, l2=cfg.l2, init_std=cfg.init_std, seed=cfg.seed + 1000, device=device,
        dense_dim=getattr(model, "dense_dim", 0), clips="clip" in defense.params)


def attacked_round(data: Interactions, attack: str, ratio: float, epochs: int = 3) -> SparseUpdates:
    """The uploads of round `epochs + 1` of a CPU FedMF cell under Mean (paper's
    hyper-parameters, seed 0) with `attack` at `ratio` percent: benign rows and the
    attack's, rows shared by every attacker once with their count. For benchmarks and
    device checks of the aggregators on attacked rounds."""
    cfg = RunConfig(attack=attack, ratio=ratio)
    model = FedMF(data, cfg.dim, cfg.init_std, cfg.l2, cfg.lr, 0, torch.device("cpu"))
    attacker = make_attack(attack, attack_context(data, cfg, model, torch.device("cpu")))
    for epoch in range(1, epochs + 2):
        benign = model.client_step()[0]
        uploads = SparseUpdates.concat(benign, attacker.uploads(epoch, benign, model))
        if epoch <= epochs:
            model.server_step(aggregate_uploads("mean", uploads, data.n_items))
    return SparseUpdates(uploads.clients, uploads.items.clone(), uploads.grads.clone(),
                         None if uploads.counts is None else uploads.counts.clone())


def _built(part, method: str, *args):
    """`part` itself if it is an object with `method`, else the factory's `part(*args)`."""
    return part if hasattr(part, method) and not isinstance(part, type) else part(*args)


def simulate(data: Interactions, cfg: RunConfig, progress: bool = True, *,
             model: FederatedModel | ModelFactory | None = None,
             attack: Attack | Callable[[AttackContext], Attack] | None = None,
             defense: DefenseSpec | Callable[..., torch.Tensor] | None = None) -> RunResult:
    """Train `cfg.model` on `data` under `cfg.attack` and `cfg.defense`.

    The parts are found by name in the registries (`models.MODELS`, `attacks.ATTACKS`,
    `aggregators.DEFENSES`) unless given: `model` a `FederatedModel` or a factory called
    like a `ModelSpec.factory`; `attack` an `Attack` or a factory taking the
    `AttackContext` (malicious clients then take part whatever `cfg.attack` says, from
    epoch `cfg.start` on, `cfg.ratio` percent of the benign count); `defense` a
    `DefenseSpec` or a bare aggregator `(items, grads, n_items, counts=None) -> (n_items,
    d)`. The names in `cfg` then only label the run. Raises ValueError for an unknown name,
    for a (defense, attack) pair the defense refuses (`attacks.refusal`; checked when both
    are given by name: an injected part declares nothing), and for an attack without
    `dense_uploads` on a model with dense weights.

    Each epoch: all benign clients take their local step at once; from epoch
    `cfg.start` on, the attack appends its malicious rows; the server aggregates every
    item over the rows received for it and steps. Evaluated at init, every
    `eval_every` epochs and at the last epoch. A run whose model becomes non-finite
    stops with status "diverged" instead of carrying NaNs on. Sets the process's
    allocator to keep freed memory (`device.keep_freed_memory`).
    """
    device = resolve_device(cfg.device)
    make_deterministic(device, cfg.threads)
    keep_freed_memory()
    started = time.perf_counter()
    if defense is None:
        defense = DEFENSES.entry(cfg.defense)
    elif not isinstance(defense, DefenseSpec):  # a bare aggregator sees rows only, one instance for the run
        defense = DefenseSpec(defense, cfg.defense)
    if model is None:
        model = MODELS.entry(cfg.model).factory
    model = _built(model, "client_step", data, cfg.dim, cfg.init_std, cfg.l2, cfg.lr, cfg.seed, device)
    ctx = attack_context(data, cfg, model, device, defense, attacked=attack is not None or cfg.attack != "none")
    n_mal = ctx.n_malicious
    attack = make_attack(cfg.attack, ctx) if attack is None else _built(attack, "uploads", ctx)
    if n_mal and ctx.dense_dim and not hasattr(attack, "dense_uploads"):
        raise ValueError(f"{cfg.model} has dense weights, which every client uploads too: attack "
                         f"{type(attack).__name__} needs a dense_uploads(epoch, benign_dense, model) method "
                         f"(attacks module docstring)")
    quantities = {"f": n_mal if cfg.defense_f is None else cfg.defense_f, "clip": cfg.grad_limit}
    aggregate_items, aggregate_dense = defense.for_run(**quantities), defense.for_run(**quantities)
    evaluator = Evaluator(data, cfg.eval_negatives, cfg.seed + 2000, device)
    times = EpochTimes()
    clock = partial(_timed, times, device=device)

    rows = [{"epoch": 0, **evaluator(model.scores)}]
    room = 0
    status, diverged_epoch = "ok", None
    bar = tqdm(range(1, cfg.epochs + 1), desc=f"{cfg.model}/{cfg.attack}/{cfg.defense}/rho{cfg.ratio}",
               file=sys.stderr, disable=not progress, mininterval=2.0)
    for epoch in bar:
        with torch.no_grad():
            with clock("client"):
                # models with dense weights (FedGNN) also return one dense row per client,
                # all of "item" 0; attacked and aggregated with the same attack and defense
                uploads, dense = model.client_step(room=room)
            if n_mal and epoch > cfg.start:
                with clock("attack"):
                    malicious = attack.uploads(epoch, uploads, model)
                    room = max(room, len(malicious))  # appended without a copy from the next epoch on
                    uploads = SparseUpdates.concat(uploads, malicious)
                    if dense is not None:
                        dense = SparseUpdates.concat(dense, attack.dense_uploads(epoch, dense, model))
            with clock("aggregate"):
                model.server_step(aggregate_items(uploads, data.n_items))
                if dense is not None:
                    model.dense_step(aggregate_dense(dense, 1)[0])
            times.epochs += 1
            if not (torch.isfinite(model.item_emb).all() and torch.isfinite(model.user_emb).all()
                    and (dense is None or torch.isfinite(model.dense).all())):
                status, diverged_epoch = "diverged", epoch
                bar.write(f"epoch {epoch}: the model became non-finite (NaN/inf); stopping this run as diverged",
                          file=sys.stderr)
                break
            if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
                with clock("evaluate"):
                    rows.append({"epoch": epoch, **evaluator(model.scores)})
                bar.set_postfix(hr10=f"{rows[-1]['hr10']:.4f}", ndcg10=f"{rows[-1]['ndcg10']:.4f}", refresh=False)
            times.end_epoch()
    bar.close()

    metrics = pd.DataFrame(rows, columns=["epoch", *METRICS])
    best = metrics.loc[metrics["hr10"].idxmax()]
    final = metrics.iloc[-1]
    summary = {
        "status": status,
        "diverged_epoch": diverged_epoch,
        "final": {"epoch": int(final["epoch"]), **{m: float(final[m]) for m in METRICS}},
        "best_hr10": {"epoch": int(best["epoch"]), **{m: float(best[m]) for m in METRICS}},
        "n_benign": data.n_users,
        "n_malicious": n_mal,
        "n_items": data.n_items,
        "wall_s": time.perf_counter() - started,
        "seconds_per_epoch": times.per_epoch(),
        "seconds_first_epoch": times.first,
        "device": str(device),
        "code_version": code_version(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_gpu_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
        "config": asdict(cfg),
    }
    return RunResult(metrics, summary)
