"""sim/peg_insert: success detector (also sim/peg_pick_insert's), hole randomisation, bore geometry from the
clearance, the expert and its noise."""
from __future__ import annotations

import mujoco
import numpy as np
import pytest

from robotlearn.config import ConfigError
from robotlearn.envs import make_env
from sim.tasks.peg_insert import HOLE_BOX, HOLE_HEIGHT, MAX_YAW, PEG_RADIUS, PEG_TIP
from sim.tasks.peg_pick_insert import PEG_LENGTH


@pytest.fixture(scope="module")
def env():
    e = make_env("sim/peg_insert")
    yield e
    e.close()


def put_tip_at(env, tip) -> None:
    """Pose the arm (kinematics only, no physics) so the peg tip is at `tip`, pointing down."""
    m, d = env.model, env.data
    for _ in range(60):
        d.qpos[env._qadr] = env.ik_joint_targets(np.asarray(tip) + [0.0, 0.0, PEG_TIP], null_gain=0.0)
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)
    np.testing.assert_allclose(env.peg_tip, tip, atol=2e-4)


def run_episode(env, expert, seed: int) -> dict:
    obs, info = env.reset(seed=seed)
    expert.reset()
    done = False
    while not done:
        obs, _, term, trunc, info = env.step(expert.act(obs)[0])
        done = term or trunc
    return info


def place_free_peg(env, tip) -> None:
    """sim/peg_pick_insert: stand the (free, ungrasped) peg upright with its tip at `tip` (kinematics only)."""
    q = env._peg_q
    env.data.qpos[q:q + 7] = [*(np.asarray(tip) + [0.0, 0.0, PEG_LENGTH / 2]), 1.0, 0.0, 0.0, 0.0]
    mujoco.mj_kinematics(env.model, env.data)
    np.testing.assert_allclose(env.peg_tip, tip, atol=1e-9)


@pytest.mark.parametrize("task, place", [("sim/peg_insert", put_tip_at), ("sim/peg_pick_insert", place_free_peg)])
def test_success_detector(task, place):
    env = make_env(task)
    env.reset(seed=0)
    assert not env.compute_success()  # the peg starts above the block (in the hand) or beside it (on the table)
    top = env.hole_top
    place(env, top - [0.0, 0.0, env.insert_depth + 0.002])
    assert env.compute_success()
    place(env, top - [0.0, 0.0, env.insert_depth - 0.003])  # in the bore, not deep enough
    assert not env.compute_success()
    place(env, top + [0.06, 0.0, -env.insert_depth - 0.002])  # as deep, but beside the block
    assert not env.compute_success()
    env.close()


def test_reset_randomises_the_hole_within_its_ranges(env):
    poses = []
    for seed in range(8):
        obs, _ = env.reset(seed=seed)
        top, yaw = env.hole_top, env.hole_yaw
        assert np.all(HOLE_BOX[:, 0] <= top[:2]) and np.all(top[:2] <= HOLE_BOX[:, 1]), top
        assert top[2] == pytest.approx(HOLE_HEIGHT) and abs(yaw) <= MAX_YAW
        np.testing.assert_allclose(obs["state"][-6:-3], top, atol=1e-6)  # hole_x/y/z in the privileged state
        np.testing.assert_allclose(obs["state"][-3:], top - env.peg_tip, atol=1e-6)
        poses.append((*top[:2], yaw))
    poses = np.array(poses)
    assert len({tuple(p.round(4)) for p in poses}) == 8
    assert np.ptp(poses[:, 0]) > 0.03 and np.ptp(poses[:, 1]) > 0.03 and np.ptp(poses[:, 2]) > 0.3
    env.reset(seed=3)
    again = (*env.hole_top[:2], env.hole_yaw)
    np.testing.assert_allclose(again, poses[3])


@pytest.mark.parametrize("clearance", [0.002, 0.001])
def test_bore_clearance_is_the_configured_one(clearance):
    """A centred peg in the bore is clearance / 2 from the nearest wall (the polygon's flats)."""
    env = make_env("sim/peg_insert", clearance=clearance)
    env.reset(seed=1)
    put_tip_at(env, env.hole_top - [0.0, 0.0, 0.015])
    m, d = env.model, env.data
    peg = m.geom("panda/peg").id
    walls = [g for g in range(m.ngeom) if m.geom(g).name.startswith("hole_wall")]
    gap = min(mujoco.mj_geomDistance(m, d, peg, g, 0.01, None) for g in walls)
    assert gap == pytest.approx(clearance / 2, abs=2e-4)
    assert env.bore_radius == pytest.approx(PEG_RADIUS + clearance / 2)
    env.close()


def test_bad_geometry_is_a_one_line_config_error():
    with pytest.raises(ConfigError, match="clearance"):
        make_env("sim/peg_insert", clearance=0.0)
    with pytest.raises(ConfigError, match="insert_depth"):
        make_env("sim/peg_insert", insert_depth=0.04)


def test_expert_noise0_inserts_95_percent_of_50(env):
    expert = env.make_expert(noise=0.0, seed=0)
    results = [run_episode(env, expert, seed) for seed in range(50)]
    assert sum(r["success"] for r in results) >= 48, [r["t"] for r in results if not r["success"]]
    assert all(r["t"] < env.horizon for r in results if r["success"])  # terminated on success


def test_noise_lowers_expert_success(env):
    clean, noisy = env.make_expert(0.0, seed=1), env.make_expert(1.0, seed=1)
    n_clean = sum(run_episode(env, clean, s)["success"] for s in range(10))
    n_noisy = sum(run_episode(env, noisy, s)["success"] for s in range(10))
    assert n_noisy < n_clean == 10


def test_a_peg_aimed_beside_the_bore_stays_on_top(env):
    """Aimed 4 mm off (twice the chamfer), the clean expert's push does not get the peg in: it stays on the block."""
    expert = env.make_expert(0.0, seed=0)
    env.reset(seed=2)
    expert.act({})  # starts the episode (draws the zero aiming error), then misaim it
    expert.aim = np.array([0.004, 0.0, 0.0])
    lowest = np.inf
    for _ in range(env.horizon - 1):
        _, _, term, trunc, info = env.step(expert.act({})[0])
        lowest = min(lowest, env.peg_tip[2])
        if term or trunc:
            break
    assert not info["success"]
    assert lowest > env.hole_top[2] - env.chamfer - 0.0005  # never below the chamfer
