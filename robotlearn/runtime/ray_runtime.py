"""Residual fine-tuning on Ray: N actor workers and one learner, on a laptop or a cluster.

Each worker builds its part of the run from the spec (`runtime/assembly.py`), as
the local runtime's processes do; only the transport differs (`ray_transport`). Actor workers are Ray
actors with `max_restarts`/`max_task_retries`, so a crashed or killed worker is
restarted by Ray, re-registers with the hub, picks up the latest weights and
keeps contributing while the learner trains on. The learner asks for a GPU when
the cluster has one. The spec crosses to workers as JSON, data as message bytes.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import time
import uuid
from typing import Any

import ray

from robotlearn.progress import progress_bar, progress_mode
from robotlearn.runtime.assembly import actor_name, build_actor, build_learner
from robotlearn.runtime.ray_transport import (
    HubStopFlag,
    RayActorTransport,
    RayLearnerTransport,
    make_hub,
)
from robotlearn.runtime.spec import RayRuntimeConfig, RunSpec, wire_signer

__all__ = ["RayRun", "RayRuntimeConfig", "run_ray"]


@ray.remote
class ActorWorker:
    """Actor `index` of the run; restarted by Ray on failure (a restart re-registers and reseeds)."""

    def __init__(self, hub: str, spec_json: str, index: int) -> None:
        self.hub, self.spec_json, self.index = hub, spec_json, index

    def run(self) -> str:
        spec = RunSpec.from_json(self.spec_json)
        rt = spec.runtime
        transport = RayActorTransport(self.hub, actor_name(spec, self.index), flush_s=rt.flush_s, poll_s=rt.poll_s,
                                      signer=wire_signer(rt))
        stats = build_actor(spec, self.index, restart=transport.incarnation).run(transport, transport.should_stop)
        return json.dumps({**stats, "incarnation": transport.incarnation, "pid": os.getpid()})


@ray.remote
class LearnerWorker:
    """The run's learner with the Ray transport; writes the zarr log and checkpoints on its node."""

    def run(self, hub: str, spec_json: str) -> str:
        # the driver can end a run early (HubStopFlag) and still get a checkpoint
        spec = RunSpec.from_json(spec_json)
        result = build_learner(spec).run(RayLearnerTransport(hub, signer=wire_signer(spec.runtime)), HubStopFlag(hub))
        result["node"] = ray.get_runtime_context().get_node_id()
        return json.dumps(result, default=float)


class RayRun:
    """A running Ray fine-tune: `start()` returns at once, `wait()` blocks until the learner is done.

    Split so tests and dashboards can look at `hub_stats()` or kill a worker mid-run.
    """

    def __init__(self, spec: RunSpec) -> None:
        if not isinstance(spec.runtime, RayRuntimeConfig):
            raise ValueError(f"RayRun needs a runtime=ray spec, got runtime={spec.runtime.name}")
        # workers may run elsewhere (another cwd, another node with a shared FS): pass absolute paths,
        # and no tqdm in a worker's log
        self.spec = spec.absolute()
        self.spec.learner = dataclasses.replace(self.spec.learner, progress="off")
        self.rt = self.spec.runtime
        self.started_ray = False
        self.actors: list[Any] = []
        self.actor_refs: list[Any] = []
        self._reported: set[int] = set()

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> RayRun:
        self._init_ray()
        gpus = self._learner_gpus()
        # workers get the hub by name, not handle: restart arguments then hold no object-store refs
        self.hub_name = f"robotlearn-hub-{uuid.uuid4().hex[:8]}"
        self.hub = make_hub(self.rt.max_queue_mb << 20, name=self.hub_name)
        spec_json = self.spec.to_json()
        self.learner = LearnerWorker.options(num_cpus=self.rt.learner_cpus, num_gpus=gpus, max_restarts=0).remote()
        self.learner_ref = self.learner.run.remote(self.hub_name, spec_json)
        restarts = self.rt.max_restarts
        for i in range(self.rt.num_actors):
            a = ActorWorker.options(num_cpus=self.rt.actor_cpus, max_restarts=restarts, max_task_retries=restarts).remote(
                self.hub_name, spec_json, i)
            self.actors.append(a)
            self.actor_refs.append(a.run.remote())
        self.t0 = time.time()
        return self

    def _init_ray(self) -> None:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        if ray.is_initialized():
            return
        self.started_ray = True
        if self.rt.address:
            ray.init(address=self.rt.address, include_dashboard=False, log_to_driver=True)
            return
        need = self.rt.num_actors * self.rt.actor_cpus + self.rt.learner_cpus
        num_cpus = self.rt.num_cpus or max(os.cpu_count() or 1, int(need + 0.999))
        ray.init(num_cpus=num_cpus, _temp_dir=self.rt.temp_dir, include_dashboard=False, log_to_driver=True)

    def _learner_gpus(self) -> float:
        if self.rt.learner_gpus == "auto":
            return 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0
        try:
            return float(self.rt.learner_gpus)
        except ValueError:
            raise ValueError(f"runtime.learner_gpus must be 'auto' or a number, got {self.rt.learner_gpus!r}") from None

    def request_stop(self) -> None:
        """Ask the learner (checkpoints, returns) and the actors (finish their step) to end now."""
        ray.get(self.hub.request_stop.remote())

    def hub_stats(self) -> dict[str, Any]:
        """Per-actor rows/bytes received, registrations (pids per restart), latest version, drops."""
        return json.loads(ray.get(self.hub.stats.remote()))

    def heartbeats(self) -> dict[str, tuple[float, dict]]:
        return RayLearnerTransport(self.hub).heartbeats()

    def wait(self, timeout: float | None = None, progress: str | bool = "auto") -> dict[str, Any]:
        """Block until the learner finishes, then stop the actors. Returns the learner summary + actor stats."""
        show = progress_mode(progress) != "off"  # the hub is polled for the bar only
        bar = progress_bar(total=self.spec.learner.max_env_steps or None, unit="step",
                           desc=f"ray x{self.rt.num_actors}", mode=progress)
        deadline = None if timeout is None else time.time() + timeout
        stopping = False
        try:
            while True:
                ready, _ = ray.wait([self.learner_ref], timeout=1.0)
                if show:
                    st, now = self.hub_stats(), time.time()
                    silent = sum(now - t > 5 * self.spec.actor.heartbeat_s for t, _ in self.heartbeats().values())
                    bar.n = sum(c["rows"] for c in st["received"].values())
                    bar.set_postfix(v=st["version"], restarts=sum(len(p) - 1 for p in st["registrations"].values()),
                                    silent=silent)
                    bar.refresh()
                if ready:
                    break
                self._report_actor_errors()
                if not stopping and self._no_actor_left():
                    # no data can come any more: let the learner checkpoint and return what it has
                    print("ray runtime: every actor worker has ended and no data can come; stopping the learner "
                          "(it checkpoints). Crashes are restarted up to runtime.max_restarts; Python errors are not.",
                          flush=True)
                    self.request_stop()
                    stopping = True
                if deadline is not None and time.time() > deadline:
                    raise TimeoutError(f"Ray fine-tune did not finish within {timeout} s")
            result = json.loads(ray.get(self.learner_ref))  # raises the learner's error, if any
        except KeyboardInterrupt:  # Ctrl-C: the learner still writes its checkpoint before we tear down
            self.request_stop()
            ray.wait([self.learner_ref], timeout=self.rt.stop_timeout_s)
            raise
        finally:
            bar.close()
            actor_stats = self._stop_actors()
        result["actors"] = actor_stats
        result["hub"] = self.hub_stats()
        result["wall_s"] = time.time() - self.t0
        return result

    def _report_actor_errors(self) -> None:
        """Say at once when a worker's run ended in an error (a Python exception is not retried; a crash is)."""
        done, _ = ray.wait(self.actor_refs, num_returns=len(self.actor_refs), timeout=0)
        for ref in done:
            i = self.actor_refs.index(ref)
            if i in self._reported:
                continue
            self._reported.add(i)
            try:
                ray.get(ref)
            except ray.exceptions.RayError as e:
                print(f"ray runtime: actor-{i} stopped with an error, training goes on with the others: "
                      f"{_error_line(e)}", flush=True)

    def _no_actor_left(self) -> bool:
        """True when every actor's run ended and at least one ended in an error (restarts used up)."""
        done, _ = ray.wait(self.actor_refs, num_returns=len(self.actor_refs), timeout=0)
        return len(done) == len(self.actor_refs) and any("error" in a for a in self._actor_results())

    def _stop_actors(self) -> list[dict[str, Any]]:
        ray.get(self.hub.request_stop.remote())
        ray.wait(self.actor_refs, num_returns=len(self.actor_refs), timeout=self.rt.stop_timeout_s)
        return self._actor_results()

    def _actor_results(self) -> list[dict[str, Any]]:
        _, pending = ray.wait(self.actor_refs, num_returns=len(self.actor_refs), timeout=0)
        out = []
        for ref in self.actor_refs:
            if ref in pending:
                out.append({"error": f"did not stop within {self.rt.stop_timeout_s} s"})
                continue
            try:
                out.append(json.loads(ray.get(ref)))
            except ray.exceptions.RayError as e:  # an exception, or out of restarts: report it
                out.append({"error": _error_line(e)})
        return out

    def shutdown(self) -> None:
        for a in [*self.actors, getattr(self, "learner", None), getattr(self, "hub", None)]:
            if a is not None:
                try:
                    ray.kill(a, no_restart=True)
                except Exception:  # already dead  # noqa: BLE001
                    pass
        if self.started_ray:
            ray.shutdown()


def _error_line(e: Exception) -> str:
    """The actual exception line of a Ray error (its first lines name the worker, not the problem)."""
    lines = [ln.strip() for ln in re.sub(r"\x1b\[[0-9;]*m", "", str(e)).splitlines() if ln.strip()]
    if not lines:
        return type(e).__name__
    return lines[-1] if isinstance(e, ray.exceptions.RayTaskError) else lines[0]  # exception | actor death


def run_ray(spec: RunSpec, progress: str | bool = "auto") -> dict[str, Any]:
    """The Ray counterpart of `local.run_local`: same spec, same loops, same outputs in `learner.out_dir`."""
    run = RayRun(spec)
    try:
        return run.start().wait(progress=progress)
    finally:
        run.shutdown()
