"""Actor node: `run_actor` on a `Ros2RobotEnv`, shipping episodes over the ROS 2 transport.

    python -m hw_drivers.actor_node --params configs/ros2/finetune_panda_sim.yaml

Runs on the robot's computer next to the robot driver. It never waits for the
learner: if the learner dies it keeps acting with the last weights it received
and picks up new ones when a learner publishes again (weights are transient-local).
The env paces the control loop itself, so the actor loop does not sleep on top.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Optional

from hw_drivers.bases import JointReachBase
from hw_drivers.finetune_params import FinetuneParams, transport_config
from hw_drivers.node_common import parse, stop_on_signals
from hw_drivers.ros2_env import Ros2RobotEnv
from hw_drivers.ros2_transport import Ros2ActorTransport
from robotlearn.envs import EnvError
from robotlearn.policies.base import ZeroPolicy
from robotlearn.runtime.actor import run_actor

log = logging.getLogger("robotlearn.actor_node")


def load_base(fp: FinetuneParams, env):
    b = fp.base
    if b.kind == "zero":
        return ZeroPolicy(env.action_space.shape[0])
    if b.kind == "joint_reach":
        return JointReachBase.for_env(env, gain=b.gain, bias=b.bias)
    if b.kind == "checkpoint":
        from robotlearn.policies.checkpoint import load_policy

        return load_policy(b.checkpoint, env=env)
    raise ValueError(f"base.kind = {b.kind!r}, expected zero | checkpoint | joint_reach")


def run(fp: FinetuneParams, stop) -> dict:
    env = Ros2RobotEnv(fp.robot_params, overrides=fp.robot_overrides)
    transport = None
    fp.actor.pace_hz = 0.0  # Ros2RobotEnv.step already holds the wall-clock control rate
    stats: dict = {}
    try:
        transport = Ros2ActorTransport(transport_config(fp, env.p), actor_id=fp.actor.actor_id)
        base = load_base(fp, env)
        while not stop.is_set():
            try:
                stats = run_actor(transport, env, base, fp.rl, fp.actor, stop)
                break
            except EnvError as e:  # stale topic, refused reset (e-stop), robot restarting
                if not fp.retry_on_env_error:
                    raise
                log.error("env error, retrying in 1 s with the current weights: %s", e)
                transport.redeliver()
                stop.wait(1.0)
    finally:
        if transport is not None:
            transport.close()
        env.close()
    return stats


def main(argv: Optional[list[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[actor_node] %(message)s")
    _, fp = parse(__doc__.split("\n\n")[0], argv)
    t0 = time.time()
    stats = run(fp, stop_on_signals())
    print(json.dumps({"actor_stats": stats, "wall_s": time.time() - t0}, default=float), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
