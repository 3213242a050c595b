"""runtime=local: actor processes and the learner on one machine, over the local transport.

This module only starts processes and hands each one its transport and the run
spec as JSON; `runtime/assembly.py` builds what runs in them. Processes are started
with the 'spawn' context (safe with torch and MuJoCo).
"""
from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path
from typing import Any

from robotlearn.runtime.assembly import RunError, actor_name, build_actor, build_learner
from robotlearn.runtime.local_transport import (
    LocalActorTransport,
    LocalLearnerTransport,
    make_local_transports,
    weights_capacity_for,
)
from robotlearn.runtime.spec import RunSpec


def _actor_entry(transport: LocalActorTransport, spec_json: str, index: int, stop) -> None:
    build_actor(RunSpec.from_json(spec_json), index).run(transport, stop)


def _learner_entry(transport: LocalLearnerTransport, spec_json: str, stop) -> None:
    spec = RunSpec.from_json(spec_json)
    result = build_learner(spec).run(transport, stop)
    summary = {k: v for k, v in result.items() if k != "heartbeats"}
    (Path(spec.learner.out_dir) / "summary.json").write_text(json.dumps(summary))
    stop.set()


def spawn_actor(ctx, transport: LocalActorTransport, spec: RunSpec, index: int, stop):
    p = ctx.Process(target=_actor_entry, args=(transport, spec.to_json(), index, stop),
                    name=f"robotlearn-{actor_name(spec, index)}", daemon=True)
    p.start()
    return p


def spawn_learner(ctx, transport: LocalLearnerTransport, spec: RunSpec, stop):
    p = ctx.Process(target=_learner_entry, args=(transport, spec.to_json(), stop), name="robotlearn-learner",
                    daemon=True)
    p.start()
    return p


def local_transports(spec: RunSpec, ctx) -> tuple[LocalLearnerTransport, list[LocalActorTransport]]:
    """The learner's and each actor's transport, the weights slot sized for this run's networks."""
    from robotlearn.envs import describe_env
    from robotlearn.runtime.assembly import image_encoder

    env, features = describe_env(spec.env), image_encoder(spec)
    state_dim = env.observation_space["state"].shape[0] + (features.dim if features else 0)
    capacity = weights_capacity_for(state_dim, env.action_space.shape[0], spec.rl)
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
            if crashed():
                raise RunError(f"actor process(es) failed with exit codes {[p.exitcode for p in actors]}; "
                               f"see their traceback above")
        else:
            lp = spawn_learner(ctx, learner_t, spec, stop)
            lp.join()
            if lp.exitcode != 0:
                raise RunError(f"learner process exited with code {lp.exitcode}; see its traceback above")
            result = json.loads((Path(spec.learner.out_dir) / "summary.json").read_text())
    finally:
        stop.set()
        for p in actors:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
    result["actor_exitcodes"] = [p.exitcode for p in actors]
    return result
