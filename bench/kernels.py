"""Benchmark: the compiled ratio kernel and the chunked log-probs, each against its naive twin, measured in one run.

1. Speed: forward + backward of the GRPO ratio loss (``clipped_surrogate`` + ``aggregate`` + ``backward``) with the
   ``torch.compile``'d kernel vs the eager kernel, at (N, T) = (64, 256) and (256, 1024), on 2 threads (headline)
   and on 1 thread (cross-check: on a loaded machine, 2-thread eager kernels lose most to contention).
   Median of repeated timings after warm-up; the one-off compile time is reported separately. Goal: >= 2x on the
   larger shape. Inductor caches compiled code in ``TORCHINDUCTOR_CACHE_DIR`` (torch's default
   ``/tmp/torchinductor_<user>`` when unset; this script only prints it): a warm cache turns a ~20 s cold compile
   into ~2 s.
2. Memory: peak extra memory of ``token_logprobs`` (chunked, default chunk) vs the naive
   ``log_softmax(logits.float()).gather(...)`` at V = 32000, N*T = 8192 (fp32 logits of 1 GiB). Each variant runs
   in a fresh subprocess; the Linux peak-RSS counter (VmHWM) is reset through ``/proc/self/clear_refs`` right
   before the call, and "peak extra" = VmHWM after - VmRSS before: what the OS actually had to provide. The children
   run with ``MALLOC_MMAP_THRESHOLD_=131072`` so that glibc returns freed tensor blocks at once (by default it may
   keep up to ~1 GiB of freed 32 MiB chunks cached in its arenas, which RSS would count and which varies from run
   to run). Measured for the forward (logits require grad, so
   whatever autograd saves counts) and for forward + backward (both then also hold the 1 GiB ``logits.grad``).
   Goal: forward peak <= 1/8 of naive.

Usage: ``.venv/bin/python bench/kernels.py [--repeats 20]``. The last two lines are the two headline figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SHAPES = ((64, 256), (256, 1024))
VOCAB, ROWS = 32000, 8192  # memory benchmark: N * T = 8192 positions (16 x 512)
# glibc otherwise keeps freed blocks (a dynamic mmap threshold and per-thread arenas) and RSS then reports
# allocator caching that varies run to run; a fixed threshold gives every block >= 128 KiB its own mapping,
# returned on free, so RSS follows live memory. Both variants run under the same setting.
CHILD_ENV = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}


def _batch(n: int, t: int):
    import torch

    gen = torch.Generator().manual_seed(0)
    old = -torch.rand(n, t, generator=gen) * 3
    logprobs = (old + 0.3 * torch.randn(n, t, generator=gen)).requires_grad_()
    lengths = torch.randint(1, t + 1, (n,), generator=gen)
    mask = torch.arange(t).unsqueeze(0) < lengths.unsqueeze(1)
    return logprobs, old, torch.randn(n, generator=gen), mask


def _step(batch, compile: bool) -> None:
    from rl_distill.core.kernels import clipped_surrogate
    from rl_distill.core.masked import aggregate

    logprobs, old, adv, mask = batch
    out = clipped_surrogate(logprobs, old, old, adv, mask, compile=compile)
    loss = -aggregate(out.surrogate, mask)
    loss.backward()
    logprobs.grad = None


def _median_ms(batch, compile: bool, repeats: int) -> float:
    inner = 5
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            _step(batch, compile)
        samples.append((time.perf_counter() - start) / inner * 1e3)
    return statistics.median(samples)


def bench_speed(repeats: int, threads: int) -> dict[tuple[int, int], float]:
    import torch

    torch.set_num_threads(threads)
    ratios = {}
    for n, t in SHAPES:
        batch = _batch(n, t)
        start = time.perf_counter()
        _step(batch, compile=True)  # compiles on the first call only (dynamic shapes)
        compile_s = time.perf_counter() - start
        for _ in range(3):  # warm-up
            _step(batch, True)
            _step(batch, False)
        eager = _median_ms(batch, False, repeats)
        compiled = _median_ms(batch, True, repeats)
        ratios[(n, t)] = eager / compiled
        print(f"ratio loss fwd+bwd (N, T) = ({n}, {t}), {threads} thread(s): eager {eager:.3f} ms, compiled "
              f"{compiled:.3f} ms, speed-up {eager / compiled:.2f}x (first compiled call {compile_s:.1f} s)")
    return ratios


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(variant: str, backward: bool) -> None:
    """Run one variant in this (fresh) process and print its peak extra memory in MiB as JSON."""
    import torch

    from rl_distill.core.logprobs import token_logprobs

    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(ROWS, VOCAB, generator=gen).requires_grad_()
    ids = torch.randint(0, VOCAB, (ROWS,), generator=gen)

    def run(x, i):
        if variant == "naive":
            return torch.log_softmax(x.float(), -1).gather(-1, i.unsqueeze(-1)).squeeze(-1)
        return token_logprobs(x, i)

    small = torch.randn(4, VOCAB, requires_grad=True)  # warm-up: kernels, thread pools, autograd engine
    run(small, ids[:4]).sum().backward()
    with open("/proc/self/clear_refs", "w") as fh:  # reset the peak-RSS counter (VmHWM) to the current RSS
        fh.write("5")
    before = _status_kib("VmRSS")
    out = run(logits, ids)
    if backward:
        out.sum().backward()
    peak = _status_kib("VmHWM")
    print(json.dumps({"peak_extra_mib": (peak - before) / 1024}))


def bench_memory() -> dict[tuple[str, bool], float]:
    results = {}
    for backward in (False, True):
        for variant in ("naive", "chunked"):
            cmd = [sys.executable, __file__, "--memory-child", variant] + (["--backward"] if backward else [])
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True, env=CHILD_ENV)
            results[(variant, backward)] = json.loads(proc.stdout.strip().splitlines()[-1])["peak_extra_mib"]
        naive, chunked = results[("naive", backward)], results[("chunked", backward)]
        phase = "forward + backward" if backward else "forward"
        print(f"log-probs peak extra memory, {phase} (N*T = {ROWS}, V = {VOCAB}, fp32): naive {naive:.0f} MiB, "
              f"chunked {chunked:.0f} MiB, ratio {chunked / naive:.3f}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--memory-child", choices=("naive", "chunked"))
    parser.add_argument("--backward", action="store_true")
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.backward)
        return
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    print(f"torch inductor cache: {cache_dir()} (TORCHINDUCTOR_CACHE_DIR={os.environ.get('TORCHINDUCTOR_CACHE_DIR')})")
    print(f"load average before: {os.getloadavg()[0]:.1f} (the machine is shared: eager timings on 2 threads suffer "
          f"most from contention, so the 1-thread run is printed as a cross-check)")
    ratios = bench_speed(args.repeats, threads=2)
    bench_speed(args.repeats, threads=1)
    memory = bench_memory()
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    n, t = SHAPES[-1]
    print(f"compiled/eager speed ratio, ratio loss fwd+bwd at (N, T) = ({n}, {t}): {ratios[(n, t)]:.2f}x "
          f"(goal >= 2x)")
    print(f"chunked/naive peak memory, log-probs forward at N*T = {ROWS}, V = {VOCAB}: "
          f"{memory[('chunked', False)] / memory[('naive', False)]:.3f} (goal <= 0.125)")


if __name__ == "__main__":
    main()
