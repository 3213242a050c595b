from robotlearn.envs.interface import (
    IMAGE_PREFIX,
    STATE_KEY,
    ActionSpec,
    EnvDescription,
    EnvError,
    EnvInfo,
    EpisodeDoneError,
    InvalidActionError,
    RobotEnv,
    image_keys,
    image_shapes,
    make_observation_space,
    proprio_state_names,
)
from robotlearn.envs.registry import (allow_env_package, config_dirs, config_root, describe_env, env_config,
                                     find_config, list_envs, make_env, register_env)

__all__ = [
    "IMAGE_PREFIX", "STATE_KEY", "ActionSpec", "EnvDescription", "EnvError", "EnvInfo", "EpisodeDoneError",
    "InvalidActionError", "RobotEnv", "image_keys", "image_shapes", "make_observation_space", "proprio_state_names", "config_root",
    "config_dirs", "find_config",
    "allow_env_package", "describe_env", "env_config", "list_envs", "make_env", "register_env",
]
