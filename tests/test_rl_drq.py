"""rl.encoder=drq (the GPU path, tested here on small frames on the CPU): the camera encoder learns through
the critic loss with random shifts, its weights travel with the actor's, and a local async run trains on frames."""
import numpy as np
import pytest
import torch

from robotlearn.rl.residual import ResidualConfig, ResidualLearner, ResidualPolicy
from robotlearn.runtime.messages import decode_weights, encode_weights

S, A, B, H = 4, 3, 32, 24
CAMS = {"images/front": (H, H, 3), "images/wrist": (H, H, 3)}


def cfg(**kw) -> ResidualConfig:
    base = dict(encoder="drq", num_critics=2, hidden_dim=32, batch_size=B, critic_warmup_updates=0, actor_delay=1,
                drq_channels=8, drq_keypoints=8, drq_shift=2, critic_lr=1e-3)
    return ResidualConfig(**{**base, **kw})


def image_batch(seed: int = 0) -> dict[str, np.ndarray]:
    """The reward is whether a bright square sits in the left half of the front camera: only the frames tell."""
    rng = np.random.default_rng(seed)
    frames = {k: rng.integers(0, 40, (B, H, H, 3), dtype=np.uint8) for k in CAMS}
    left = rng.random(B) < 0.5
    for i in range(B):
        x = rng.integers(2, H // 2 - 8) if left[i] else rng.integers(H // 2 + 2, H - 8)
        frames["images/front"][i, 8:14, x:x + 6] = 255
    b = {"state": rng.normal(size=(B, S)).astype(np.float32),
         "base_action": rng.uniform(-0.5, 0.5, (B, A)).astype(np.float32),
         "action": rng.uniform(-1, 1, (B, A)).astype(np.float32),
         "reward": left.astype(np.float32), "discount": np.zeros(B, np.float32),
         "next_state": rng.normal(size=(B, S)).astype(np.float32),
         "next_base_action": rng.uniform(-0.5, 0.5, (B, A)).astype(np.float32)}
    for k, v in frames.items():
        b[k], b[f"next/{k}"] = v, v[rng.permutation(B)]
    return b


def test_drq_update_reduces_the_td_error_on_a_fixed_image_batch_and_trains_the_encoder():
    torch.manual_seed(0)
    learner = ResidualLearner(S, A, cfg(critic_warmup_updates=10_000), device="cpu", image_shapes=CAMS)
    batch = image_batch()
    enc0 = [p.detach().clone() for p in learner.encoder.parameters()]
    before = learner.td_error(batch)
    for _ in range(150):
        m = learner.update(batch)
    after = learner.td_error(batch)
    assert np.isfinite(m["critic_loss"]) and after < 0.25 * before, (before, after)
    moved = [float((p.detach() - q).abs().max()) for p, q in zip(learner.encoder.parameters(), enc0)]
    assert max(moved) > 1e-3  # the critic loss trained the encoder


def test_actor_update_does_not_train_the_encoder():
    torch.manual_seed(0)
    learner = ResidualLearner(S, A, cfg(critic_lr=1e-12, actor_lr=1e-2), device="cpu", image_shapes=CAMS)
    batch = image_batch()
    enc0 = [p.detach().clone() for p in learner.encoder.parameters()]
    for _ in range(5):
        m = learner.update(batch)
    assert "actor_loss" in m
    drift = max(float((p.detach() - q).abs().max()) for p, q in zip(learner.encoder.parameters(), enc0))
    assert drift < 1e-6  # with a ~0 critic lr only an actor gradient could move it, and it is detached


def test_published_weights_give_the_actor_the_learners_features(tmp_path):
    torch.manual_seed(0)
    learner = ResidualLearner(S, A, cfg(), device="cpu", image_shapes=CAMS)
    batch = image_batch()
    for _ in range(3):
        learner.update(batch)
    version, tensors, _ = decode_weights(encode_weights(7, learner.actor_weights(), run="r"))
    policy = ResidualPolicy(S, A, cfg(), image_shapes=CAMS)
    policy.load_weights(tensors, version)
    obs = {"state": batch["state"][0], **{k: batch[k][0] for k in CAMS}}
    with torch.no_grad():
        want = learner.encoder({k: torch.from_numpy(batch[k][:1]) for k in CAMS})[0].numpy()
    np.testing.assert_allclose(policy.features(obs), want, atol=1e-6)
    # and the same residual: the actor's [state, features] through the same actor net
    with torch.no_grad():
        b = learner.with_features(learner.to_device({k: v[:1] for k, v in batch.items()}), augment=False)
        res = learner.actor(learner.actor.normalize(b["state"]), b["base_action"])[0].numpy()
    np.testing.assert_allclose(policy.residual(np.concatenate([obs["state"], want]), batch["base_action"][0]), res,
                               atol=1e-5)
    learner.save(tmp_path / "ckpt")  # and a checkpoint keeps the encoder and the camera layout
    again = ResidualLearner.load(tmp_path / "ckpt", "cpu")
    assert again.encoder.image_shapes == CAMS
    for p, q in zip(again.encoder.parameters(), learner.encoder.parameters()):
        assert torch.equal(p, q)


def test_drq_without_cameras_is_a_clear_error():
    with pytest.raises(ValueError, match="rl.encoder=drq needs camera observations"):
        ResidualLearner(S, A, cfg(), device="cpu", image_shapes=None)


def test_async_drq_run_trains_on_logged_frames(tmp_path):
    """Actor and learner processes on sim/reach with a 24x24 camera: frames travel, the encoder's weights travel back."""
    import yaml

    from robotlearn.data import EpisodeDataset
    from robotlearn.envs.registry import env_config
    from robotlearn.runtime.actor import ActorConfig
    from robotlearn.runtime.learner import LearnerConfig
    from robotlearn.runtime.local import run_local
    from robotlearn.runtime.spec import RunSpec

    env = {**env_config("sim/reach"), "cameras": ["front"], "image_size": H, "horizon": 30}
    rl = cfg(warmup_env_steps=40, critic_warmup_updates=5, utd=1, batch_size=16)
    lc = LearnerConfig(out_dir=str(tmp_path / "run"), publish_every=5, checkpoint_every=50, max_env_steps=150,
                       min_online_steps=30, tensorboard=False, progress=False)
    res = run_local(RunSpec(env=env, base="zero", rl=rl, learner=lc, actor=ActorConfig(pace_hz=100)))
    assert res["actor_exitcodes"] == [0] and res["updates"] > 0 and res["rejected"] == 0
    log = EpisodeDataset(tmp_path / "run" / "online.zarr")
    assert "images/front" in log.keys and "features" not in log.keys  # frames logged; the learner encodes them
    versions = log.meta_array("policy_version")
    assert versions[-1] > versions[0]
    meta = yaml.safe_load((tmp_path / "run" / "checkpoint" / "learner.yaml").read_text())
    assert meta["image_shapes"] == {"images/front": [H, H, 3]} and meta["config"]["encoder"] == "drq"


def test_the_update_rate_probe_encodes_frames_for_drq():
    """Pacing a drq run (finetune match_learner, the benchmark's async rates) times updates that encode frames."""
    from robotlearn.runtime.learner import measure_update_rate

    drq = measure_update_rate(cfg(), S, A, "cpu", n=2, image_shapes=CAMS)
    state_only = measure_update_rate(cfg(encoder="none"), S, A, "cpu", n=2, image_shapes=CAMS)  # frames ignored
    assert 0 < drq < state_only
    with pytest.raises(ValueError, match="drq"):
        measure_update_rate(cfg(), S, A, "cpu", n=2)  # no cameras: the learner's own one-line error


@pytest.mark.parametrize("encoder", ["none", "drq"])
def test_the_local_weights_slot_holds_the_actor_weights_message(encoder):
    """The local weights slot is sized from the networks themselves, a drq camera encoder included."""
    from robotlearn.runtime.local_transport import weights_capacity_for

    rl = ResidualConfig(encoder=encoder)  # the default recipe's sizes (drq: its default channels)
    cams = {"images/front": (84, 84, 3), "images/wrist": (84, 84, 3)}
    learner = ResidualLearner(S, A, rl, "cpu", image_shapes=cams if encoder == "drq" else None)
    message = encode_weights(1, learner.actor_weights())
    capacity = weights_capacity_for(S, A, rl, cams)
    assert len(message) <= capacity < 2 * len(message) + (1 << 16)
