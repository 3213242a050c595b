"""Policy building blocks on synthetic tensors: encoders, normaliser, chunk execution, diffusion sampling, checkpoints."""
import json

import numpy as np
import pytest
import torch

from robotlearn.policies import BasePolicy, ChunkStepper
from robotlearn.policies.checkpoint import CheckpointError, build_policy, load_policy, save_policy
from robotlearn.policies.config import BCConfig, DiffusionConfig, EncoderConfig, PolicyConfig
from robotlearn.policies.encoders import ObsEncoder, RandomShift
from robotlearn.policies.normalizer import Normalizer

torch.set_num_threads(1)
SMALL_DIFF = DiffusionConfig(down_dims=[32, 64], step_embed_dim=32, num_inference_steps=5)
SMALL_ENC = EncoderConfig(state_hidden=[64], state_features=32, image_channels=8, image_keypoints=8)


def make(kind="bc", images=False, **kw):
    cfg = PolicyConfig(kind=kind, horizon=8, n_action_steps=4, encoder=SMALL_ENC, diffusion=SMALL_DIFF, **kw)
    shapes = {"state": (6,)}
    if images:
        shapes["images/front"] = (24, 24, 3)
    p = build_policy(cfg, shapes, 3)
    rng = np.random.default_rng(0)
    p.fit_normalizer({"state": rng.normal(2.0, 3.0, (200, 6)), "action": rng.uniform(-0.5, 0.5, (200, 3))})
    return p


def obs_of(p, seed=0):
    rng = np.random.default_rng(seed)
    o = {"state": rng.normal(size=6).astype(np.float32)}
    if "images/front" in p.obs_shapes:
        o["images/front"] = rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)
    return o


def test_obs_encoder_fuses_state_and_each_camera():
    enc = ObsEncoder({"state": (5,), "images/a": (32, 32, 3), "images/b": (32, 32, 3)}, SMALL_ENC)
    assert len(enc.cams) == 2 and enc.out_dim == 32 + 2 * 2 * 8
    obs = {"state": torch.randn(4, 2, 5), "images/a": torch.randint(0, 255, (4, 2, 32, 32, 3), dtype=torch.uint8),
           "images/b": torch.randint(0, 255, (4, 2, 32, 32, 3), dtype=torch.uint8)}
    assert enc(obs).shape == (4, 2, enc.out_dim)
    shared = ObsEncoder({"images/a": (32, 32, 3), "images/b": (32, 32, 3)}, EncoderConfig(share_cameras=True))
    assert len(shared.cams) == 1
    with pytest.raises(ValueError, match="unsupported observation keys"):
        ObsEncoder({"state": (5,), "depth": (8, 8)}, SMALL_ENC)


def test_random_shift_moves_pixels_in_training_only():
    x = torch.arange(2 * 3 * 16 * 16, dtype=torch.float32).reshape(2, 3, 16, 16)
    aug = RandomShift(4)
    torch.manual_seed(0)
    shifted = torch.stack([aug(x) for _ in range(5)])
    assert shifted.shape == (5, 2, 3, 16, 16)
    assert not all(torch.equal(s, x) for s in shifted)
    assert torch.equal(aug.eval()(x), x)


def test_normalizer_limits_map_data_range_to_unit_interval_and_back():
    rng = np.random.default_rng(1)
    x = np.stack([rng.uniform(-3, 7, 500), np.full(500, 4.0)], 1)  # second dim constant
    n = Normalizer({"action": 2}).fit({"action": x}, {"action": "limits"})
    y = n.normalize("action", torch.as_tensor(x, dtype=torch.float32))
    assert torch.isfinite(y).all()
    assert y[:, 0].min() == pytest.approx(-1, abs=1e-5) and y[:, 0].max() == pytest.approx(1, abs=1e-5)
    assert torch.allclose(n.unnormalize("action", y), torch.as_tensor(x, dtype=torch.float32), atol=1e-4)
    with pytest.raises(ValueError, match="NaN"):
        Normalizer({"a": 1}).fit({"a": np.array([[np.nan]])}, {"a": "limits"})


@pytest.mark.parametrize("kind", ["bc", "diffusion"])
def test_policy_meets_base_contract(kind):
    p = make(kind, images=True)
    assert isinstance(p, BasePolicy)
    p.reset()
    chunk = p.act(obs_of(p))
    assert chunk.shape == (p.action_chunk_size, p.action_dim) == (4, 3)
    assert chunk.dtype == np.float32 and np.all(np.abs(chunk) <= 1.0)
    stepper = ChunkStepper(p)
    stepper.reset()
    assert stepper.next_action(obs_of(p)).shape == (3,)


def test_act_rejects_bad_observations_by_name():
    p = make("bc")
    with pytest.raises(KeyError, match="'state'"):
        p.act({"joints": np.zeros(6, np.float32)})
    with pytest.raises(ValueError, match=r"'state' has shape \(5,\), trained on \(6,\)"):
        p.act({"state": np.zeros(5, np.float32)})
    with pytest.raises(ValueError, match="NaN"):
        p.act({"state": np.full(6, np.nan, np.float32)})
    q = make("bc", images=True)
    with pytest.raises(ValueError, match="'images/front' must be uint8"):
        q.act({"state": np.zeros(6, np.float32), "images/front": np.zeros((24, 24, 3), np.float32)})


def test_bc_head_fits_a_batch_and_exposes_features():
    torch.manual_seed(0)
    p = make("bc")
    state = torch.randn(16, 2, 6)
    target = 0.5 * torch.tanh(state[:, -1, :3])[:, None].expand(16, 8, 3)  # a function of the latest obs
    batch = {"obs": {"state": state}, "action": target}
    opt = torch.optim.Adam(p.parameters(), lr=3e-3)
    first = p.compute_loss(batch).item()
    for _ in range(60):
        loss = p.compute_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first
    assert p.eval().predict_chunk(batch["obs"]).shape == (16, 8, 3)
    assert p.encode(batch["obs"]).shape == (16, 2 * p.encoder.out_dim)


def test_history_is_edge_padded_then_rolls():
    p = make("bc", n_obs=3)
    p.reset()
    a = p.act(obs_of(p, 0))
    fresh = make("bc", n_obs=3)
    fresh.load_state_dict(p.state_dict())
    # first call sees [o0, o0, o0]; the same obs three times in a row gives the same history
    for _ in range(3):
        b = fresh.act(obs_of(p, 0))
    assert np.allclose(a, b)
    assert not np.allclose(fresh.act(obs_of(p, 1)), b)  # history now [o0, o0, o1]
    assert len(fresh._history) == 3


def test_temporal_ensembling_blends_overlapping_chunks():
    p = make("bc", temporal_ensemble=0.5)
    assert p.action_chunk_size == 1
    p.reset()
    c0, c1 = np.full((8, 3), 0.2, np.float32), np.full((8, 3), -0.4, np.float32)
    c0[1] = 0.6
    assert np.allclose(p._ensemble(c0), c0[0])
    w = np.exp(-0.5)
    assert np.allclose(p._ensemble(c1), (c0[1] + w * c1[0]) / (1 + w))
    for _ in range(10):  # chunks older than the horizon drop out
        p._ensemble(c1)
    assert len(p._chunks) == p.horizon
    assert p.act(obs_of(p)).shape == (1, 3)


def test_diffusion_sampling_shapes_and_seed_determinism():
    p = make("diffusion").eval()
    obs = {"state": torch.randn(5, 2, 6)}
    g = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    a, b = p.predict_chunk(obs, g(0)), p.predict_chunk(obs, g(0))
    assert a.shape == (5, 8, 3)
    assert torch.equal(a, b)
    assert not torch.allclose(a, p.predict_chunk(obs, g(1)))
    assert len(p.sample_scheduler.timesteps) == 5  # configured DDIM steps
    p.num_inference_steps = 2
    p.predict_chunk(obs, g(0))
    assert len(p.sample_scheduler.timesteps) == 2


@pytest.mark.parametrize("kind", ["bc", "diffusion"])
def test_checkpoint_roundtrip_gives_identical_actions(tmp_path, kind):
    p = make(kind, images=True).eval()
    save_policy(p, tmp_path / "ckpt", None, step=7)
    cfg = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert cfg["kind"] == kind and cfg["meta"]["step"] == 7 and cfg["obs_shapes"]["images/front"] == [24, 24, 3]
    q = load_policy(tmp_path / "ckpt", device="cpu")
    assert type(q) is type(p) and not q.training
    for s in range(3):
        o = obs_of(p, s)
        g1, g2 = torch.Generator().manual_seed(s), torch.Generator().manual_seed(s)
        assert np.array_equal(p.act(o, g1), q.act(o, g2))
    for k, v in p.state_dict().items():  # normaliser stats travel in the weights file
        assert torch.equal(v, q.state_dict()[k]), k


def test_checkpoint_errors_are_clear(tmp_path):
    with pytest.raises(CheckpointError, match="no policy checkpoint"):
        load_policy(tmp_path / "nothing")
    p = make("bc")
    save_policy(p, tmp_path / "c", None)
    (tmp_path / "c" / "model.safetensors").write_bytes(b"truncated")
    with pytest.raises(CheckpointError, match="cannot read weights"):
        load_policy(tmp_path / "c")
    save_policy(p, tmp_path / "c", None)  # overwriting replaces the folder atomically
    assert load_policy(tmp_path / "c", device="cpu").action_dim == 3
    assert not (tmp_path / "c.tmp").exists() and not (tmp_path / "c.old").exists()


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="n_action_steps=9"):
        PolicyConfig(horizon=8, n_action_steps=9).validate()
    with pytest.raises(ValueError, match="divisible"):
        PolicyConfig(kind="diffusion", horizon=10).validate()
    with pytest.raises(ValueError, match="loss"):
        build_policy(PolicyConfig(bc=BCConfig(loss="huber")), {"state": (3,)}, 2)
