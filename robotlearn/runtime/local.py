"""runtime=local: actor processes and the learner on one machine, over the local transport.

This module only starts processes and hands each one its transport and the run
spec as JSON; `runtime/assembly.py` builds what runs in them. Processes are started
with the 'spawn' context (safe with torch and MuJoCo).
"""
from __future__ import annotations

import json
import logging
import multiprocessing as mp
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Callable

from robotlearn.runtime.assembly import RunError, actor_name, build_actor, build_learner
from robotlearn.runtime.local_transport import (
    LocalActorTransport,
    LocalLearnerTransport,
    make_local_transports,
    weights_capacity_for,
)
from robotlearn.runtime.spec import RunSpec

SUPERVISE_S = 1.0  # the supervisor looks at its children at least this often
STOP_GRACE_S = 30.0  # after stop: seconds a child gets to finish its episode and flush before it is terminated


def _logs(spec: RunSpec) -> Path:
    return Path(spec.learner.out_dir) / "logs"


def _child(name: str, spec_json: str, body: Callable[[RunSpec, Callable[[], bool]], None], stop) -> None:
    """A run's child process: its traceback also goes to <out_dir>/logs/<name>.log, and it stops
    by itself once the process that started it is gone (killed main, no one left to stop it)."""
    import traceback

    spec = RunSpec.from_json(spec_json)
    log_path = _logs(spec) / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    parent = mp.parent_process()

    def should_stop() -> bool:
        return stop.is_set() or (parent is not None and not parent.is_alive())

    try:
        body(spec, should_stop)
    except BaseException:
        with open(log_path, "a") as f:
            f.write(traceback.format_exc())
        raise


def _run_actor(index: int, transport: LocalActorTransport):
    def body(spec: RunSpec, should_stop) -> None:
        build_actor(spec, index).run(transport, should_stop)
    return body


def _run_learner(transport: LocalLearnerTransport, stop):
    def body(spec: RunSpec, should_stop) -> None:
        result = build_learner(spec).run(transport, should_stop)
        summary = {k: v for k, v in result.items() if k != "heartbeats"}
        (Path(spec.learner.out_dir) / "summary.json").write_text(json.dumps(summary))
        stop.set()
    return body


def _actor_entry(transport: LocalActorTransport, spec_json: str, index: int, name: str, stop) -> None:
    _child(name, spec_json, _run_actor(index, transport), stop)


def _learner_entry(transport: LocalLearnerTransport, spec_json: str, stop) -> None:
    _child("learner", spec_json, _run_learner(transport, stop), stop)


def spawn_actor(ctx, transport: LocalActorTransport, spec: RunSpec, index: int, stop):
    name = actor_name(spec, index)
    p = ctx.Process(target=_actor_entry, args=(transport, spec.to_json(), index, name, stop), name=name, daemon=True)
    p.start()
    return p


def spawn_learner(ctx, transport: LocalLearnerTransport, spec: RunSpec, stop):
    p = ctx.Process(target=_learner_entry, args=(transport, spec.to_json(), stop), name="learner", daemon=True)
    p.start()
    return p


def exit_report(p, spec: RunSpec) -> str:
    """'actor-0 (pid 123) was killed by SIGKILL (log: runs/x/logs/actor-0.log)' for a dead child process."""
    import signal

    code = p.exitcode
    how = f"was killed by {signal.Signals(-code).name}" if code is not None and code < 0 else f"exited with code {code}"
    log_path = _logs(spec) / f"{p.name}.log"
    return f"{p.name} (pid {p.pid}) {how} (log: {log_path})"


def local_transports(spec: RunSpec, ctx) -> tuple[LocalLearnerTransport, list[LocalActorTransport]]:
    """The learner's and each actor's transport, the weights slot sized for this run's networks."""
    from robotlearn.envs import describe_env, image_shapes
    from robotlearn.runtime.assembly import image_encoder

    env, features = describe_env(spec.env), image_encoder(spec)
    state_dim = env.observation_space["state"].shape[0] + (features.dim if features else 0)
    capacity = weights_capacity_for(state_dim, env.action_space.shape[0], spec.rl, image_shapes(env.observation_space))
    return make_local_transports(spec.runtime.num_actors, ctx, capacity)


def run_local(spec: RunSpec) -> dict[str, Any]:
    """Spawn the run's actor processes and run the learner (here, or in its own process).

    Each actor stops after its share of `learner.max_env_steps`; the learner stops once
    it has that many steps and has done the updates they are owed, then sets the shared
    stop event. Returns the learner's summary (+ `actor_exitcodes`).
    """
    ctx = mp.get_context("spawn")
    learner_t, actor_ts = local_transports(spec, ctx)
    stop = ctx.Event()
    actors = [spawn_actor(ctx, t, spec, i, stop) for i, t in enumerate(actor_ts)]

    def crashed() -> bool:  # an actor that died with an error ends the run instead of starving the learner
        return any(p.exitcode not in (None, 0) for p in actors)

    try:
        if spec.runtime.learner_in_process:
            result = build_learner(spec).run(learner_t, lambda: stop.is_set() or crashed())
            failed = [p for p in actors if p.exitcode not in (None, 0)]
            if failed:
                raise RunError("the run stopped: " + "; ".join(exit_report(p, spec) for p in failed))
        else:
            lp = spawn_learner(ctx, learner_t, spec, stop)
            while lp.is_alive():  # notice any death within a second; a dead actor ends the run
                wait([lp.sentinel, *[p.sentinel for p in actors if p.exitcode is None]], timeout=SUPERVISE_S)
                failed = [p for p in actors if p.exitcode not in (None, 0)]
                if failed:
                    stop.set()
                    lp.join(STOP_GRACE_S)
                    raise RunError("the run stopped: " + "; ".join(exit_report(p, spec) for p in failed))
            if lp.exitcode != 0:
                raise RunError(f"the run stopped: {exit_report(lp, spec)}")
            result = json.loads((Path(spec.learner.out_dir) / "summary.json").read_text())
    finally:
        stop.set()
        for p in actors:
            p.join(timeout=STOP_GRACE_S)
            if p.is_alive():
                p.terminate()
    result["actor_exitcodes"] = [p.exitcode for p in actors]
    return result
