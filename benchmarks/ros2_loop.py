"""ROS 2 control-loop timing: the full stack vs a bare rclpy ping-pong, and weight-sync latency.

    python benchmarks/ros2_loop.py                      # 20 Hz and 50 Hz, 10 s each, 1 MB + 10 MB weights
    python benchmarks/ros2_loop.py --seconds 5 --rates 20

Control loop, per rate: the MuJoCo robot node runs in one process; this process runs
`Ros2RobotEnv` + the actor's policy (zero base + ResidualPolicy MLP, as `run_actor` does).
  * achieved rate and step jitter (|step period - 1/hz|) measured at env.step() returns;
  * observation-to-command latency: from the robot node stamping a JointState to the robot
    node receiving the command computed from it (the env tags each command with that stamp),
    measured by the robot node on its own clock;
  * floor: a bare rclpy ping-pong between a robot-side process and this process: the robot
    side publishes a stamped JointState at the same state rate, this process echoes a
    Float64MultiArray at once, the robot side measures the same stamp-to-arrival time.
Weight sync: learner transport here, actor transport in another process; time from
`publish_weights` to the actor having decoded the weights (acked by a heartbeat).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MUJOCO_GL", "egl")

from hw_drivers.config import DdsConfig  # noqa: E402
from hw_drivers.conversions import STAMP_LABEL, command_obs_stamp, make_joint_state  # noqa: E402
from hw_drivers.processes import Watcher, node_env, start, stop, wait_until  # noqa: E402


def pct(x, q) -> float:
    return float(np.percentile(np.asarray(x, float), q)) if len(x) else float("nan")


# --- robot-side helper processes ----------------------------------------------------
def pinger(domain: int, hz: float, seconds: float) -> None:
    """Publish stamped JointStates at `hz`; print stamp->echo latencies (ms) as JSON."""
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray

    from hw_drivers.ros_runtime import RELIABLE_QOS, RosNode

    ros = RosNode("bench_pinger", DdsConfig(domain_id=domain))
    lat: list[float] = []
    pub = ros.node.create_publisher(JointState, "/bench/joint_states", 10)
    ros.node.create_subscription(Float64MultiArray, "/bench/command",
                                 lambda m: lat.append((time.time_ns() - command_obs_stamp(m)) / 1e6), RELIABLE_QOS)
    wait_until(lambda: pub.get_subscription_count() > 0, 30, "echo subscriber")
    time.sleep(0.5)
    q = [0.0] * 7
    end, period, t_next = time.monotonic() + seconds, 1.0 / hz, time.monotonic()
    while time.monotonic() < end:
        pub.publish(make_joint_state([f"j{i}" for i in range(7)], q, q, ros.node.get_clock().now().to_msg()))
        t_next += period
        time.sleep(max(0.0, t_next - time.monotonic()))
    time.sleep(0.3)
    print(json.dumps(lat), flush=True)
    ros.close()


def weights_actor(domain: int) -> None:
    """Decode every weights update and ack its version by heartbeat."""
    from hw_drivers.ros2_transport import Ros2ActorTransport, Ros2TransportConfig
    from robotlearn.runtime.messages import decode_weights

    t = Ros2ActorTransport(Ros2TransportConfig(dds=DdsConfig(domain_id=domain)), actor_id="bench")
    end, last_beat, v = time.monotonic() + 300, 0.0, -1
    while time.monotonic() < end:
        if time.monotonic() - last_beat > 0.2:  # keep announcing until the learner has matched us
            t.heartbeat("bench", {"version": v})
            last_beat = time.monotonic()
        w = t.poll_weights()
        if w is not None:
            v, _, meta = decode_weights(w)
            t.heartbeat("bench", {"version": v})
            if meta.get("last"):
                break
        time.sleep(0.0005)
    time.sleep(0.5)
    t.close()


# --- measurements -------------------------------------------------------------------
def control_loop(hz: float, seconds: float, publish_hz: float, domain: int, tmp: Path,
                 step_on_state: bool = True) -> dict:
    from hw_drivers.ros2_env import Ros2RobotEnv
    from robotlearn.rl.residual import ResidualConfig, ResidualPolicy

    params = yaml.safe_load((REPO / "configs/ros2/panda_sim.yaml").read_text())
    params["robot"]["control_hz"] = hz
    params["env"]["horizon"] = 100_000
    params["env"]["step_on_state"] = step_on_state
    params["sim"]["publish_hz"] = publish_hz
    params["dds"]["domain_id"] = domain
    params["robot"]["staleness"]["state_s"] = 1.0  # measure stalls as jitter instead of aborting on a busy machine
    path = tmp / f"robot_{hz:g}.yaml"
    path.write_text(yaml.safe_dump(params))
    node = start("mujoco_robot_node", ["--params", str(path)], domain, tmp / f"robot_{hz:g}.log")
    watcher = Watcher(domain)
    env = None
    try:
        wait_until(lambda: watcher.last("status"), 60, "robot node", (node,))
        env = Ros2RobotEnv(str(path))
        obs, _ = env.reset(seed=0)
        S, A = obs["state"].shape[0], env.action_space.shape[0]
        policy = ResidualPolicy(S, A, ResidualConfig(), seed=0)  # hidden 256 x 2, as the actor runs it
        base = np.zeros(A, np.float32)
        rng = np.random.default_rng(0)
        for _ in range(int(hz)):  # 1 s warm-up
            obs, *_ = env.step(policy.act(obs["state"], base, "eval"))
        n = int(seconds * hz)
        t_start = time.monotonic()
        returns, ages, compute, env_side = [], [], [], []
        for _ in range(n):
            t0 = time.perf_counter()
            a = policy.act(obs["state"], base + 0.1 * rng.standard_normal(A).astype(np.float32), "train")
            compute.append((time.perf_counter() - t0) * 1e3)
            ages.append(env.cache.age(env.p.robot.state_topic) * 1e3)
            env_side.append((time.time_ns() - env._obs_stamp) / 1e6)  # state stamp -> about to publish
            obs, *_ = env.step(a)
            returns.append(time.monotonic())
        time.sleep(0.5)
        lat = [x for s in watcher.since("status", t_start) for x in s.get("obs_to_command_ms", [])]
        periods = np.diff(returns)
        return {
            "hz": hz, "step_on_state": step_on_state, "steps": n, "achieved_hz": (n - 1) / (returns[-1] - returns[0]),
            "jitter_ms_p50": pct(np.abs(periods - 1 / hz) * 1e3, 50), "jitter_ms_p99": pct(np.abs(periods - 1 / hz) * 1e3, 99),
            "overruns": env.timing["overruns"], "latency_ms_p50": pct(lat, 50), "latency_ms_p99": pct(lat, 99),
            "latency_samples": len(lat), "policy_ms_p50": pct(compute, 50),
            "state_age_at_obs_ms_p50": pct(ages, 50), "stamp_to_publish_ms_p50": pct(env_side, 50),
            "_latency_ms": lat, "_periods_ms": (periods * 1e3).tolist(),
        }
    finally:
        if env is not None:
            env.close()
        watcher.close()
        stop(node)


def ping_pong(hz: float, seconds: float, domain: int) -> dict:
    from std_msgs.msg import Float64MultiArray, MultiArrayDimension
    from sensor_msgs.msg import JointState

    from hw_drivers.ros_runtime import RELIABLE_QOS, SENSOR_QOS, RosNode

    ros = RosNode("bench_echo", DdsConfig(domain_id=domain))
    pub = ros.node.create_publisher(Float64MultiArray, "/bench/command", RELIABLE_QOS)

    def echo(m: JointState) -> None:  # the same message types and QoS as the env, no env logic
        stamp = m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec
        out = Float64MultiArray(data=list(m.position))
        out.layout.dim = [MultiArrayDimension(label=f"{STAMP_LABEL}{stamp}", size=7, stride=7)]
        pub.publish(out)

    ros.node.create_subscription(JointState, "/bench/joint_states", echo, SENSOR_QOS)
    proc = subprocess.run([sys.executable, __file__, "--pinger", str(domain), str(hz), str(seconds)], cwd=REPO,
                          env=node_env(domain), capture_output=True, text=True, timeout=seconds + 60)
    ros.close()
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    lat = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"pingpong_ms_p50": pct(lat, 50), "pingpong_ms_p99": pct(lat, 99), "pingpong_samples": len(lat),
            "_pingpong_ms": lat}


def weight_sync(sizes_mb: list[float], reps: int, domain: int, tmp: Path) -> dict:
    from hw_drivers.ros2_transport import Ros2LearnerTransport, Ros2TransportConfig
    from robotlearn.runtime.messages import encode_weights

    learner = Ros2LearnerTransport(Ros2TransportConfig(dds=DdsConfig(domain_id=domain)))
    actor = subprocess.Popen([sys.executable, __file__, "--weights-actor", str(domain)], cwd=REPO,
                             env=node_env(domain), stdout=open(tmp / "weights_actor.log", "w"), stderr=subprocess.STDOUT)
    acked = lambda v: learner.heartbeats().get("bench", (0, {}))[1].get("version") == v  # noqa: E731
    out, v = {}, 0
    try:
        wait_until(lambda: "bench" in learner.heartbeats(), 60, "weights actor", (actor,))
        for mb in sizes_mb:
            w = np.random.default_rng(0).standard_normal(int(mb * 1e6 / 4)).astype(np.float32)
            times = []
            for r in range(reps + 1):
                v += 1
                payload = encode_weights(v, {"w": w}, last=(mb == sizes_mb[-1] and r == reps))
                t0 = time.perf_counter()
                learner.publish_weights(payload)
                wait_until(lambda: acked(v), 30, f"ack of version {v}", (actor,), poll=0.0002)
                if r:  # the first one warms up the DDS writer
                    times.append((time.perf_counter() - t0) * 1e3)
                time.sleep(0.2)
            out[f"{mb:g}MB"] = {"p50_ms": pct(times, 50), "max_ms": float(max(times)), "reps": reps}
    finally:
        learner.close()
        stop(actor, timeout=5)
    return out


def plot(rows: list[dict], path: Path) -> None:
    """CDFs of observation-to-command latency (stack vs ping-pong) and of the step period."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    floors = set()
    for r in rows:
        sync = "on state" if r["step_on_state"] else "at tick"
        curves = [("_latency_ms", "-", f"stack, {sync}")]
        if r["hz"] not in floors:  # one ping-pong per rate
            floors.add(r["hz"])
            curves.append(("_pingpong_ms", ":", "ping-pong"))
        for key, style, label in curves:
            x = np.sort(r[key])
            ax1.plot(x, np.linspace(0, 1, len(x)), style, label=f"{r['hz']:g} Hz {label}")
        x = np.sort(r["_periods_ms"])
        ax2.plot(x, np.linspace(0, 1, len(x)), label=f"{r['hz']:g} Hz {sync} (target {1e3 / r['hz']:.0f} ms)")
    ax1.set(xscale="log", xlabel="observation -> command at the robot (ms)", ylabel="CDF", title="latency")
    ax2.set(xlabel="env.step() period (ms)", ylabel="CDF", title="control period")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--pinger":
        return pinger(int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]))
    if len(sys.argv) > 1 and sys.argv[1] == "--weights-actor":
        return weights_actor(int(sys.argv[2]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", type=float, nargs="+", default=[20.0, 50.0])
    ap.add_argument("--seconds", type=float, default=10.0, help="measured seconds per rate")
    ap.add_argument("--publish-hz", type=float, default=250.0, help="robot node JointState rate (divides 500 Hz physics)")
    ap.add_argument("--weights-mb", type=float, nargs="+", default=[1.0, 10.0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--compare", action="store_true",
                    help="also run each rate with env.step_on_state=false (act at the tick on the cached state)")
    ap.add_argument("--domain-id", type=int, default=150 + os.getpid() % 50)
    ap.add_argument("--plot", default="outputs/ros2_loop.png", help="latency CDF plot ('' to skip)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="ros2_loop_"))
    os.environ.setdefault("ROS_LOG_DIR", str(tmp / "ros_logs"))
    print(f"ROS 2 loop benchmark (Fast DDS, localhost, domain {args.domain_id}, state published at "
          f"{args.publish_hz:g} Hz, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}); logs in {tmp}")
    rows = []
    for hz in args.rates:
        floor = ping_pong(args.publish_hz, args.seconds, args.domain_id)
        for sync in ([True, False] if args.compare else [True]):
            r = control_loop(hz, args.seconds, args.publish_hz, args.domain_id, tmp, sync)
            r.update(floor)
            r["latency_ratio_p50"] = r["latency_ms_p50"] / r["pingpong_ms_p50"]
            r["latency_ratio_p99"] = r["latency_ms_p99"] / r["pingpong_ms_p99"]
            rows.append(r)
            print(json.dumps({k: v for k, v in r.items() if not k.startswith("_")}))
    print("\n  rate | on state | achieved | jitter p50/p99 ms | obs->cmd p50/p99 ms | ping-pong p50/p99 ms | ratio p50/p99 "
          "| overruns | policy ms | state age ms | stamp->publish ms")
    for r in rows:
        print(f"{r['hz']:5.0f}  | {'yes' if r['step_on_state'] else 'no':>8} | {r['achieved_hz']:8.2f} | {r['jitter_ms_p50']:6.2f} / {r['jitter_ms_p99']:6.2f}   "
              f"| {r['latency_ms_p50']:7.2f} / {r['latency_ms_p99']:7.2f}   | {r['pingpong_ms_p50']:7.3f} / "
              f"{r['pingpong_ms_p99']:7.3f}    | {r['latency_ratio_p50']:5.1f} / {r['latency_ratio_p99']:5.1f} "
              f"| {r['overruns']:8d} | {r['policy_ms_p50']:9.2f} | {r['state_age_at_obs_ms_p50']:12.2f} "
              f"| {r['stamp_to_publish_ms_p50']:.2f}")
    if args.plot:
        plot(rows, Path(args.plot))
    ws = weight_sync(args.weights_mb, args.reps, args.domain_id, tmp)
    print(f"(load average now {os.getloadavg()[0]:.1f})")
    print("\nweight sync (publish -> actor decoded, other process):")
    for k, v in ws.items():
        print(f"  {k:>6}: p50 {v['p50_ms']:.1f} ms, max {v['max_ms']:.1f} ms over {v['reps']} updates")


if __name__ == "__main__":
    main()
