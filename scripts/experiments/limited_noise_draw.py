"""Spattack-L with the noise matrix the authors' code draws on a GPU.

The authors' limited attacker calls `torch.manual_seed(0)` and then
`torch.normal(0, 1, size=(m_item, dim), device=args.device)`, so the matrix is the same
for every `--times` seed but depends on the device: on a GPU it comes from the CUDA
generator (Philox4_32_10), on a CPU from the CPU one. We have no GPU, so
`cuda_normal_after_seed` computes the CUDA draw on the CPU: PyTorch's CUDA `normal_`
for float32 gives element i the first Box-Muller output of thread i, whose curand state
is `curand_init(seed, subsequence=i, offset=0)`. That holds while the launch has a
thread per element (grid = min(ceil(numel / 256), SMs x blocks per SM)), true for
ML-100K's 1,682 x 32 matrix on any GPU with at least 211 resident 256-thread blocks
(V100, A100, RTX 20xx/30xx, H100, ...). A test checks the first values against a
published CUDA printout.

This runs Spattack-L cells of our code with our own matrix (`--noise ours`), with the
authors' CPU matrix (`authors-cpu`) or with their GPU matrix (`authors-gpu`);
`--attack none` runs the Clean cells the drops are taken against.

    python scripts/experiments/limited_noise_draw.py results/data/ml-100k --attack spattack-l-s \\
        --noise authors-gpu --seeds 0 1 2

Measured (ML-100K, Mean, 3%, 200 epochs, 1 thread, seeds 0-9; mean HR@10 and its drop
against Clean's 0.4047 over the same seeds; docs/reproduction/README.md, "Running the
authors' code"):
- L-S: ours 0.2419 (-40.2%), authors-cpu 0.2411 (-40.4%), authors-gpu 0.2384 (-41.1%);
  seed spread +-0.011-0.014 for each matrix.
- L-D: ours 0.1778 (-56.1%), authors-cpu 0.1704 (-57.9%), authors-gpu 0.1730 (-57.3%).
"""

import argparse

import numpy as np
import torch

from spattack.attacks import ATTACKS
from spattack.interactions import Interactions
from spattack.simulation import RunConfig, simulate

PHILOX_M = (0xD2511F53, 0xCD9E8D57)
PHILOX_W = (0x9E3779B9, 0xBB67AE85)
TWO_POW_32_INV = np.float32(2.3283064e-10)
TWO_POW_32_INV_2PI = np.float32(2.3283064e-10 * 6.2831855)


def philox4x32_10(counter: list[np.ndarray], key: tuple[int, int]) -> list[np.ndarray]:
    """curand's Philox4x32-10 block function, vectorised over counters (uint64 lanes
    holding 32-bit words)."""
    mask = np.uint64(0xFFFFFFFF)
    c = [w.astype(np.uint64) for w in counter]
    k0, k1 = np.uint64(key[0]), np.uint64(key[1])
    for _ in range(10):
        p0, p1 = np.uint64(PHILOX_M[0]) * c[0], np.uint64(PHILOX_M[1]) * c[2]
        c = [(p1 >> np.uint64(32)) ^ c[1] ^ k0, p1 & mask, (p0 >> np.uint64(32)) ^ c[3] ^ k1, p0 & mask]
        k0, k1 = (k0 + np.uint64(PHILOX_W[0])) & mask, (k1 + np.uint64(PHILOX_W[1])) & mask
    return c


def cuda_normal_after_seed(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    """What `torch.manual_seed(seed); torch.normal(0, 1, shape, device='cuda')` returns
    (float32, one thread per element; see the module docstring), up to the last bit of
    the GPU's log/sin."""
    numel = int(np.prod(shape))
    thread = np.arange(numel, dtype=np.uint64)
    zero = np.zeros(numel, dtype=np.uint64)
    x, y, _, _ = philox4x32_10([zero, zero, thread & np.uint64(0xFFFFFFFF), thread >> np.uint64(32)],
                               (seed & 0xFFFFFFFF, seed >> 32))
    u = x.astype(np.float32) * TWO_POW_32_INV + TWO_POW_32_INV / 2
    v = y.astype(np.float32) * TWO_POW_32_INV_2PI + TWO_POW_32_INV_2PI / 2
    first = np.sqrt(np.float32(-2) * np.log(u)) * np.sin(v)
    return torch.from_numpy(first.astype(np.float32)).reshape(shape)


def authors_noise(device: str, n_items: int, dim: int) -> torch.Tensor:
    """The authors' -L matrix: drawn after `torch.manual_seed(0)` on `device` ("cpu"/"gpu")."""
    if device == "gpu":
        return cuda_normal_after_seed(0, (n_items, dim))
    return torch.randn(n_items, dim, generator=torch.Generator().manual_seed(0))


def with_noise(base: type, noise: torch.Tensor) -> type:
    """The Spattack-L class `base` (`SpattackLS`, `SpattackLD`) whose attackers upload the
    rows of `noise` instead of its own draw."""

    class GivenNoise(base):
        def __init__(self, ctx):
            super().__init__(ctx)
            self.noise = noise.to(ctx.device)

    return GivenNoise


def run(data: Interactions, cfg: RunConfig, noise: torch.Tensor | None) -> dict:
    """One Spattack-L cell; with `noise`, the attackers upload its rows instead of ours
    (a Clean cell, `cfg.attack` "none", ignores it). Returns the final metrics and HR@10
    averaged over the last 20 epochs."""
    attack = None if noise is None or cfg.attack == "none" else with_noise(ATTACKS.entry(cfg.attack).cls, noise)
    result = simulate(data, cfg, progress=False, attack=attack)
    last = result.metrics[result.metrics["epoch"] > cfg.epochs - 20]
    return {**result.summary["final"], "hr10_last20": float(last["hr10"].mean())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("split", help="folder with train.tsv/test.tsv/users.tsv/items.tsv")
    p.add_argument("--attack", default="spattack-l-s", choices=["spattack-l-s", "spattack-l-d", "none"])
    p.add_argument("--noise", default="authors-gpu", choices=["ours", "authors-cpu", "authors-gpu"])
    p.add_argument("--ratio", type=float, default=3.0)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    data = Interactions.load(args.split)
    noise = None
    if args.noise != "ours":
        noise = authors_noise(args.noise.removeprefix("authors-"), data.n_items, RunConfig().dim)
    print(f"{args.attack}, noise {args.noise}")
    print("seed  hr5     ndcg5   hr10    ndcg10  hr10(last 20)")
    rows = []
    for seed in args.seeds:
        cfg = RunConfig(attack=args.attack, ratio=args.ratio, seed=seed, threads=args.threads)
        r = run(data, cfg, noise)
        rows.append(r)
        print(f"{seed:<5} {r['hr5']:.4f}  {r['ndcg5']:.4f}  {r['hr10']:.4f}  {r['ndcg10']:.4f}  "
              f"{r['hr10_last20']:.4f}", flush=True)
    if len(rows) > 1:
        for key in ("hr5", "ndcg5", "hr10", "ndcg10", "hr10_last20"):
            v = np.array([r[key] for r in rows])
            print(f"{key} over {len(rows)} seeds: mean {v.mean():.4f}, std {v.std(ddof=1):.4f}")


if __name__ == "__main__":
    main()
