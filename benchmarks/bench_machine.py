"""What this machine does per second, for the kernels' floors: memory copy bandwidth,
float32 GEMM throughput at Krum's shape (K = 32), and numpy's sort and partition per value
at row widths of the per-item kernels.

    python benchmarks/bench_machine.py --threads 2

Prints one Markdown row per measurement (median of 7 after a warm-up). Also the helpers the
other benchmarks share: `timed`, and `start_child` / `child_result` / `run_child`, which run
a measurement in a fresh Python process (its own threads, peak memory and imported version)
and read back the last line it prints, as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import numpy as np
import torch


def timed(fn, repeat: int = 7) -> float:
    """Median seconds of `repeat` calls of fn, after one untimed call."""
    fn()
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def start_child(*args, env: dict | None = None) -> subprocess.Popen:
    """Start `python ARGS...` in a fresh process; collect its result with `child_result`."""
    return subprocess.Popen([sys.executable, *map(str, args)], stdout=subprocess.PIPE, text=True, env=env)


def child_result(proc: subprocess.Popen):
    """The last line `proc` printed, parsed as JSON. Raises SystemExit if the process failed."""
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"a benchmark process failed (exit {proc.returncode}): {' '.join(proc.args)}")
    return json.loads(out.strip().splitlines()[-1])


def run_child(*args, env: dict | None = None):
    """`child_result(start_child(*args, env=env))`: one measurement in a fresh process."""
    return child_result(start_child(*args, env=env))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.threads} torch threads, numpy on one\n")
    print("| measurement | value |")
    print("|---|---:|")
    src = torch.randn(64 << 20)  # 256 MB
    dst = torch.empty_like(src)
    s = timed(lambda: dst.copy_(src))
    print(f"| copy 256 MB (read + write), into a reused buffer | {2 * src.numel() * 4 / s / 1e9:.1f} GB/s |")
    x = torch.randn(16, 512, 32)
    out = torch.empty(16, 512, 512)
    s = timed(lambda: torch.baddbmm(out, x, x.transpose(1, 2), beta=0, out=out))
    print(f"| float32 GEMM, 16 x (512 x 32) x (32 x 512) | {16 * 512 * 512 * 64 / s / 1e9:.0f} GFLOP/s |")
    for width in (128, 1024, 4096):
        a = np.random.rand((4 << 20) // width, width).astype(np.float32)
        sort = timed(lambda: np.sort(a, axis=1))
        part = timed(lambda: np.partition(a, width // 2, axis=1))
        print(f"| numpy sort, rows of {width} | {sort / a.size * 1e9:.2f} ns/value |")
        print(f"| numpy partition, rows of {width} | {part / a.size * 1e9:.2f} ns/value |")


if __name__ == "__main__":
    main()
