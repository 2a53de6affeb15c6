"""Timing fresh processes for the benches: wall time, medians, and the verdict beside a target."""

from __future__ import annotations

import os
import statistics
import subprocess
import time

RUNS = int(os.environ.get("BENCH_RUNS", "9"))


def wall(cmd: list[str], env: dict[str, str] | None = None) -> float:
    """Seconds from start to exit of ``cmd`` (its output discarded)."""
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, env=env)
    return time.perf_counter() - t0


def median_ms(cmd: list[str], env: dict[str, str] | None = None, runs: int = RUNS) -> float:
    """Median wall time of ``runs`` runs, in ms, after one that warms the page cache (and writes the bytecode)."""
    wall(cmd, env)
    return statistics.median(wall(cmd, env) for _ in range(runs)) * 1000


def interleaved_ms(cmds: list[tuple[list[str], dict[str, str] | None]], runs: int = RUNS) -> list[float]:
    """Median wall times (ms) of several commands run in turns, one of each per round: on a shared,
    noisy machine a burst of load then slows all of them alike, and their ratios hold."""
    for cmd, env in cmds:
        wall(cmd, env)
    times: list[list[float]] = [[] for _ in cmds]
    for _ in range(runs):
        for (cmd, env), out in zip(cmds, times, strict=True):
            out.append(wall(cmd, env))
    return [statistics.median(t) * 1000 for t in times]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"
