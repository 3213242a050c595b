"""Process-pool plumbing the benchmarks share: KEY=VALUE flags, runs in spawned worker processes that die
with the benchmark."""
from __future__ import annotations

import json
import os
import time
from typing import Callable

import torch


def parse_kv(items: list[str], flag: str, allowed=None) -> dict:
    """KEY=VALUE strings -> dict, values parsed as JSON (bare words stay strings); a one-line error otherwise."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"{flag}: expected KEY=VALUE, got {item!r}")
        if allowed is not None and key not in allowed:
            raise SystemExit(f"{flag}: unknown key {key!r}; known: {', '.join(allowed)}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def die_with_parent() -> None:
    """Pool initializer: the worker exits once the benchmark process that started it is gone, so a killed
    benchmark leaves no RL runs behind on the cores."""
    import multiprocessing as mp
    import threading

    parent = mp.parent_process()

    def watch() -> None:
        while parent.is_alive():
            time.sleep(1.0)
        os._exit(1)

    if parent is not None:
        threading.Thread(target=watch, daemon=True, name="die-with-parent").start()


def rl_worker_init(threads: int) -> None:
    """Pool initializer for RL runs: torch threads per worker (a spawned worker starts at torch's default,
    one per core, and `n` of them oversubscribe the cores) and exit with the benchmark process."""
    torch.set_num_threads(threads)
    die_with_parent()


def run_jobs(jobs: dict, n: int, fn: Callable) -> dict:
    """{key: fn(*args)} for every `key: args` of `jobs`, `n` processes at a time, started in `jobs`' order
    (spawned: each gets its own torch/MuJoCo state; n <= 1: here, one after another)."""
    if n <= 1:
        return {k: fn(*a) for k, a in jobs.items()}
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(n, mp_context=mp.get_context("spawn"), initializer=die_with_parent) as pool:
        futures = {k: pool.submit(fn, *a) for k, a in jobs.items()}
        return {k: f.result() for k, f in futures.items()}
