"""`num_envs=N` for collect and eval: N worker processes that each run whole episodes on request.

Each worker is a 'spawn' process that builds its own env (and expert or policy) from a JSON job,
then waits for seeds: for each one it runs the episode that reset seed starts and sends the
result back as bytes in the project's codec (`runtime/messages.py`; no pickle crosses the pipe:
`send_bytes` / `recv_bytes` only). `EpisodeWorkers.ordered(seeds)` keeps every worker busy and
yields the results in the order of the seeds, buffering early finishers, so what the caller does
with them (the one dataset writer, the eval tally) is the same for any N. An episode depends only
on its seed (the envs reset from it; experts and sampling policies are seeded from it through
`ChunkStepper.reset(seed)`), so N workers give the same episodes as one process.

A worker that dies is a `WorkerError` naming it and the episode it was running, never a hang
(the parent waits on the pipes and the process sentinels with a timeout). Workers ignore Ctrl-C
(the parent stops them) and stop by themselves once the parent is gone.
"""
from __future__ import annotations

import importlib
import json
import multiprocessing as mp
import signal
from collections import deque
from multiprocessing.connection import wait
from typing import Any, Callable, Iterable, Iterator, Protocol

POLL_S = 1.0  # parent and workers look at each other at least this often
STOP_S = 10.0  # an idle worker gets this long to close its env after the stop message
_RUN, _STOP = b"S", b"Q"  # parent -> worker: run the episode of this seed (JSON) | stop
_RESULT, _ERROR = b"R", b"X"  # worker -> parent: an encoded episode | a one-line error (utf-8)
# The jobs a worker can run: job name -> "module:factory" (a fixed table: the job comes as a name, never as code).
JOBS = {"collect": "robotlearn.cli.collect:EpisodeJob", "eval": "robotlearn.cli.eval:EpisodeJob"}


class WorkerError(RuntimeError):
    """A worker process failed or died; the message is one line naming it and its episode."""


class EpisodeJob(Protocol):
    def __init__(self, config: dict[str, Any]) -> None:
        """Build the env and what acts in it from the job's JSON config."""

    def __call__(self, seed: int) -> bytes:
        """Run the episode that reset seed `seed` starts; its result as an encoded message."""

    def close(self) -> None:
        """Close the env."""


def check_num_envs(env: str | dict[str, Any], num_envs: int, who: str) -> None:
    """num_envs > 1 builds the env N times: refused for a robot (an env that paces itself: a ROS 2 env),
    from its config alone, before anything connects to it."""
    if num_envs <= 1:
        return
    from robotlearn.config import ConfigError
    from robotlearn.envs.registry import UnknownEnvError, env_class, env_config

    try:
        cfg = env if isinstance(env, dict) else env_config(env)
    except UnknownEnvError:
        return  # a factory registered in code (register_env): its class is not known before it is built
    target = cfg.get("_target_")
    if env_class(target).paces_itself:
        what = env if isinstance(env, str) else cfg.get("params") or target
        raise ConfigError(f"{who} num_envs={num_envs}: env {what} is one robot ({target}), it cannot run "
                          f"{num_envs} times side by side; use num_envs=1")


def job_factory(job: str) -> Callable[[dict[str, Any]], EpisodeJob]:
    if job not in JOBS:
        raise ValueError(f"unknown episode job {job!r}; have {sorted(JOBS)}")
    module, _, name = JOBS[job].partition(":")
    return getattr(importlib.import_module(module), name)


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


def _worker_main(conn, job: str, config_json: str) -> None:
    """A worker process: build the job, then run the episodes the parent asks for until told to stop."""
    import traceback

    from robotlearn.config import ConfigError

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the workers
    parent = mp.parent_process()
    runner = None
    try:
        runner = job_factory(job)(json.loads(config_json))
        while True:
            if not conn.poll(POLL_S):
                if parent is not None and not parent.is_alive():
                    return
                continue
            msg = conn.recv_bytes()  # EOFError once the parent is gone
            if msg[:1] != _RUN:
                return
            conn.send_bytes(_RESULT + runner(int(json.loads(msg[1:])["seed"])))
    except (EOFError, BrokenPipeError, ConnectionResetError):
        return  # the parent is gone: nobody to report to
    except BaseException as e:
        if not isinstance(e, ConfigError):  # a user error is its one line; a bug keeps its traceback
            traceback.print_exc()
        try:
            conn.send_bytes(_ERROR + _one_line(e).encode())
        except OSError:
            pass
        raise SystemExit(1)
    finally:
        if runner is not None:
            runner.close()


def _exit_text(p) -> str:
    code = p.exitcode
    if code is not None and code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


class EpisodeWorkers:
    """`num_envs` worker processes running `job` episodes; `ordered(seeds)` yields (seed, result bytes)."""

    def __init__(self, job: str, config: dict[str, Any], num_envs: int, who: str) -> None:
        job_factory(job)  # an unknown job fails here, not in N processes
        self.who = who  # e.g. "collect sim/lift": the start of every error message
        ctx = mp.get_context("spawn")
        self.conns, self.procs = [], []
        try:
            for i in range(num_envs):
                ours, theirs = ctx.Pipe(duplex=True)
                p = ctx.Process(target=_worker_main, args=(theirs, job, json.dumps(config)),
                                name=f"{job}-env-{i}", daemon=True)
                p.start()
                theirs.close()
                self.conns.append(ours)
                self.procs.append(p)
        except BaseException:
            self.close()
            raise
        self.busy: dict[int, int] = {}  # worker -> seed of the episode it is running
        self.last: dict[int, int] = {}  # worker -> seed of the last episode it finished

    def __enter__(self) -> "EpisodeWorkers":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _name(self, i: int) -> str:
        return f"env worker {i} (pid {self.procs[i].pid})"

    def _failure(self, i: int, what: str) -> WorkerError:
        if i in self.busy:
            when = f"while running the episode with reset seed {self.busy[i]}"
        elif i in self.last:
            when = f"idle, after the episode with reset seed {self.last[i]}"
        else:
            when = "before its first episode"
        return WorkerError(f"{self.who}: {self._name(i)} {what} ({when})")

    def ordered(self, seeds: Iterable[int], lookahead: int | None = None) -> Iterator[tuple[int, bytes]]:
        """Run the episodes of `seeds` on the workers; yield (seed, result) in the order of `seeds`.
        At most `lookahead` (default 2 x num_envs) episodes run or wait ahead of the next one to yield."""
        todo = iter(seeds)
        window = lookahead or 2 * len(self.procs)
        idle = deque(range(len(self.procs)))
        done: dict[int, bytes] = {}  # position -> result, finished ahead of their turn
        position: dict[int, int] = {}  # worker -> position of its episode
        order: deque[int] = deque()  # seeds dispatched and not yet yielded, in order
        sent = yielded = 0
        exhausted = False
        while True:
            while idle and not exhausted and sent - yielded < window:
                seed = next(todo, None)
                if seed is None:
                    exhausted = True
                    break
                i = idle.popleft()
                self.busy[i], position[i] = int(seed), sent
                order.append(int(seed))
                try:
                    self.conns[i].send_bytes(_RUN + json.dumps({"seed": int(seed)}).encode())
                except OSError:
                    raise self._failure(i, _exit_text(self.procs[i]) if self.procs[i].exitcode is not None
                                        else "closed its pipe") from None
                sent += 1
            if yielded in done:
                yield order.popleft(), done.pop(yielded)
                yielded += 1
                continue
            if exhausted and not self.busy:
                return
            ready = set(wait([self.conns[i] for i in self.busy] + [p.sentinel for p in self.procs], timeout=POLL_S))
            for i in list(self.busy):
                if self.conns[i] in ready:
                    msg = self._receive(i)
                    done[position.pop(i)] = msg
                    self.last[i] = self.busy.pop(i)
                    idle.append(i)
            for i, p in enumerate(self.procs):
                if p.exitcode is not None:
                    if self.conns[i].poll(0):  # its last word (an error at start-up, before any episode was its)
                        self._receive(i)
                    raise self._failure(i, _exit_text(p))

    def _receive(self, i: int) -> bytes:
        try:
            msg = self.conns[i].recv_bytes()
        except (EOFError, OSError):
            self.procs[i].join(POLL_S)
            raise self._failure(i, _exit_text(self.procs[i]) if self.procs[i].exitcode is not None
                                else "closed its pipe") from None
        if msg[:1] == _ERROR:
            raise self._failure(i, f"failed ({msg[1:].decode(errors='replace')})")
        if msg[:1] != _RESULT:
            raise self._failure(i, f"sent an unknown message kind {msg[:1]!r}")
        return msg[1:]

    def close(self) -> None:
        """Stop the workers: a busy one is terminated (its episode is not needed), an idle one closes its env."""
        for i, (conn, p) in enumerate(zip(self.conns, self.procs)):
            if i in getattr(self, "busy", {}):
                p.terminate()
                continue
            try:
                conn.send_bytes(_STOP)
            except OSError:
                pass
        for conn, p in zip(self.conns, self.procs):
            p.join(STOP_S)
            if p.is_alive():
                p.terminate()
                p.join(STOP_S)
            conn.close()
        self.busy = {}
