"""`robotlearn <command> [key=value ...]`: one entry point, one module per command.

Each command lives in its own module under robotlearn/cli/ and exposes
`main(argv: list[str]) -> int`; this file only dispatches, so adding a command
is adding a module and a line here.
"""
from __future__ import annotations

import importlib
import os
import sys

from robotlearn.config import ConfigError
from robotlearn.envs.registry import USER_CONFIG_ENV, user_config_dir

COMMANDS: dict[str, tuple[str, str]] = {
    "pipeline": ("robotlearn.cli.pipeline", "collect demos -> train BC base -> residual fine-tune -> eval (the README demo)"),
    "expert": ("robotlearn.cli.expert", "run scripted experts on sim tasks and print success rate per noise level"),
    "collect": ("robotlearn.cli.collect", "record episodes (scripted expert or policy) into a zarr dataset"),
    "dataset": ("robotlearn.cli.dataset", "dataset info | validate | view | import-bag | import-robomimic | import-lerobot |"
                " export-lerobot"),
    "train-bc": ("robotlearn.cli.train_bc", "train a BC or diffusion base policy from a zarr dataset"),
    "train-reward": ("robotlearn.cli.train_reward", "train a success classifier on camera frames (a learned reward)"),
    "eval": ("robotlearn.cli.eval", "evaluate a policy (and base vs base+residual) on an env"),
    "finetune": ("robotlearn.cli.finetune", "residual off-policy RL on a frozen base (async actor-learner)"),
    "envs": ("robotlearn.cli.envs", "list registered environments"),
}


def usage() -> str:
    lines = ["usage: robotlearn [--config-dir DIR] <command> [key=value ...]", "", "commands:"]
    lines += [f"  {name:<10} {doc}" for name, (_, doc) in COMMANDS.items()]
    lines += ["", "Overrides use hydra syntax, e.g. `robotlearn collect env=sim/lift episodes=20`.",
              "--config-dir DIR (or ROBOTLEARN_CONFIG_DIR): your own env/, ros2/, command YAMLs, searched before "
              "robotlearn's."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--config-dir"] or argv[:1] and argv[0].startswith("--config-dir="):
        value = argv[0].partition("=")[2] if "=" in argv[0] else (argv[1] if len(argv) > 1 else "")
        argv = argv[1:] if "=" in argv[0] else argv[2:]
        if not value:
            print("robotlearn: error: --config-dir needs a directory", file=sys.stderr)
            return 2
        os.environ[USER_CONFIG_ENV] = value  # the environment: subprocesses and hydra see it too
    try:
        user_config_dir()
    except ConfigError as e:
        print(f"robotlearn: error: {e}", file=sys.stderr)
        return 2
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        print(f"robotlearn: unknown command {cmd!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[cmd][0])
    if any(a in ("-h", "--help") for a in rest):
        print(command_help(cmd, module, [a for a in rest if a not in ("-h", "--help")]))
        return 0
    return int(module.main(rest) or 0)


def command_help(cmd: str, module, overrides: list[str]) -> str:
    """The command's docstring, then every key it takes with its value (defaults + the given overrides)."""
    from omegaconf import OmegaConf

    from robotlearn.config import ConfigError, compose

    text = (module.__doc__ or "").strip()
    name = cmd.replace("-", "_")
    try:
        keys = OmegaConf.to_yaml(compose(name, overrides), resolve=False)
    except ConfigError as e:
        keys = f"(cannot list the keys: {e})"
    return f"{text}\n\nkeys (configs/{name}.yaml; override with key=value):\n{keys}"


if __name__ == "__main__":
    raise SystemExit(main())
