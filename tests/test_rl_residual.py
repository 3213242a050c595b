"""The residual learner on synthetic tensors: zero-init, TD fitting, ensemble shapes, checkpoints."""
import numpy as np
import pytest
import torch

from robotlearn.rl.residual import CriticEnsemble, ResidualConfig, ResidualLearner, ResidualPolicy, state_statistics
from robotlearn.runtime.messages import decode_weights, encode_weights

S, A, B = 6, 3, 64


def small_cfg(**kw) -> ResidualConfig:
    base = dict(num_critics=4, hidden_dim=32, batch_size=B, critic_warmup_updates=0, actor_delay=1)
    return ResidualConfig(**{**base, **kw})


def fixed_batch(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    state = rng.normal(size=(B, S)).astype(np.float32)
    return {
        "state": state,
        "base_action": rng.uniform(-0.5, 0.5, (B, A)).astype(np.float32),
        "action": rng.uniform(-1, 1, (B, A)).astype(np.float32),
        "reward": (state[:, 0] > 0).astype(np.float32),  # learnable: depends on the state
        "discount": np.full(B, 0.99**3, np.float32),
        "next_state": rng.normal(size=(B, S)).astype(np.float32),
        "next_base_action": rng.uniform(-0.5, 0.5, (B, A)).astype(np.float32),
    }


def test_zero_init_residual_leaves_base_action_unchanged():
    cfg = small_cfg()
    pol = ResidualPolicy(S, A, cfg)
    rng = np.random.default_rng(1)
    for _ in range(5):
        state, base = rng.normal(size=S).astype(np.float32), rng.uniform(-1, 1, A).astype(np.float32)
        np.testing.assert_array_equal(pol.act(state, base, mode="eval"), base)
    # and the learner's own actor at step 0, exported through a weights message, agrees
    learner = ResidualLearner(S, A, cfg, device="cpu")
    version, tensors, _ = decode_weights(encode_weights(0, learner.actor_weights()))
    pol.load_weights(tensors, version)
    np.testing.assert_array_equal(pol.residual(state, base), np.zeros(A, np.float32))


def test_residual_bounded_by_scale_and_executed_action_clipped():
    cfg = small_cfg(residual_scale=0.1)
    learner = ResidualLearner(S, A, cfg, device="cpu")
    with torch.no_grad():  # push the head far from zero: tanh saturates at the scale
        learner.actor.head.bias.fill_(50.0)
    pol = ResidualPolicy(S, A, cfg)
    pol.load_weights(learner.actor_weights(), 1)
    res = pol.residual(np.zeros(S, np.float32), np.zeros(A, np.float32))
    assert np.all(np.abs(res) <= 0.1 + 1e-6) and np.allclose(res, 0.1, atol=1e-4)
    assert np.all(pol.act(np.zeros(S, np.float32), np.full(A, 0.95, np.float32), "eval") <= 1.0)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_learner_update_reduces_td_error_on_fixed_batch(precision):
    torch.manual_seed(0)
    learner = ResidualLearner(S, A, small_cfg(critic_warmup_updates=10_000, precision=precision), device="cpu")
    batch = fixed_batch()
    before = learner.td_error(batch)
    for _ in range(150):
        m = learner.update(batch)
    after = learner.td_error(batch)
    assert np.isfinite(m["critic_loss"])
    assert after < 0.25 * before, (before, after)


def train_on_linear_q(reward_dims=(0,), **kw) -> tuple[ResidualLearner, torch.Tensor]:
    """Reward = the sum of the action's `reward_dims`, one-step: Q rises linearly along them, so the best
    residual there is +scale."""
    torch.manual_seed(0)
    cfg = small_cfg(critic_warmup_updates=200, actor_lr=1e-3, residual_scale=0.5, **kw)
    learner = ResidualLearner(S, A, cfg, device="cpu")
    batch = fixed_batch()
    batch["reward"] = batch["action"][:, list(reward_dims)].sum(axis=1)
    batch["discount"][:] = 0.0
    for _ in range(600):
        learner.update(batch)
    with torch.no_grad():
        b = learner.to_device(batch)
        res = learner.actor(learner.actor.normalize(b["state"]), b["base_action"])  # (B, A)
    return learner, res


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_actor_moves_toward_higher_q(precision):
    learner, res = train_on_linear_q(precision=precision)
    assert learner.num_actor_updates == 400
    assert float(res[:, 0].mean()) > 0.2  # learned to push dim 0 up


def test_residual_penalty_holds_the_residual_where_the_critic_slope_pays_for_it():
    # with penalty p the optimum is residual/scale = slope / (2 p): shrinking with p, not saturated
    _, free = train_on_linear_q()
    _, held = train_on_linear_q(residual_penalty=4.0)
    _, tight = train_on_linear_q(residual_penalty=16.0)
    assert float(free[:, 0].mean()) > 0.45  # at the bound (0.5)
    assert 0.02 < float(held[:, 0].mean()) < 0.25, float(held[:, 0].mean())  # still pushes up, off the bound
    assert 0.0 < float(tight[:, 0].mean()) < 0.5 * float(held[:, 0].mean())


def test_critic_ensemble_is_vectorised_and_members_differ():
    cfg = small_cfg(num_critics=5)
    critic = CriticEnsemble(S + A, cfg)
    with torch.no_grad():
        q = critic(torch.randn(B, S), torch.randn(B, A))
    assert q.shape == (5, B)
    assert float(q.std(0).mean()) > 0  # independent inits, not one critic copied
    assert critic.weights[0].shape == (5, S + A, cfg.hidden_dim)


def test_checkpoint_roundtrip_restores_nets_optimisers_and_counters(tmp_path):
    torch.manual_seed(0)
    learner = ResidualLearner(S, A, small_cfg(), device="cpu")
    learner.set_state_normalizer(np.arange(S, dtype=np.float32), np.full(S, 2.0, np.float32))
    batch = fixed_batch()
    for _ in range(5):
        learner.update(batch)
    learner.version, learner.env_steps = 3, 123
    learner.save(tmp_path / "ckpt")
    assert not list((tmp_path / "ckpt").glob("*.pkl")) and (tmp_path / "ckpt" / "learner.safetensors").exists()
    restored = ResidualLearner.load(tmp_path / "ckpt", device="cpu")
    assert (restored.num_updates, restored.num_actor_updates, restored.version, restored.env_steps) == (5, 5, 3, 123)
    for k, v in learner.actor_weights().items():
        np.testing.assert_array_equal(restored.actor_weights()[k], v)
    # identical continuation: same update from the same RNG state gives the same critic
    torch.manual_seed(1)
    learner.update(batch)
    torch.manual_seed(1)
    restored.update(batch)
    for p, r in zip(learner.critic.parameters(), restored.critic.parameters()):
        torch.testing.assert_close(p, r)


def test_checkpoint_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="learner.safetensors"):
        (tmp_path / "learner.yaml").write_text("{}")
        ResidualLearner.load(tmp_path)


def test_critic_members_subset_matches_full_ensemble_rows():
    critic = CriticEnsemble(S + A, small_cfg(num_critics=5))
    s, a = torch.randn(B, S), torch.randn(B, A)
    with torch.no_grad():
        full = critic(s, a)
        pair = torch.tensor([3, 1])
        torch.testing.assert_close(critic(s, a, members=pair), full[pair])


def test_unknown_precision_is_a_clear_error():
    with pytest.raises(ValueError, match="precision"):
        ResidualLearner(S, A, small_cfg(precision="fp8"), device="cpu")


@pytest.mark.parametrize("corr", [0.0, 0.9])
def test_exploration_noise_has_its_std_and_step_to_step_correlation(corr):
    cfg = small_cfg(explore_std=0.05, explore_corr=corr, residual_scale=1.0)
    pol = ResidualPolicy(S, A, cfg, seed=3)  # zero-init residual: the executed action is base + noise
    state, base = np.zeros(S, np.float32), np.zeros(A, np.float32)
    noise = []
    for episode in range(40):
        pol.reset()
        noise.append(np.stack([pol.act(state, base, "train") for _ in range(100)]))  # (T, A)
    n = np.stack(noise)  # (episodes, T, A)
    assert abs(n.std() - 0.05) < 0.005
    lag1 = np.corrcoef(n[:, :-1].ravel(), n[:, 1:].ravel())[0, 1]
    assert abs(lag1 - corr) < 0.05
    first = np.corrcoef(n[:-1, -1].ravel(), n[1:, 0].ravel())[0, 1]  # across an episode boundary: fresh
    assert abs(first) < 0.2
    with pytest.raises(ValueError, match="explore_corr must be in"):
        ResidualPolicy(S, A, small_cfg(explore_corr=1.0))


def test_base_only_dims_keep_the_base_action_there_while_the_residual_learns_the_rest(tmp_path):
    # reward rises along dims 0 and 2; dim 2 is left to the base, so only dim 0 may move
    learner, res = train_on_linear_q(reward_dims=(0, 2), base_only_dims=[2])
    cfg = learner.cfg
    assert cfg.base_only_dims == (2,)  # a YAML list becomes the dataclass's tuple
    assert float(res[:, 0].mean()) > 0.2 and torch.count_nonzero(res[:, 2]) == 0
    pol = ResidualPolicy(S, A, cfg, seed=0)
    pol.load_weights(learner.actor_weights(), 1)  # the mask comes from the config, not the weights message
    state, base = np.zeros(S, np.float32), np.full(A, 0.3, np.float32)
    for mode in ("eval", "train", "warmup"):  # no residual, no exploration noise, no warm-up noise on dim 2
        acts = np.stack([pol.act(state, base, mode) for _ in range(20)])
        assert np.all(acts[:, 2] == np.float32(0.3)), mode
        assert acts[:, 1].std() > 0 or mode == "eval", mode
    learner.save(tmp_path / "ckpt")
    assert ResidualLearner.load(tmp_path / "ckpt", device="cpu").cfg.base_only_dims == (2,)


@pytest.mark.parametrize("dims, action_dim, match", [([-1], A, ">= 0"), ([3], A, "the action has 3 dims")])
def test_base_only_dims_out_of_range_is_a_clear_error(dims, action_dim, match):
    with pytest.raises(ValueError, match=match):
        ResidualLearner(S, action_dim, small_cfg(base_only_dims=dims), device="cpu")


@pytest.mark.parametrize("dims", [(), (0, 1, 2)])
def test_td_target_smoothing_noise_skips_base_only_dims(dims):
    # with every dim left to the base the target action is the base's, whatever the noise draws
    learner = ResidualLearner(S, A, small_cfg(num_critics=2, num_min=2, base_only_dims=dims), device="cpu")
    b = learner.to_device(fixed_batch())
    torch.manual_seed(0)
    t0 = learner.td_target(b)
    torch.manual_seed(1)
    t1 = learner.td_target(b)
    assert torch.equal(t0, t1) == (dims == (0, 1, 2))


def test_robust_state_norm_resolves_a_dim_that_sits_near_one_value():
    # a peg's offset from its hole: mostly within 3 mm, sometimes 20 cm away
    rng = np.random.default_rng(0)
    near, far = rng.normal(0, 0.003, 900), rng.uniform(-0.2, 0.2, 100)
    states = np.stack([np.concatenate([near, far]), rng.normal(5.0, 2.0, 1000)], 1).astype(np.float32)
    probe = torch.tensor([[0.001, 5.0], [0.002, 5.0], [0.1, 5.0], [0.2, 5.0]])
    scaled = {}
    for how in ("std", "robust"):
        cfg = small_cfg(state_norm=how)
        learner = ResidualLearner(2, A, cfg, device="cpu")
        learner.set_state_normalizer(*state_statistics(states, how))
        scaled[how] = learner.actor.normalize(probe)[:, 0]
        # the actor side reads the same normaliser from the weights message
        pol = ResidualPolicy(2, A, cfg)
        pol.load_weights(learner.actor_weights(), 1)
        torch.testing.assert_close(pol.net.normalize(probe), learner.actor.normalize(probe))
    std_step, robust_step = (float(scaled[h][1] - scaled[h][0]) for h in ("std", "robust"))
    assert robust_step > 5 * std_step  # 1 mm apart near the hole: far apart for the networks
    assert float(scaled["robust"][3]) > float(scaled["robust"][2]) > float(scaled["robust"][1])  # far: still ordered
    assert float(scaled["robust"][3]) < 10  # not clipped away


def test_unknown_state_norm_is_a_clear_error():
    with pytest.raises(ValueError, match="rl.state_norm must be 'std' or 'robust', got 'minmax'"):
        small_cfg(state_norm="minmax")
