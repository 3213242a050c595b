"""Episodes/s of `robotlearn collect` and `robotlearn eval` with num_envs = 1, 2 and 4 env processes.

collect: the scripted expert (noise 0.3) into a fresh zarr dataset; eval: a bc_mlp policy of the
shipped sizes (configs/policy/bc_mlp.yaml, untrained: inference costs the same, every episode runs
to the horizon). Both through the commands' own functions, so the wall clock includes what a user
waits for: the env worker processes' start-up (spawn, imports, env and actor built), the episodes,
the dataset writes in seed order. `first ep s`: when the first episode was written (collect) or
counted (eval): the start-up of the fastest worker; `after first ep/s`: the rate from then on (with
the other workers' start-up in it). num_envs=1 runs in the command's own process. On a shared
machine the numbers move with the load (printed at the start and the end).

    python benchmarks/vector_envs.py [--tasks sim/reach sim/lift] [--num-envs 1 2 4] [--collect-episodes 150]
                                     [--eval-episodes 40]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MUJOCO_GL", "egl")  # read once, when mujoco is first imported (workers inherit it)
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
# robotlearn is imported inside the functions: a spawned env worker re-imports this file, and should cost no
# more to start than under the `robotlearn` command.


def bc_checkpoint(task: str, out: Path) -> Path:
    """An untrained bc_mlp of the shipped sizes for `task`, its normaliser fitted to the action box."""
    import numpy as np
    from omegaconf import OmegaConf

    from robotlearn.envs import config_root, make_env
    from robotlearn.policies.checkpoint import build_policy, save_policy
    from robotlearn.policies.config import PolicyConfig

    cfg = PolicyConfig.from_dict(OmegaConf.to_container(OmegaConf.load(config_root() / "policy" / "bc_mlp.yaml")))
    env = make_env(task)
    shapes = {"state": env.observation_space["state"].shape}
    policy = build_policy(cfg, shapes, int(env.action_space.shape[0]))
    rng = np.random.default_rng(0)
    policy.fit_normalizer({"state": rng.uniform(-1, 1, (256, shapes["state"][0])),
                           "action": rng.uniform(-1, 1, (256, env.action_space.shape[0]))})
    path = save_policy(policy, out / f"bc_{task.replace('/', '_')}", env.env_info)
    env.close()
    return path


class FirstEpisode:
    """When the first episode of a run was finished (written by collect, counted by eval), in both code paths."""

    def __init__(self) -> None:
        from robotlearn.data.writer import EpisodeWriter
        from robotlearn.policies.rollout import EvalResult

        self.at: float | None = None
        for cls, name in ((EpisodeWriter, "end_episode"), (EvalResult, "add")):  # add_episode ends in end_episode
            setattr(cls, name, self.wrap(getattr(cls, name)))

    def wrap(self, method):
        def timed(*args, **kwargs):
            out = method(*args, **kwargs)
            if self.at is None:
                self.at = time.perf_counter()
            return out
        return timed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", nargs="*", default=["sim/reach", "sim/lift"])
    p.add_argument("--num-envs", nargs="*", type=int, default=[1, 2, 4])
    p.add_argument("--collect-episodes", type=int, default=150)
    p.add_argument("--eval-episodes", type=int, default=40)
    args = p.parse_args()

    from robotlearn.cli.collect import CollectConfig, collect
    from robotlearn.cli.eval import EvalConfig, run as run_eval
    from robotlearn.envs import env_config

    first = FirstEpisode()
    print(f"machine: {os.cpu_count()} CPU cores, load avg {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min)")
    print(f"collect: scripted expert noise 0.3, {args.collect_episodes} episodes; eval: untrained bc_mlp, "
          f"{args.eval_episodes} episodes (to the horizon)")
    head = f"{'task':<11}{'command':<9}{'num_envs':>9}{'episodes':>9}{'wall s':>8}{'ep/s':>8}{'first ep s':>11}" \
           f"{'after first ep/s':>18}"
    print(head + "\n" + "-" * len(head))
    with tempfile.TemporaryDirectory(prefix="vector-envs-") as tmp:
        tmp = Path(tmp)
        for task in args.tasks:
            ckpt = bc_checkpoint(task, tmp)
            for command in ("collect", "eval"):
                for n in args.num_envs:
                    first.at = None
                    t = time.perf_counter()
                    if command == "collect":
                        episodes = args.collect_episodes
                        collect(CollectConfig(env=env_config(task), episodes=episodes, noise=0.3, seed=0,
                                              out=str(tmp / f"{task.replace('/', '_')}_{n}.zarr"), progress="off",
                                              num_envs=n))
                    else:
                        episodes = args.eval_episodes
                        with contextlib.redirect_stdout(io.StringIO()):
                            run_eval(EvalConfig(checkpoint=str(ckpt), episodes=episodes, progress="off", num_envs=n,
                                                out=str(tmp / f"eval_{n}")))
                    end = time.perf_counter()
                    wall, up = end - t, first.at - t
                    print(f"{task:<11}{command:<9}{n:>9}{episodes:>9}{wall:>8.1f}{episodes / wall:>8.1f}{up:>11.1f}"
                          f"{(episodes - 1) / (end - first.at):>18.1f}", flush=True)
    print(f"load avg at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
