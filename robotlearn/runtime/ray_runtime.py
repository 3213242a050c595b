"""Residual fine-tuning on Ray: N actor workers and one learner, on a laptop or a cluster.

The same `run_actor` / `run_learner` loops as the local runtime run inside Ray
actors; only the transport differs (`ray_transport`). Actor workers are Ray
actors with `max_restarts`/`max_task_retries`, so a crashed or killed worker is
restarted by Ray, re-registers with the hub, picks up the latest weights and
keeps contributing while the learner trains on. The learner asks for a GPU when
the cluster has one. Configs cross to workers as JSON, data as message bytes.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import ray

from robotlearn.rl.residual import ResidualConfig
from robotlearn.runtime.actor import ActorConfig
from robotlearn.runtime.learner import LearnerConfig
from robotlearn.runtime.ray_transport import HubStopFlag, RayActorTransport, RayLearnerTransport, make_hub


@dataclass
class RayRuntimeConfig:
    """configs/runtime/ray.yaml. `address` None starts a local Ray inside the command."""

    name: str = "ray"
    num_actors: int = 2
    address: str | None = None  # None: local Ray; "auto" / "<head ip>:6379" / "ray://<head>:10001": join a cluster
    num_cpus: int | None = None  # local Ray only: CPUs to declare (None: max(cores, what the workers ask for))
    actor_cpus: float = 1.0  # CPUs reserved per actor worker (fractions allowed to oversubscribe a laptop)
    learner_cpus: float = 1.0
    learner_gpus: str = "auto"  # "auto": 1 if the cluster has a GPU, else 0; or "0" / "1"
    learner_threads: int = 1  # torch threads in the learner (CPU)
    max_restarts: int = 3  # Ray restarts per actor worker after a crash (-1: unlimited)
    flush_s: float = 0.05  # actor: max seconds an episode waits before it is pushed to the hub
    poll_s: float = 0.05  # actor: seconds between weight-version queries
    max_queue_mb: int = 256  # hub: transitions queued for the learner before the oldest are dropped
    stop_timeout_s: float = 30.0  # after the learner finished: wait this long for actors to exit
    temp_dir: str = "/tmp/robotlearn-ray"  # local Ray session files (keep the path short: socket name limit)


def _json_cfg(cfg: Any) -> str:
    return json.dumps(dataclasses.asdict(cfg))


@ray.remote
class ActorWorker:
    """One env + base + residual policy copy running `run_actor`; restarted by Ray on failure."""

    def __init__(self, hub: str, env_json: str, env_kwargs_json: str, base_spec: str, rl_json: str,
                 actor_json: str, runtime_json: str) -> None:
        import torch

        torch.set_num_threads(1)
        self.hub, self.env, self.base_spec = hub, json.loads(env_json), base_spec
        self.env_kwargs = json.loads(env_kwargs_json)
        self.rl = ResidualConfig(**json.loads(rl_json))
        self.cfg = ActorConfig(**json.loads(actor_json))
        self.rt = RayRuntimeConfig(**json.loads(runtime_json))

    def run(self) -> str:
        from robotlearn.envs import make_env
        from robotlearn.rl.bases import make_base
        from robotlearn.runtime.actor import run_actor

        transport = RayActorTransport(self.hub, self.cfg.actor_id, flush_s=self.rt.flush_s, poll_s=self.rt.poll_s)
        cfg = self.cfg
        if transport.incarnation > 0:  # a restart: new env seeds, and the run-level warm-up is long over
            cfg = dataclasses.replace(cfg, seed=cfg.seed + 100_000 * transport.incarnation, warmup_env_steps=0)
        env = make_env(self.env, **self.env_kwargs)
        try:
            stats = run_actor(transport, env, make_base(self.base_spec, env, seed=cfg.seed), self.rl, cfg,
                              stop=transport.should_stop)
        finally:
            transport.close()
            env.close()
        return json.dumps({**stats, "incarnation": transport.incarnation, "pid": os.getpid()})


@ray.remote
class LearnerWorker:
    """`run_learner` with the Ray transport; writes the zarr log and checkpoints on its node."""

    def run(self, hub: str, env_json: str, env_kwargs_json: str, base_spec: str, rl_json: str,
            learner_json: str, demos: str | None, threads: int) -> str:
        import torch

        from robotlearn.envs import make_env
        from robotlearn.rl.bases import make_base
        from robotlearn.runtime.learner import run_learner

        torch.set_num_threads(threads)
        rl = ResidualConfig(**json.loads(rl_json))
        cfg = LearnerConfig(**json.loads(learner_json))
        env = make_env(json.loads(env_json), **json.loads(env_kwargs_json))  # declared spaces; base for demo relabelling
        try:
            base = make_base(base_spec, env, seed=cfg.seed) if demos else None
            result = run_learner(RayLearnerTransport(hub), rl, cfg, env.env_info, env.observation_space, demos, base,
                                 stop=HubStopFlag(hub))  # the driver can end a run early and still get a checkpoint
        finally:
            env.close()
        result["node"] = ray.get_runtime_context().get_node_id()
        return json.dumps(result, default=float)


class RayRun:
    """A running Ray fine-tune: `start()` returns at once, `wait()` blocks until the learner is done.

    Split so tests and dashboards can look at `hub_stats()` or kill a worker mid-run.
    """

    def __init__(self, env: str | dict, base_spec: str, rl: ResidualConfig, learner_cfg: LearnerConfig,
                 actor_cfg: ActorConfig, runtime: RayRuntimeConfig, demos: str | None = None,
                 env_kwargs: dict | None = None) -> None:
        self.env, self.base_spec, self.rl = env, base_spec, rl
        self.learner_cfg, self.actor_cfg, self.rt = learner_cfg, actor_cfg, runtime
        # workers may run elsewhere (another cwd, another node with a shared FS): pass absolute paths
        self.learner_cfg = dataclasses.replace(learner_cfg, out_dir=os.path.abspath(learner_cfg.out_dir))
        self.demos = os.path.abspath(demos) if demos and "://" not in demos else demos
        if os.path.exists(base_spec):  # a checkpoint path (not zero / expert[:noise])
            self.base_spec = os.path.abspath(base_spec)
        self.env_kwargs = dict(env_kwargs or {})
        self.started_ray = False
        self.actors: list[Any] = []
        self.actor_refs: list[Any] = []
        self._reported: set[int] = set()

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> RayRun:
        if self.rt.num_actors < 1:
            raise ValueError(f"runtime.num_actors must be >= 1, got {self.rt.num_actors}")
        self._init_ray()
        gpus = self._learner_gpus()
        # workers get the hub by name, not handle: restart arguments then hold no object-store refs
        self.hub_name = f"robotlearn-hub-{uuid.uuid4().hex[:8]}"
        self.hub = make_hub(self.rt.max_queue_mb << 20, name=self.hub_name)
        env_json, env_kwargs = json.dumps(self.env), json.dumps(self.env_kwargs)
        rl_json = _json_cfg(self.rl)
        learner_json = _json_cfg(dataclasses.replace(self.learner_cfg, progress=False))  # no tqdm in a worker log
        self.learner = LearnerWorker.options(num_cpus=self.rt.learner_cpus, num_gpus=gpus, max_restarts=0).remote()
        self.learner_ref = self.learner.run.remote(self.hub_name, env_json, env_kwargs, self.base_spec, rl_json,
                                                   learner_json, self.demos, self.rt.learner_threads)
        restarts = self.rt.max_restarts
        for i in range(self.rt.num_actors):
            cfg_i = dataclasses.replace(self.actor_cfg, actor_id=f"actor-{i}", seed=self.actor_cfg.seed + 1000 * i)
            a = ActorWorker.options(num_cpus=self.rt.actor_cpus, max_restarts=restarts, max_task_retries=restarts).remote(
                self.hub_name, env_json, env_kwargs, self.base_spec, rl_json, _json_cfg(cfg_i), _json_cfg(self.rt))
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

    def wait(self, timeout: float | None = None, progress: bool = True) -> dict[str, Any]:
        """Block until the learner finishes, then stop the actors. Returns the learner summary + actor stats."""
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=self.learner_cfg.max_env_steps or None, unit="step", desc=f"ray x{self.rt.num_actors}")
        deadline = None if timeout is None else time.time() + timeout
        stopping = False
        try:
            while True:
                ready, _ = ray.wait([self.learner_ref], timeout=1.0)
                if bar is not None:
                    st, now = self.hub_stats(), time.time()
                    silent = sum(now - t > 5 * self.actor_cfg.heartbeat_s for t, _ in self.heartbeats().values())
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
            if bar is not None:
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


def run_ray(env: str | dict, base_spec: str, rl: ResidualConfig, learner_cfg: LearnerConfig, actor_cfg: ActorConfig,
            runtime: RayRuntimeConfig, demos: str | None = None, env_kwargs: dict | None = None,
            progress: bool = True) -> dict[str, Any]:
    """The Ray counterpart of `local.run_local`: same configs, same loops, same outputs in `learner_cfg.out_dir`.

    `env` is a registered name or an env config dict (`_target_` + kwargs), as `make_env` takes.
    """
    run = RayRun(env, base_spec, rl, learner_cfg, actor_cfg, runtime, demos, env_kwargs)
    try:
        return run.start().wait(progress=progress)
    finally:
        run.shutdown()


def ray_runtime_config(runtime: Any) -> RayRuntimeConfig:
    """configs/runtime/ray.yaml content (dict, DictConfig or RayRuntimeConfig) -> a validated RayRuntimeConfig."""
    if isinstance(runtime, RayRuntimeConfig):
        return runtime
    from robotlearn.cli.config import to_dataclass

    return to_dataclass(runtime, RayRuntimeConfig)


def launch(cfg: Any, progress: bool = True) -> dict[str, Any]:
    """`robotlearn finetune runtime=ray`: run the fine-tune described by the finetune config on Ray.

    Reads `cfg.env` (name or env config dict), `cfg.base`, `cfg.demos`, `cfg.rl`
    (ResidualConfig), `cfg.learner` (LearnerConfig), `cfg.actor` (ActorConfig),
    optional `cfg.env_kwargs`, and `cfg.runtime` (configs/runtime/ray.yaml).
    """
    missing = [k for k in ("env", "base", "rl", "learner", "actor", "runtime") if not hasattr(cfg, k)]
    if missing:
        raise ValueError(f"launch(cfg): the finetune config lacks {missing}")
    env = cfg.env
    if not isinstance(env, (str, dict)):  # an OmegaConf node from a hydra `env:` group
        from omegaconf import OmegaConf

        env = OmegaConf.to_container(env, resolve=True)
    return run_ray(env, cfg.base, cfg.rl, cfg.learner, cfg.actor, ray_runtime_config(cfg.runtime),
                   demos=getattr(cfg, "demos", None) or None, env_kwargs=getattr(cfg, "env_kwargs", None),
                   progress=progress)
