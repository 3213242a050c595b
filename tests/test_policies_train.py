"""Train BC and diffusion on a real zarr dataset of scripted sim/lift demos; checkpoints, CLI, wrong-env loads."""
import json

import numpy as np
import pytest
import torch

from robotlearn.cli.collect import CollectConfig, collect
from robotlearn.cli.main import main as cli
from robotlearn.cli.train_bc import TrainBCConfig, run
from robotlearn.envs import make_env
from robotlearn.envs.registry import env_config
from robotlearn.policies.checkpoint import PolicyEnvMismatchError, load_policy
from robotlearn.policies.config import BCConfig, DiffusionConfig, EncoderConfig, OptimConfig, PolicyConfig

torch.set_num_threads(1)
ENC = EncoderConfig(state_hidden=[64], state_features=64)


@pytest.fixture(scope="module")
def lift_demos(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "lift.zarr"
    r = collect(CollectConfig(env=env_config("sim/lift"), episodes=6, noise=0.1, seed=0, out=str(path), progress=False))
    assert r["episodes"] == 6
    return path


def train(path, out, policy, steps, **kw):
    kw.setdefault("log_every", 25)
    kw.setdefault("batch_size", 64)
    cfg = TrainBCConfig(dataset=str(path), policy=policy, steps=steps, out_dir=str(out),
                        progress=False, **kw)
    return run(cfg)


def assert_loss_falls(losses, factor=0.5):
    first, last = losses[0][1], losses[-1][1]
    assert last < factor * first, f"loss did not fall: {losses}"


def same_actions(a, b, env, steps=30, seed=0):
    """Step `env` with policy a's chunks while feeding b the same observations; chunks must be identical."""
    obs, _ = env.reset(seed=seed)
    a.reset(), b.reset()
    for t in range(steps):
        g1, g2 = torch.Generator().manual_seed(t), torch.Generator().manual_seed(t)
        ca, cb = a.act(obs, g1), b.act(obs, g2)
        assert np.array_equal(ca, cb), f"step {t}: {ca} != {cb}"
        obs, _, term, trunc, _ = env.step(ca[0])
        if term or trunc:
            break


def test_bc_mlp_learns_and_reloads_identically(lift_demos, tmp_path):
    pol = PolicyConfig(kind="bc", horizon=8, n_action_steps=4, encoder=ENC, bc=BCConfig(hidden=[128, 128]),
                       optim=OptimConfig(lr=1e-3, warmup_steps=20))
    res = train(lift_demos, tmp_path / "bc", pol, steps=300, eval_every=150, eval_episodes=1, final_eval_episodes=2)
    assert_loss_falls(res.metrics["losses"])
    assert [s for s, _ in res.metrics["evals"]] == [150, 300]  # periodic + final eval in sim
    assert all(0.0 <= r <= 1.0 for _, r in res.metrics["evals"])
    for f in ("metrics.json", "curves.png", "train_config.json", "checkpoints/last/model.safetensors"):
        assert (res.out_dir / f).exists(), f
    assert list((res.out_dir / "tb").glob("events.out.tfevents.*"))
    env = make_env("sim/lift")
    loaded = load_policy(res.out_dir / "checkpoints" / "last", env=env, device="cpu")
    meta = json.loads((res.out_dir / "checkpoints" / "last" / "config.json").read_text())
    assert meta["env"]["name"] == "sim/lift" and meta["meta"]["step"] == 300
    same_actions(res.policy, loaded, env)


def test_diffusion_learns_and_reloads_identically(lift_demos, tmp_path):
    pol = PolicyConfig(kind="diffusion", horizon=8, n_action_steps=4, encoder=ENC,
                       diffusion=DiffusionConfig(down_dims=[32, 64], step_embed_dim=32, num_inference_steps=5),
                       optim=OptimConfig(lr=1e-3, warmup_steps=20, ema=True, ema_max_decay=0.99))
    res = train(lift_demos, tmp_path / "diff", pol, steps=200, eval_every=0, final_eval_episodes=1)
    assert_loss_falls(res.metrics["losses"])
    env = make_env("sim/lift")
    loaded = load_policy(res.out_dir, env=env, device="cpu")  # run folder -> checkpoints/best
    assert loaded.kind == "diffusion" and loaded.num_inference_steps == 5
    same_actions(res.policy, loaded, env, steps=12)


def test_wrong_env_load_names_the_mismatch(lift_demos, tmp_path):
    pol = PolicyConfig(kind="bc", horizon=4, n_action_steps=2, encoder=ENC, bc=BCConfig(hidden=[32]))
    res = train(lift_demos, tmp_path / "bc", pol, steps=5, eval_every=0, final_eval_episodes=0)
    ckpt = res.out_dir / "checkpoints" / "last"
    with pytest.raises(PolicyEnvMismatchError, match=r"'state' has shape \(30,\), policy expects \(24,\)"):
        load_policy(ckpt, env=make_env("sim/pick_place"))
    with pytest.raises(PolicyEnvMismatchError, match="action dim is 1, policy outputs 4"):
        load_policy(ckpt, env=make_env("dmc/cartpole-swingup"))
    # same shapes, same action spec, other task: refused on the state layout, unless the user insists
    with pytest.raises(PolicyEnvMismatchError, match=r"state\[18\] is 'target_x' in the env, 'cube_x' for the policy"):
        load_policy(ckpt, env=make_env("sim/reach"))
    with pytest.warns(UserWarning, match="trained on env 'sim/lift', running it on 'sim/reach' although state"):
        load_policy(ckpt, env=make_env("sim/reach"), allow_env_mismatch=True)
    with pytest.raises(PolicyEnvMismatchError, match=r"action scale differs: low .* is \[-0.01"):
        load_policy(ckpt, env=make_env("sim/lift", max_delta=0.01))  # same env, another physical step
    env = make_env("sim/lift")
    with pytest.raises(TypeError, match="the observation must be a dict of arrays, got tuple"):
        load_policy(ckpt, env=env).act(env.reset(seed=0))  # the (obs, info) pair, not the obs


def test_cli_train_then_eval(lift_demos, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli(["train-bc", "policy=bc_mlp", f"dataset={lift_demos}", "steps=20", "batch_size=32", "eval_every=0",
                "final_eval_episodes=1", f"out_dir={out}", "progress=false", "policy.bc.hidden=[64]"]) == 0
    assert cli(["eval", f"policy={out}", "episodes=2", "progress=false", f"out={tmp_path / 'ev'}"]) == 0
    res = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert res["env"] == "sim/lift" and res["episodes"] == 2 and 0 <= res["ci95"][0] <= res["ci95"][1] <= 1
    with pytest.raises(SystemExit) as e:
        cli(["eval", f"policy={out}", "env=sim/pick_place", "episodes=1", "progress=false"])
    assert e.value.code == 2 and "observation 'state' has shape (30,)" in capsys.readouterr().err


def test_image_policy_end_to_end(tmp_path):
    """Camera observations through the whole path: zarr -> conv encoder -> checkpoint -> env with the camera."""
    env_cfg = {**env_config("sim/lift"), "cameras": ["front", "panda/wrist"], "image_size": 32, "horizon": 20}
    path = tmp_path / "lift_img.zarr"
    collect(CollectConfig(env=env_cfg, episodes=2, noise=0.1, out=str(path), progress=False))
    pol = PolicyConfig(kind="bc", horizon=4, n_action_steps=2, bc=BCConfig(hidden=[64]),
                       encoder=EncoderConfig(state_hidden=[32], state_features=32, image_channels=8, image_keypoints=8),
                       optim=OptimConfig(lr=1e-3, warmup_steps=5))
    res = train(path, tmp_path / "run", pol, steps=60, eval_every=0, final_eval_episodes=0, log_every=10, batch_size=32)
    assert_loss_falls(res.metrics["losses"], factor=0.8)
    assert set(res.policy.obs_shapes) == {"state", "images/front", "images/panda/wrist"}
    env = make_env(env_cfg)
    loaded = load_policy(res.out_dir / "checkpoints" / "last", env=env, device="cpu")
    same_actions(res.policy, loaded, env, steps=4)
    with pytest.raises(PolicyEnvMismatchError, match="observation 'images/front' is missing"):
        load_policy(res.out_dir / "checkpoints" / "last", env=make_env("sim/lift"))
