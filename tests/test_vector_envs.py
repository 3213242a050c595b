"""`num_envs=N` for collect and eval: N env worker processes give the episodes of one process.

Each episode depends only on its reset seed (the env resets from it, the scripted expert's noise and
a diffusion policy's sampling are seeded from it), so the dataset and the per-episode eval outcomes
are the same for any N, and a collection killed and resumed writes what an uninterrupted one writes.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from robotlearn.cli.main import main as cli
from robotlearn.data import EpisodeDataset
from robotlearn.envs import make_env
from robotlearn.policies.checkpoint import build_policy, save_policy
from robotlearn.policies.config import DiffusionConfig, EncoderConfig, PolicyConfig

REPO = Path(__file__).resolve().parents[1]
META = ("seed", "success", "terminated", "length", "source")


def collect(out: Path, *args: str) -> None:
    assert cli(["collect", "env=sim/reach", f"out={out}", "progress=off", *args]) == 0


def episodes(path: Path) -> list[tuple[dict, dict]]:
    ds = EpisodeDataset(path)
    return [({k: ds.episode_meta(i)[k] for k in META}, ds.get_episode(i)) for i in range(ds.n_episodes)]


def assert_same_episodes(a: Path, b: Path) -> list[tuple[dict, dict]]:
    ea, eb = episodes(a), episodes(b)
    assert [m for m, _ in ea] == [m for m, _ in eb]
    for (m, x), (_, y) in zip(ea, eb):
        assert sorted(x) == sorted(y)
        for k in x:
            assert np.array_equal(x[k], y[k]), f"episode with seed {m['seed']}: {k} differs"
    return ea


@pytest.mark.parametrize("args", [["episodes=5", "noise=0.6", "env.cameras=[front]", "env.image_size=16"],
                                  ["episodes=3", "noise=0.4", "only_success=true", "seed=3"]])
def test_collect_with_two_envs_writes_the_dataset_of_one(tmp_path, args):
    collect(tmp_path / "one.zarr", *args)
    collect(tmp_path / "two.zarr", *args, "num_envs=2")
    eps = assert_same_episodes(tmp_path / "one.zarr", tmp_path / "two.zarr")
    # not vacuous: the noise differs between episodes, and only_success skipped failed seeds
    acts = [ep["action"][:5] for _, ep in eps]
    assert not any(np.array_equal(acts[0], a) for a in acts[1:])
    if "only_success=true" in args:
        seeds = [m["seed"] for m, _ in eps]
        assert all(m["success"] for m, _ in eps) and seeds != list(range(3, 3 + len(seeds))), seeds


def _children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids += [int(c) for c in (task / "children").read_text().split()]
    return kids


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_killed_collection_resumes_into_the_uninterrupted_one_and_its_workers_stop(tmp_path):
    out = tmp_path / "killed.zarr"
    cmd = [sys.executable, "-m", "robotlearn", "collect", "env=sim/reach", "noise=0.6", "episodes=5000",
           f"out={out}", "progress=off", "num_envs=2"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (out.exists() and EpisodeDataset(out).n_episodes >= 3):
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.1)
        workers = [c for c in _children(proc.pid) if "resource_tracker" not in Path(f"/proc/{c}/cmdline").read_text()]
        assert len(workers) == 2, workers
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.time() + 15  # a worker notices within its poll second (and finishes its episode)
        while time.time() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.1)
        assert not any(_alive(w) for w in workers), "env workers outlived their killed parent"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    n = EpisodeDataset(out).n_episodes
    assert 3 <= n < 5000
    collect(out, "noise=0.6", f"episodes={n + 3}")  # resume (in one process)
    collect(tmp_path / "whole.zarr", "noise=0.6", f"episodes={n + 3}")
    eps = assert_same_episodes(out, tmp_path / "whole.zarr")
    assert [m["seed"] for m, _ in eps] == list(range(n + 3))


def test_a_killed_worker_is_a_one_line_error_naming_it_and_its_episode(tmp_path, capsys):
    out = tmp_path / "d.zarr"
    found: list[int] = []

    def kill_a_worker() -> None:
        deadline = time.time() + 120
        while time.time() < deadline and not (out.exists() and EpisodeDataset(out).n_episodes >= 2):
            time.sleep(0.05)
        workers = sorted((p for p in mp.active_children() if p.name.startswith("collect-env-")), key=lambda p: p.name)
        found.extend(p.pid for p in workers)
        os.kill(found[1], signal.SIGKILL)

    killer = threading.Thread(target=kill_a_worker, daemon=True)
    killer.start()
    with pytest.raises(SystemExit) as e:
        cli(["collect", "env=sim/reach", "noise=0.3", "episodes=5000", f"out={out}", "progress=off", "num_envs=2"])
    killer.join(5)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(found) == 2
    assert err.startswith("robotlearn: error: collect sim/reach: env worker 1 ") and len(err.splitlines()) == 1, err
    assert re.search(rf"\(pid {found[1]}\) was killed by SIGKILL \((while running|idle, after) the episode with "
                     rf"reset seed \d+\)$", err), err
    assert not [p for p in mp.active_children() if p.name.startswith("collect-env-")]  # the other one is stopped
    ds = EpisodeDataset(out)  # what was committed stays, in seed order
    assert ds.n_episodes >= 2 and ds.meta_array("seed").tolist() == list(range(ds.n_episodes))


@pytest.fixture(scope="module")
def diffusion_ckpt(tmp_path_factory):
    """An untrained small diffusion policy on sim/reach: its actions come from sampling noise alone."""
    env = make_env("sim/reach")
    torch.manual_seed(0)
    cfg = PolicyConfig(kind="diffusion", horizon=8, n_action_steps=4,
                       encoder=EncoderConfig(state_hidden=[32], state_features=16),
                       diffusion=DiffusionConfig(down_dims=[16, 32], step_embed_dim=16, num_inference_steps=3))
    policy = build_policy(cfg, {"state": env.observation_space["state"].shape}, 4)
    dim = env.observation_space["state"].shape[0]
    policy.fit_normalizer({"state": np.random.default_rng(0).uniform(-1, 1, (100, dim)),
                           "action": np.random.default_rng(1).uniform(-1, 1, (100, 4))})
    path = save_policy(policy, tmp_path_factory.mktemp("ckpt") / "diffusion", env.env_info)
    env.close()
    return path


def test_a_sampling_policy_seeded_per_episode_acts_the_same_whatever_ran_before(diffusion_ckpt):
    from robotlearn.policies.checkpoint import load_policy

    policy = load_policy(diffusion_ckpt, device="cpu")
    obs = {"state": np.zeros(policy.obs_shapes["state"], np.float32)}
    chunks = []
    for other in (0, 1):
        torch.manual_seed(other)  # a different global stream each time
        policy.reset()
        policy.seed_episode(7)
        chunks.append(policy.act(obs))
    policy.reset()
    unseeded = policy.act(obs)
    assert np.array_equal(chunks[0], chunks[1]) and not np.array_equal(chunks[0], unseeded)


def test_eval_with_two_envs_gives_the_per_episode_outcomes_of_one(diffusion_ckpt, tmp_path):
    # a wide tolerance, so the random policy succeeds in some episodes and not in others
    args = ["eval", f"policy={diffusion_ckpt}", "env=sim/reach", "env.tolerance=0.2", "episodes=6", "progress=off",
            "video=true", "video_episodes=2", "env.image_size=32"]
    results = {}
    for n in (1, 2):
        assert cli([*args, f"out={tmp_path / str(n)}", f"num_envs={n}"]) == 0
        results[n] = json.loads((tmp_path / str(n) / "results.json").read_text())
    one, two = results[1]["per_episode"], results[2]["per_episode"]
    assert one == two
    assert one["seed"] == list(range(100_000, 100_006)) and 0 < sum(one["success"]) < 6, one
    assert (tmp_path / "1" / "rollouts.gif").read_bytes() == (tmp_path / "2" / "rollouts.gif").read_bytes()


@pytest.mark.parametrize("args, why", [
    (["collect", "env=sim/reach", "num_envs=0"], "num_envs must be in [1, inf), got 0"),
    (["eval", "policy=/no/ckpt", "num_envs=0"], "num_envs must be in [1, inf), got 0"),
    (["collect", "env=ros2/panda_sim", "num_envs=2"], "collect num_envs=2: env ros2/panda_sim.yaml is one robot"),
    (["collect", "env=sim/reach", "env.intervene=expert", "teleop=true", "num_envs=2"],
     "collect teleop=true records one human on one robot; drop num_envs=2"),
])
def test_a_bad_num_envs_is_a_one_line_error(args, why, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli([*args, f"out={tmp_path / 'x'}", "progress=off"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and why in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x").exists()


def test_eval_refuses_two_envs_on_a_robot(diffusion_ckpt, capsys):
    with pytest.raises(SystemExit) as e:
        cli(["eval", f"policy={diffusion_ckpt}", "env=ros2/panda_sim", "num_envs=2", "progress=off"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "eval num_envs=2: env ros2/panda_sim.yaml is one robot" in err, err
