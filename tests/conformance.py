"""Reusable conformance checks for any `RobotEnv` backend (sim, adapters, ROS 2 robots).

Plain functions, so another suite (e.g. the ROS 2 one against a live robot
node) can import and run them: `run_conformance(make_env_factory,
deterministic)` runs everything; `CHECKS` are the single-env checks
(`check(env, deterministic)`); `check_fresh_envs_agree(factory)` needs a
deterministic backend. Import with `from conformance import ...` (tests/ is on
sys.path under pytest).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
from gymnasium import spaces

from robotlearn.envs import EpisodeDoneError, InvalidActionError, RobotEnv

SEED = 7


def assert_obs_in_space(env: RobotEnv, obs: dict, where: str) -> None:
    space = env.observation_space
    assert isinstance(obs, dict), f"{env.name} {where}: obs is {type(obs).__name__}, not a dict"
    assert set(obs) == set(space.spaces), f"{env.name} {where}: obs keys {sorted(obs)} != space {sorted(space.spaces)}"
    assert "state" in obs, f"{env.name} {where}: no 'state' key"
    for k, sub in space.spaces.items():
        v = obs[k]
        assert isinstance(v, np.ndarray), f"{env.name} {where}: obs[{k!r}] is {type(v).__name__}"
        assert v.shape == sub.shape, f"{env.name} {where}: obs[{k!r}] shape {v.shape} != {sub.shape}"
        assert v.dtype == sub.dtype, f"{env.name} {where}: obs[{k!r}] dtype {v.dtype} != {sub.dtype}"
        if k == "state":
            assert v.dtype == np.float32 and np.all(np.isfinite(v)), f"{env.name} {where}: bad state {v}"
        else:
            assert k.startswith("images/") and v.dtype == np.uint8 and v.ndim == 3 and v.shape[2] == 3
    assert space.contains(obs), f"{env.name} {where}: obs not contained in observation_space"


def assert_info(env: RobotEnv, info: dict, where: str) -> None:
    for key in ("success", "is_intervention", "timestamp"):
        assert key in info, f"{env.name} {where}: info lacks {key!r} (has {sorted(info)})"
    assert isinstance(info["success"], (bool, np.bool_)), f"{env.name} {where}: info['success'] not bool"
    assert isinstance(info["is_intervention"], (bool, np.bool_))
    ts = info["timestamp"]
    assert isinstance(ts, float) and math.isfinite(ts) and ts >= 0, f"{env.name} {where}: bad timestamp {ts!r}"


def rollout(env: RobotEnv, seed: int, actions: np.ndarray) -> list[np.ndarray]:
    obs, _ = env.reset(seed=seed)
    states = [obs["state"].copy()]
    for a in actions:
        obs, *_, info = env.step(a)
        states.append(obs["state"].copy())
    return states


def random_actions(env: RobotEnv, n: int, scale: float = 1.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (scale * rng.uniform(-1, 1, (n, *env.action_space.shape))).astype(np.float32)


def reward_type(env: RobotEnv) -> str:
    """'sparse' (1.0 exactly on success, else 0.0; the default) or declared 'dense' shaping."""
    return env.reward_type


# --- checks on one env ------------------------------------------------------
def check_declared(env: RobotEnv, deterministic: bool = True) -> None:
    """Action space is Box [-1, 1] float32; control_hz, horizon and the action mapping are declared."""
    a = env.action_space
    assert isinstance(a, spaces.Box) and a.dtype == np.float32, f"{env.name}: action_space {a}"
    assert np.all(a.low == -1.0) and np.all(a.high == 1.0), f"{env.name}: action_space not [-1, 1]: {a}"
    assert isinstance(env.observation_space, spaces.Dict)
    assert math.isfinite(env.control_hz) and env.control_hz > 0, f"{env.name}: control_hz {env.control_hz}"
    assert isinstance(env.horizon, int) and env.horizon > 0, f"{env.name}: horizon {env.horizon}"
    spec = env.env_info.action_spec
    n = a.shape[0]
    assert len(spec.names) == len(spec.low) == len(spec.high) == n, f"{env.name}: action_spec does not match {n} dims"
    assert spec.kind, f"{env.name}: action_spec.kind empty"
    assert reward_type(env) in ("sparse", "dense"), f"{env.name}: reward_type {reward_type(env)!r}"


def check_spaces(env: RobotEnv, deterministic: bool = True) -> None:
    """Observations match observation_space on reset and on every step; info carries the contract keys."""
    obs, info = env.reset(seed=SEED)
    assert_obs_in_space(env, obs, "reset")
    assert_info(env, info, "reset")
    for i, a in enumerate(random_actions(env, 5)):
        obs, r, term, trunc, info = env.step(a)
        assert_obs_in_space(env, obs, f"step {i}")
        assert_info(env, info, f"step {i}")
        assert isinstance(r, float) and math.isfinite(r)
        if reward_type(env) == "sparse":
            assert r == float(info["success"]), f"{env.name}: sparse reward {r} but success={info['success']}"
        assert isinstance(term, bool) and isinstance(trunc, bool)
        if term or trunc:
            break


def check_seeded_reset(env: RobotEnv, deterministic: bool = True) -> None:
    """Same seed -> identical observations (reset and a few steps); different seeds -> different episodes."""
    if not deterministic:
        return
    acts = random_actions(env, 3, seed=1)
    a, b = rollout(env, SEED, acts), rollout(env, SEED, acts)
    for i, (x, y) in enumerate(zip(a, b)):
        np.testing.assert_array_equal(x, y, err_msg=f"{env.name}: seeded episode diverges at step {i}")
    c = rollout(env, SEED + 1, acts[:0])
    assert not np.array_equal(a[0], c[0]), f"{env.name}: seeds {SEED} and {SEED + 1} give the same initial state"


def check_clipping(env: RobotEnv, deterministic: bool = True) -> None:
    """An out-of-range action is clipped: it acts exactly like the clipped action."""
    big = random_actions(env, 2, scale=3.0, seed=2)
    obs, _ = env.reset(seed=SEED)
    for a in big:
        obs, *_ = env.step(a)  # must not raise
    assert_obs_in_space(env, obs, "after out-of-range action")
    if deterministic:
        ref = rollout(env, SEED, np.clip(big, -1, 1))
        got = rollout(env, SEED, big)
        np.testing.assert_array_equal(got[-1], ref[-1], err_msg=f"{env.name}: out-of-range != clipped action")


def check_invalid_actions(env: RobotEnv, deterministic: bool = True) -> None:
    """NaN/inf and wrongly shaped actions raise InvalidActionError and do not advance the episode."""
    env.reset(seed=SEED)
    n = env.action_space.shape[0]
    bad = [np.full(n, np.nan, np.float32), np.array([np.inf] + [0.0] * (n - 1), np.float32),
           np.zeros(n + 1, np.float32), np.zeros((1, n), np.float32), np.zeros(0, np.float32)]
    for a in bad:
        try:
            env.step(a)
        except InvalidActionError as e:
            assert str(e), "InvalidActionError without a message"
        else:
            raise AssertionError(f"{env.name}: action {a!r} was accepted")
    *_, info = env.step(np.zeros(n, np.float32))
    assert info["t"] == 1, f"{env.name}: rejected actions advanced the episode (t={info['t']})"


def check_step_after_done(env: RobotEnv, deterministic: bool = True) -> None:
    """The episode ends by the declared horizon at the latest; stepping after that raises EpisodeDoneError."""
    env.reset(seed=SEED)
    zero = np.zeros(env.action_space.shape, np.float32)
    for t in range(1, env.horizon + 1):
        _, _, term, trunc, info = env.step(zero)
        if term or trunc:
            break
    assert term or trunc, f"{env.name}: not done after horizon {env.horizon}"
    assert trunc == (not term) and (term or t == env.horizon), f"{env.name}: truncated at t={t}, horizon {env.horizon}"
    try:
        env.step(zero)
    except EpisodeDoneError as e:
        assert "reset" in str(e)
    else:
        raise AssertionError(f"{env.name}: step() after done did not raise EpisodeDoneError")
    obs, _ = env.reset(seed=SEED)
    env.step(zero)  # usable again after reset


def check_timestamps(env: RobotEnv, deterministic: bool = True) -> None:
    """info['timestamp'] never runs backwards within an episode. Deterministic (simulated) backends report
    simulated time since reset: 0 at reset and k control periods after k steps, whatever the host clock does."""
    _, info = env.reset(seed=SEED)
    stamps = [info["timestamp"]]
    for a in random_actions(env, 4, scale=0.1, seed=3):
        _, _, term, trunc, info = env.step(a)
        stamps.append(info["timestamp"])
        if term or trunc:
            break
    assert all(b >= a for a, b in zip(stamps, stamps[1:])), f"{env.name}: timestamps run backwards: {stamps}"
    if deterministic:
        want = [k / env.control_hz for k in range(len(stamps))]
        np.testing.assert_allclose(stamps, want, rtol=0, atol=1e-9,
                                   err_msg=f"{env.name}: timestamps are not simulated seconds since reset "
                                           f"at the declared {env.control_hz} Hz")


CHECKS: dict[str, Callable[[RobotEnv, bool], None]] = {
    "declared": check_declared,
    "spaces": check_spaces,
    "seeded_reset": check_seeded_reset,
    "clipping": check_clipping,
    "invalid_actions": check_invalid_actions,
    "step_after_done": check_step_after_done,
    "timestamps": check_timestamps,
}


def check_fresh_envs_agree(make: Callable[[], RobotEnv]) -> None:
    """Two freshly built envs reset with the same seed start identically (no hidden global RNG state)."""
    a, b = make(), make()
    try:
        np.random.seed(123)  # perturb the global RNG between the two
        oa, _ = a.reset(seed=SEED)
        np.random.seed(456)
        ob, _ = b.reset(seed=SEED)
        for k in oa:
            np.testing.assert_array_equal(oa[k], ob[k], err_msg=f"{a.name}: fresh envs differ in {k}")
    finally:
        a.close()
        b.close()


def run_conformance(make: Callable[[], RobotEnv], deterministic: bool = True) -> None:
    """Every check against one env from `make` (+ the fresh-env check when deterministic).

    A live robot is not deterministic: pass deterministic=False to skip seeded-replay comparisons.
    """
    env = make()
    try:
        for check in CHECKS.values():
            check(env, deterministic)
    finally:
        env.close()
    if deterministic:
        check_fresh_envs_agree(make)
