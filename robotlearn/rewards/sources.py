"""Where an env's reward comes from: `env` (its own detector), `classifier:<dir>` (a learned one), or
`label` (a human's verdict on the robot's label topic).

`with_reward(env, "classifier:<dir>")` wraps any RobotEnv, sim or ROS 2: each step the classifier
scores the new observation; `consecutive` frames in a row above `threshold` declare success, give
reward 1 and end the episode. The env's own detector, where it has one, stays visible as
`info[INFO_ENV_SUCCESS]`, so an evaluation can report the learned detector next to the truth.
Make the inner env with `terminate_on_success=false` (sim tasks, `env.terminate_on_success` on ROS 2)
so that only the classifier ends an episode. `with_reward(env, "label")` does the same with the human
label (`INFO_HUMAN_LABEL`, from `robot.label_topic` on ROS 2): success and reward 1 on a True label,
failure on False, both end the episode; between labels the reward is 0 whatever the robot's own
success topic says.
"""
from __future__ import annotations

from robotlearn.config import ConfigError
from robotlearn.envs.interface import INFO_HUMAN_LABEL, INFO_SUCCESS, RobotEnv

INFO_ENV_SUCCESS = "env_success"  # bool: the wrapped env's own success detector this step
INFO_REWARD_SOURCE = "reward_source"  # str: which source gave this step's reward ("env", "classifier")
SOURCES = ("env", "classifier:<checkpoint dir>", "label")


class RewardWrapper(RobotEnv):
    """Another reward source on `env`: same spaces, facts and human inputs; subclasses fill _reset/_step."""

    def __init__(self, env: RobotEnv) -> None:
        super().__init__()
        self.env = env
        self.env_info, self.observation_space, self.action_space = env.env_info, env.observation_space, env.action_space
        self.paces_itself, self.accepts_interventions = env.paces_itself, env.accepts_interventions
        self.accepts_labels = env.accepts_labels

    def wait_for_intervention(self, timeout_s: float) -> bool:
        return self.env.wait_for_intervention(timeout_s)

    def close(self) -> None:
        self.env.close()


class ClassifierReward(RewardWrapper):
    """An env whose success (and sparse reward) is a success classifier's verdict on its observations."""

    reward_source = "classifier"

    def __init__(self, env: RobotEnv, classifier, source: str = "") -> None:
        super().__init__(env)
        self.classifier, self.source = classifier, source
        missing = [k for k in classifier.obs_shapes if k not in env.observation_space.spaces or
                   tuple(env.observation_space[k].shape) != classifier.obs_shapes[k]]
        if missing:
            raise ValueError(f"reward=classifier:{source}: it reads {classifier.obs_shapes}, env {env.name} gives "
                             f"{ {k: s.shape for k, s in env.observation_space.spaces.items()} }")
        self.threshold, self.k = classifier.cfg.threshold, classifier.cfg.consecutive
        self._run = 0

    def _reset(self, seed, options):
        obs, info = self.env.reset(seed=seed, options=options)
        self._run = 0
        return obs, {**info, INFO_ENV_SUCCESS: bool(info.get(INFO_SUCCESS, False)), INFO_SUCCESS: False}

    def _step(self, action):
        obs, _, terminated, truncated, info = self.env.step(action)
        p = self.classifier(obs)
        self._run = self._run + 1 if p > self.threshold else 0
        success = self._run >= self.k
        info = {**info, INFO_ENV_SUCCESS: bool(info.get(INFO_SUCCESS, False)), INFO_SUCCESS: success,
                INFO_REWARD_SOURCE: self.reward_source, "success_prob": p}
        # an inner env that ends the episode itself (an e-stop; a sim task at its own success unless made with
        # terminate_on_success=false) ends this one too; its time limit is this env's time limit
        return obs, float(success), bool(success or terminated), info


class LabelReward(RewardWrapper):
    """An env whose success (and sparse reward) is the human label; its own detector only informs."""

    reward_source = "label"

    def __init__(self, env: RobotEnv) -> None:
        if not env.accepts_labels:
            raise ConfigError(f"reward=label: env {env.name!r} has no human label input (a ROS 2 robot with "
                              f"robot.label_topic has one); use reward=env or reward=classifier:<dir>")
        super().__init__(env)

    def _reset(self, seed, options):
        obs, info = self.env.reset(seed=seed, options=options)
        return obs, {**info, INFO_ENV_SUCCESS: bool(info.get(INFO_SUCCESS, False)), INFO_SUCCESS: False}

    def _step(self, action):
        obs, _, terminated, truncated, info = self.env.step(action)
        label = info.get(INFO_HUMAN_LABEL)
        success = bool(label)
        # the robot's own detector where it spoke (the inner env reports a label as its success too)
        info = {**info, INFO_ENV_SUCCESS: bool(info.get(INFO_SUCCESS, False)) and label is None,
                INFO_SUCCESS: success, INFO_REWARD_SOURCE: self.reward_source}
        return obs, float(success), bool(label is not None or terminated), info


def check_reward(reward: str) -> None:
    """A reward source's spelling, checked where a config is made (the env is not needed)."""
    if reward not in ("env", "label") and not (reward.startswith("classifier:") and len(reward) > 11):
        raise ConfigError(f"reward={reward!r}: expected env, label or classifier:<train-reward checkpoint dir>")


def with_reward(env: RobotEnv, reward: str) -> RobotEnv:
    """`env` with the reward source `reward` ("env" returns it unchanged)."""
    if reward == "env":
        return env
    if reward.startswith("classifier:"):
        from robotlearn.rewards.classifier import load_classifier

        path = reward.split(":", 1)[1]
        return ClassifierReward(env, load_classifier(path), path)
    if reward == "label":
        return LabelReward(env)
    raise ValueError(f"reward={reward!r}: expected one of {SOURCES}")
