"""The MuJoCo Panda tasks: real kinematics, EE control, success detectors, experts, cameras, joint-level API."""
from __future__ import annotations

import mujoco
import numpy as np
import pytest

from robotlearn.envs import make_env
from robotlearn.policies.base import BasePolicy
from sim.tasks import ReachEnv
from sim.tasks.lift import CUBE_HALF

TASKS = ["sim/reach", "sim/lift", "sim/pick_place"]


def run_episode(env, policy, seed: int) -> dict:
    obs, info = env.reset(seed=seed)
    policy.reset()
    done = False
    while not done:
        obs, _, term, trunc, info = env.step(policy.act(obs)[0])
        done = term or trunc
    return info


def panda_flange_dh(q: np.ndarray) -> np.ndarray:
    """Franka's published (Craig) DH parameters -> flange position; independent of any MJCF."""
    a = [0, 0, 0, 0.0825, -0.0825, 0, 0.088, 0]
    d = [0.333, 0, 0.316, 0, 0.384, 0, 0, 0.107]
    alpha = [0, -np.pi / 2, np.pi / 2, np.pi / 2, -np.pi / 2, np.pi / 2, np.pi / 2, 0]
    T = np.eye(4)
    for i, th in enumerate([*q, 0.0]):
        ca, sa, ct, st = np.cos(alpha[i]), np.sin(alpha[i]), np.cos(th), np.sin(th)
        T = T @ np.array([[ct, -st, 0, a[i]], [st * ca, ct * ca, -sa, -d[i] * sa],
                          [st * sa, ct * sa, ca, d[i] * ca], [0, 0, 0, 1]])
    return T[:3, 3]


@pytest.fixture(scope="module")
def lift():
    env = make_env("sim/lift")
    yield env
    env.close()


def test_panda_model_has_real_kinematics_and_limits(lift):
    m, d = lift.model, mujoco.MjData(lift.model)
    lim = np.array([[-2.8973, 2.8973], [-1.7628, 1.7628], [-2.8973, 2.8973], [-3.0718, -0.0698],
                    [-2.8973, 2.8973], [-0.0175, 3.7525], [-2.8973, 2.8973]])
    np.testing.assert_allclose(lift.joint_limits, lim)
    assert lift.arm_joint_names == [f"panda/joint{i}" for i in range(1, 8)]
    rng = np.random.default_rng(0)
    for _ in range(10):
        q = rng.uniform(lim[:, 0], lim[:, 1])
        d.qpos[lift._qadr] = q
        mujoco.mj_kinematics(m, d)
        np.testing.assert_allclose(d.body("panda/hand").xpos, panda_flange_dh(q), atol=1e-6)
    assert m.opt.timestep == 0.002 and lift.n_substeps == 25 and lift.control_hz == 20.0
    # primitive geometry only: software-GL rendering stays cheap
    assert not np.any(m.geom_type == mujoco.mjtGeom.mjGEOM_MESH)


def test_ee_delta_action_moves_tcp(lift):
    lift.reset(seed=0)
    for axis in range(3):
        p0 = lift.tcp_pos
        a = np.zeros(4, np.float32)
        a[axis] = 1.0
        for _ in range(3):
            lift.step(a)
        moved = lift.tcp_pos - p0
        assert 0.6 * 3 * lift.max_delta < moved[axis] <= 1.1 * 3 * lift.max_delta, moved
        assert np.abs(np.delete(moved, axis)).max() < 0.01, moved
    # closing the gripper on nothing brings the fingers together
    for _ in range(5):
        lift.step(np.array([0, 0, 0, 1], np.float32))
    assert lift.gripper_width < 0.005


def commanded_moves(env, steps: int = 20, hold: int = 5) -> list[np.ndarray]:
    """Per axis: the TCP's displacement after `steps` steps of a 0.25 x max_delta action along it, then `hold`
    zero actions (the servo catches up)."""
    moves = []
    for axis in range(3):
        env.reset(seed=0)
        p0 = env.tcp_pos
        a = np.array([0, 0, 0, -1], np.float32)
        a[axis] = 0.25
        for _ in range(steps):
            env.step(a)
        for _ in range(hold):
            env.step(np.array([0, 0, 0, -1], np.float32))
        moves.append(env.tcp_pos - p0)
    return moves


def test_integrated_ee_steps_move_the_tcp_by_the_commanded_sum():
    """20 x 5 mm commanded: with ee_integrate the TCP ends within 2 mm of 100 mm on the axis and of 0 off it;
    stepping from the measured TCP (the default) falls short, as a lagging servo does."""
    env = make_env("sim/lift_proprio", ee_integrate=True)
    assert env.env_info.action_spec.kind == "ee_delta_pos_integrated+gripper"
    assert env.env_info.config["ee_integrate"] is True
    for axis, moved in enumerate(commanded_moves(env)):
        expect = np.eye(3)[axis] * 20 * 0.25 * env.max_delta
        np.testing.assert_allclose(moved, expect, atol=0.002, err_msg=f"axis {axis}")
    measured = make_env("sim/lift_proprio")
    assert measured.env_info.action_spec.kind == "ee_delta_pos+gripper"
    short = [moved[axis] for axis, moved in enumerate(commanded_moves(measured))]
    assert max(short) < 0.09, short  # measured here: 65-78 mm
    with pytest.raises(ValueError, match="ee_integrate must be true or false"):
        make_env("sim/lift", ee_integrate="yes")


def test_integrated_target_stays_within_one_step_of_a_blocked_tcp():
    from robotlearn.envs.kinematics import tcp_target

    measured, box = np.zeros(3), (np.full(3, -1.0), np.full(3, 1.0))
    target = None
    for _ in range(50):  # the TCP never moves (contact): the target must not wind up
        target = tcp_target(True, measured, target, np.array([0.02, 0.0, -0.02]), *box, max_lead=0.02)
    np.testing.assert_allclose(target, [0.02, 0.0, -0.02])
    # without integration every step starts from the measured TCP; the box clips either way
    np.testing.assert_allclose(tcp_target(False, measured, target, np.full(3, 0.01), *box, 0.02), np.full(3, 0.01))
    np.testing.assert_allclose(tcp_target(True, np.full(3, 0.995), None, np.full(3, 0.01), *box, 0.02), np.ones(3))


@pytest.mark.parametrize("name", [*TASKS, "sim/peg_insert", "sim/peg_pick_insert"])
def test_expert_noise0_succeeds_with_integrated_ee_steps(name):
    """The scripted experts step from `ee_reference`, so they need no change for ee_integrate."""
    env = make_env(name, ee_integrate=True)
    expert = env.make_expert(noise=0.0, seed=0)
    assert all(run_episode(env, expert, seed)["success"] for seed in range(3))
    env.close()


@pytest.mark.parametrize("name", TASKS)
def test_expert_noise0_succeeds(name):
    env = make_env(name)
    expert = env.make_expert(noise=0.0, seed=0)
    assert isinstance(expert, BasePolicy) and expert.action_chunk_size == 1 and expert.action_dim == 4
    results = [run_episode(env, expert, seed) for seed in range(4)]
    assert all(r["success"] for r in results), [r["t"] for r in results]
    assert all(r["t"] < env.horizon for r in results)  # terminated on success
    env.close()


def test_noise_degrades_expert(lift):
    clean, noisy = lift.make_expert(0.0, seed=1), lift.make_expert(1.0, seed=1)
    n_clean = sum(run_episode(lift, clean, s)["success"] for s in range(8))
    n_noisy = sum(run_episode(lift, noisy, s)["success"] for s in range(8))
    assert n_noisy < n_clean == 8


def test_an_object_pushed_off_the_table_lands_on_the_floor():
    env = make_env("sim/lift")
    env.reset(seed=0)
    env.data.qpos[env._cube_q:env._cube_q + 3] = [1.2, 0.0, 0.05]  # past the table's far edge (x = 0.95 m)
    obs = None
    for _ in range(40):  # 40 control steps: ~2 s, enough to fall 0.75 m and settle
        obs, *_ = env.step(np.zeros(4, np.float32))
    z = env.data.qpos[env._cube_q + 2]
    assert abs(z - (-0.75 + CUBE_HALF)) < 0.005, z  # resting on the floor plane, not falling on
    assert np.all(np.abs(obs["state"]) < 10)
    env.close()


def test_success_detectors():
    env = make_env("sim/lift")
    env.reset(seed=0)
    assert not env.compute_success()
    env.data.qpos[env._cube_q + 2] = CUBE_HALF + env.lift_height + 0.01
    assert env.compute_success()
    env.close()

    env = make_env("sim/pick_place", goal="indicated")
    obs, _ = env.reset(seed=3)
    goal = int(np.argmax(env.goal_onehot))
    np.testing.assert_array_equal(obs["state"][-2:], np.eye(2)[goal])
    for b, expect in ((1 - goal, False), (goal, True)):
        env.data.qpos[env._cube_q:env._cube_q + 3] = env.bin_centre(b) + [0, 0, 0.03]
        mujoco.mj_forward(env.model, env.data)
        assert env.compute_success() == expect
    env.close()


def test_reach_target_randomised_and_in_obs():
    env = make_env("sim/reach")
    targets = []
    for s in range(3):
        obs, _ = env.reset(seed=s)
        np.testing.assert_allclose(obs["state"][18:21], env.target_pos, atol=1e-6)
        targets.append(env.target_pos)
    assert len({tuple(t.round(4)) for t in targets}) == 3
    env.close()


def test_cameras_render_images():
    env = make_env("sim/pick_place", cameras=["front", "wrist"], image_size=48)
    assert env.observation_space["images/front"].shape == (48, 48, 3)
    obs, _ = env.reset(seed=0)
    for k in ("images/front", "images/wrist"):
        img = obs[k]
        assert img.shape == (48, 48, 3) and img.dtype == np.uint8 and img.std() > 5
    first = obs["images/front"].copy()
    for _ in range(5):
        obs, *_ = env.step(np.array([0, 1, -1, 0], np.float32))
    assert np.abs(obs["images/front"].astype(int) - first).sum() > 0  # the arm moved in view
    env.close()
    with pytest.raises(ValueError, match="unknown camera"):
        ReachEnv(cameras=["nope"])


def test_joint_level_interface(lift):
    obs, _ = lift.reset(seed=0)
    q0 = lift.qpos
    target = q0 + np.array([0.2, -0.1, 0.1, 0.15, 0.0, -0.1, 0.3])
    for _ in range(20):
        lift.set_joint_targets(target, gripper=1.0)
        lift.physics_step()
    np.testing.assert_allclose(lift.qpos, target, atol=0.02)
    assert lift.gripper_width < 0.005
    state = lift.get_obs()["state"]
    np.testing.assert_allclose(state[:7], lift.qpos, atol=1e-6)
    assert isinstance(lift.compute_success(), bool)
    lift.set_joint_targets(np.full(7, 10.0), gripper=-1.0)  # clipped to the joint limits
    np.testing.assert_allclose(lift.data.ctrl[:7], lift.joint_limits[:, 1])
    with pytest.raises(ValueError, match="q_target"):
        lift.set_joint_targets(np.full(7, np.nan), 0.0)
    with pytest.raises(ValueError, match="q_target"):
        lift.set_joint_targets(np.zeros(6), 0.0)


def test_simulated_human_takes_over_when_the_policy_strays():
    """intervene=expert: the clean expert drives (flagged, with its action in info) once the policy has strayed
    off the expert's path, not while the policy does what the expert would, more slowly or with jitter."""
    env = make_env("sim/lift", intervene="expert", intervene_steps=5, intervene_stray_m=0.03)
    assert env.accepts_interventions
    expert = env.make_expert(noise=0.0, seed=1)
    env.reset(seed=3)
    flags = []
    for _ in range(15):  # the policy is the expert itself: never strays
        _, _, term, _, info = env.step(expert.act({})[0])
        flags.append(info["is_intervention"])
        if term:
            break
    assert not any(flags)
    env.reset(seed=3)
    rng, flags = np.random.default_rng(0), []
    for _ in range(15):  # the expert plus zero-mean jitter (exploration noise, 0.3 per axis): no drift, no takeover
        a = expert.act({})[0].copy()
        a[:3] = np.clip(a[:3] + rng.normal(0, 0.3, 3), -1, 1)
        _, _, term, _, info = env.step(a.astype(np.float32))
        flags.append(info["is_intervention"])
        if term:
            break
    assert not any(flags)
    env.reset(seed=3)
    flags, executed = [], []
    for _ in range(12):  # a policy that only climbs: strays within a few steps, then the human drives 5 steps
        _, _, _, _, info = env.step(np.array([0.0, 0.0, 1.0, -1.0], np.float32))
        flags.append(info["is_intervention"])
        if info["is_intervention"]:
            executed.append(info["intervention_action"])
    first = flags.index(True)
    assert first <= 5 and flags[first:first + 5] == [True] * 5
    assert all(a[2] < 1.0 for a in executed)  # not the policy's action
    env.reset(seed=3)
    flags = []
    for _ in range(15):  # a policy on the expert's path at a third of its speed: behind it, not off it
        _, _, term, _, info = env.step(np.concatenate([expert.act({})[0][:3] / 3, [-1.0]]).astype(np.float32))
        flags.append(info["is_intervention"])
        if term:
            break
    assert not any(flags)
    always = make_env("sim/lift", intervene="expert", intervene_p=1.0, intervene_steps=3)
    always.reset(seed=0)
    assert [always.step(np.zeros(4, np.float32))[4]["is_intervention"] for _ in range(4)] == [True] * 3 + [False]
    with pytest.raises(ValueError, match="intervene must be"):
        make_env("sim/lift", intervene="human")


def test_patient_human_finishes_only_the_episodes_the_policy_has_not():
    """intervene_after: nothing while the policy succeeds in time; after that many steps without success the
    clean expert drives every remaining step (its phases started afresh) and completes the task."""
    env = make_env("sim/lift", intervene="expert", intervene_stray_m=0, intervene_after=30)
    assert env.env_info.config["intervene_after"] == 30
    expert = env.make_expert(noise=0.0, seed=1)
    env.reset(seed=3)
    flags, term = [], False
    while not term:  # the clean expert as the policy: done in ~25 steps, never helped
        _, _, term, trunc, info = env.step(expert.act({})[0])
        flags.append(info["is_intervention"])
        assert not trunc
    assert len(flags) <= 30 and not any(flags)
    env.reset(seed=3)
    flags, term, trunc = [], False, False
    while not (term or trunc):  # a policy that only climbs: 30 steps of its own, then the human to success
        _, _, term, trunc, info = env.step(np.array([0.0, 0.0, 1.0, 1.0], np.float32))
        flags.append(info["is_intervention"])
    assert flags[:30] == [False] * 30 and all(flags[30:]) and term and info["success"]
    never = make_env("sim/lift", intervene="expert", intervene_stray_m=0)  # no rule left: the human never drives
    never.reset(seed=3)
    assert not any(never.step(np.array([0.0, 0.0, 1.0, 1.0], np.float32))[4]["is_intervention"] for _ in range(40))
    with pytest.raises(ValueError, match="intervene_after >= 0"):
        make_env("sim/lift", intervene="expert", intervene_after=-1)


def test_action_latency_delays_the_command_within_the_control_period():
    """action_latency_s: physics runs under the previous command first, so the same commands move the TCP less
    in the first step and the step still lasts one control period."""
    fast, slow = make_env("sim/reach"), make_env("sim/reach", action_latency_s=0.02)
    a = np.array([1.0, 0.0, 0.0, -1.0], np.float32)
    moved = []
    for env in (fast, slow):
        obs, _ = env.reset(seed=0)
        t0, x0 = env.data.time, env.tcp_pos[0]
        env.step(a)
        assert env.data.time - t0 == pytest.approx(1 / env.control_hz)
        moved.append(env.tcp_pos[0] - x0)
    assert moved[1] < moved[0] - 1e-3 and moved[1] > 0
    with pytest.raises(ValueError, match="action_latency_s"):
        make_env("sim/reach", action_latency_s=0.05)
