"""sim/peg_pick_insert: the weld grasp, peg and hole randomisation, the expert and its noise (its success
detector: tests/test_sim_peg_insert.py)."""
from __future__ import annotations

import numpy as np
import pytest

from robotlearn.envs import make_env
from sim.scene import TABLE_Z
from sim.tasks.peg_insert import HOLE_BOX, HOLE_HEIGHT
from sim.tasks.peg_pick_insert import PEG_BOX


@pytest.fixture(scope="module")
def env():
    e = make_env("sim/peg_pick_insert")
    yield e
    e.close()


def run_episode(env, expert, seed: int) -> dict:
    obs, info = env.reset(seed=seed)
    expert.reset()
    expert.seed_episode(seed)
    done = False
    while not done:
        obs, _, term, trunc, info = env.step(expert.act(obs)[0])
        done = term or trunc
    return info


def test_reset_randomises_peg_and_hole_within_their_ranges(env):
    poses = []
    for seed in range(8):
        obs, _ = env.reset(seed=seed)
        top, tip = env.hole_top, env.peg_tip
        assert np.all(HOLE_BOX[:, 0] <= top[:2]) and np.all(top[:2] <= HOLE_BOX[:, 1]), top
        assert np.all(PEG_BOX[:, 0] <= tip[:2]) and np.all(tip[:2] <= PEG_BOX[:, 1]), tip
        assert tip[2] == pytest.approx(TABLE_Z) and top[2] == pytest.approx(HOLE_HEIGHT) and not env.grasped
        s = obs["state"]
        np.testing.assert_allclose(s[-9:-6], top, atol=1e-6)  # hole, hole - tip, tip - TCP in the privileged state
        np.testing.assert_allclose(s[-6:-3], top - tip, atol=1e-6)
        np.testing.assert_allclose(s[-3:], tip - env.tcp_pos, atol=1e-6)
        poses.append((*top[:2], *tip[:2]))
    poses = np.array(poses)
    assert len({tuple(p.round(4)) for p in poses}) == 8 and np.all(np.ptp(poses, axis=0) > 0.02)
    env.reset(seed=3)
    np.testing.assert_allclose((*env.hole_top[:2], *env.peg_tip[:2]), poses[3])


def drive(env, target, gripper: float, steps: int) -> None:
    for _ in range(steps):
        d = np.clip((target - env.tcp_pos) / env.max_delta, -1, 1)
        env.step(np.array([*d, gripper], dtype=np.float32))


def test_grasp_welds_only_with_both_fingers_on_the_peg_and_opening_releases(env):
    env.reset(seed=1)
    peg0 = env.peg_top.copy()
    drive(env, env.tcp_pos + [0.0, 0.0, 0.02], 1.0, 8)  # closed in the air: nothing to hold
    assert not env.grasped
    grasp = peg0 - [0.0, 0.0, 0.03]
    drive(env, grasp + [0.0, 0.0, 0.06], -1.0, 25)
    drive(env, grasp, -1.0, 15)
    assert not env.grasped  # open gripper around the peg
    drive(env, grasp, 1.0, 5)
    assert env.grasped
    offset = env.peg_tip - env.tcp_pos
    drive(env, grasp + [0.0, 0.0, 0.1], 1.0, 15)  # the peg rides along, at the offset it was grasped at
    assert env.peg_tip[2] > TABLE_Z + 0.08
    np.testing.assert_allclose(env.peg_tip - env.tcp_pos, offset, atol=1e-3)
    drive(env, env.tcp_pos, -1.0, 15)  # open: released, it falls to the table
    assert not env.grasped and env.peg_tip[2] < TABLE_Z + 0.02


def test_expert_noise0_inserts_95_percent_of_50(env):
    expert = env.make_expert(noise=0.0, seed=0)
    results = [run_episode(env, expert, seed) for seed in range(50)]
    assert sum(r["success"] for r in results) >= 48
    assert all(r["t"] < env.horizon for r in results if r["success"])  # terminated on success


def test_noise_lowers_expert_success(env):
    clean, noisy = env.make_expert(0.0, seed=1), env.make_expert(1.0, seed=1)
    n_clean = sum(run_episode(env, clean, s)["success"] for s in range(10))
    n_noisy = sum(run_episode(env, noisy, s)["success"] for s in range(10))
    assert n_noisy < n_clean == 10
