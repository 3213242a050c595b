"""Bases through the contract, demo relabelling, and `robotlearn finetune` end to end (tiny, real sim + zarr)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from robotlearn.envs import make_env
from robotlearn.policies.base import ZeroPolicy
from robotlearn.policies.registry import base_entry, make_base
from robotlearn.rl.bases import relabel_base_actions


class CountingChunkPolicy:
    """A chunked base whose chunk depends on the observation and on how often it was queried since reset."""

    action_dim, action_chunk_size = 2, 3

    def __init__(self) -> None:
        self.calls, self.resets = 0, 0

    def reset(self) -> None:
        self.calls, self.resets = 0, self.resets + 1

    def act(self, obs):
        self.calls += 1
        s = float(obs["state"][0])
        return np.array([[s, self.calls + 0.1 * i] for i in range(3)], np.float32)  # (T=3, A=2)


def test_relabel_runs_base_in_order_chunk_by_chunk_and_resets_per_episode():
    base = CountingChunkPolicy()
    ep = {"state": np.arange(7, dtype=np.float32)[:, None].repeat(3, 1), "action": np.zeros((7, 2), np.float32)}
    out = relabel_base_actions(ep, base)
    assert out.shape == (7, 2) and base.resets == 1
    # chunks queried at t = 0, 3, 6 from those steps' observations, executed element by element
    np.testing.assert_allclose(out[:, 0], [0, 0, 0, 3, 3, 3, 6])
    np.testing.assert_allclose(out[:, 1], [1.0, 1.1, 1.2, 2.0, 2.1, 2.2, 3.0], rtol=1e-6)
    relabel_base_actions(ep, base)  # a second episode starts from a fresh base
    assert base.resets == 2 and base.calls == 3


def test_make_base_specs():
    env = make_env("sim/reach")
    assert isinstance(make_base("zero", env), ZeroPolicy)
    expert = make_base("expert:0.3", env, seed=1)
    assert expert.noise == pytest.approx(0.3) and make_base("expert", env, noise=0.2).noise == pytest.approx(0.2)
    assert base_entry("expert").needs_env and not base_entry("zero").needs_env  # the expert reads the live sim
    with pytest.raises(ValueError, match="needs a live env"):
        make_base("expert", env.description)
    with pytest.raises(ValueError, match="needs a number, got 'lots'"):
        make_base("expert:lots", env)
    with pytest.raises(ValueError, match="unexpected keyword"):
        make_base("zero", env, gain=0.3)
    with pytest.raises(FileNotFoundError, match="neither a registered base"):
        make_base("/no/such/checkpoint", env)


def test_finetune_cli_end_to_end(tmp_path):
    from robotlearn.cli import collect, finetune
    from robotlearn.data import EpisodeDataset

    demos = tmp_path / "demos.zarr"
    assert collect.main(["env=sim/reach", "episodes=3", "noise=0.5", f"out={demos}", "progress=false"]) == 0
    out = tmp_path / "ft"
    argv = ["env=sim/reach", "base=expert:0.5", f"demos={demos}", f"out={out}", "env_steps=400", "eval_episodes=4",
            "rl.num_critics=2", "rl.hidden_dim=32", "rl.batch_size=64", "rl.warmup_env_steps=100",
            "rl.critic_warmup_updates=20", "rl.utd=1", "learner.publish_every=10", "learner.min_online_steps=64",
            "learner.progress=false"]
    assert finetune.main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["env_steps"] >= 400 and summary["version"] > 1
    assert {"base", "base+residual"} <= set(summary["eval"])
    assert (out / "learning_curve.png").stat().st_size > 1000
    assert EpisodeDataset(out / "online.zarr").n_steps == summary["env_steps"]


def test_finetune_cli_bad_input_is_a_clear_error(tmp_path, capsys):
    from robotlearn.cli import finetune

    with pytest.raises(SystemExit):
        finetune.main(["env=sim/reach", "base=/no/such/ckpt", f"out={tmp_path / 'x'}", "env_steps=10"])
    assert "neither a registered base" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        finetune.main(["env=sim/reach", "rl.no_such_knob=1"])
