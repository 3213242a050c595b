"""finetune demos= from a dataset with other array names, read through demo_keys (a key map)."""
import numpy as np

from robotlearn.data import EpisodeWriter


def test_finetune_demos_through_a_key_map(tmp_path):
    from robotlearn.cli.finetune import load_config
    from robotlearn.envs import make_env
    from robotlearn.rl.residual import ResidualConfig
    from robotlearn.runtime.learner import Learner, LearnerConfig
    from robotlearn.runtime.spec import RunSpec

    env = make_env("sim/reach")
    try:
        dim, adim = env.observation_space["state"].shape[0], env.action_space.shape[0]
        demos = tmp_path / "foreign.zarr"  # a dataset that calls its state `joint_obs`
        rng = np.random.default_rng(0)
        episodes = [{"joint_obs": rng.normal(size=(8, dim)).astype(np.float32),
                     "action": rng.uniform(-1, 1, (8, adim)).astype(np.float32),
                     "reward": np.eye(8, dtype=np.float32)[-1]} for _ in range(2)]
        with EpisodeWriter(demos) as w:
            for ep in episodes:
                w.add_episode(ep, success=True)

        L = Learner(None, ResidualConfig(num_critics=2, hidden_dim=16, buffer_size=1000),
                    LearnerConfig(out_dir=str(tmp_path / "run"), tensorboard=False), env.env_info, env.observation_space,
                    demos=str(demos), demo_keys={"joint_obs": "state"})  # without it: "lacks data/state" (test_faults_config)
        assert len(L.demo_buffer) == 16
        recorded = np.concatenate([ep["joint_obs"] for ep in episodes])
        sampled = L.demo_buffer.sample(32, np.random.default_rng(1))["state"]
        assert all(np.isclose(recorded, row).all(1).any() for row in sampled)  # the demos' states are joint_obs
        L.close()
    finally:
        env.close()
    cfg = load_config(["env=sim/reach", f"demos={demos}", "demo_keys={joint_obs: state}"])
    assert cfg.demo_keys == {"joint_obs": "state"}
    assert RunSpec.from_json(RunSpec(**cfg.run_fields()).to_json()).demo_keys == {"joint_obs": "state"}  # crosses processes
