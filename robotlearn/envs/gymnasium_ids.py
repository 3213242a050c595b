"""Every robotlearn env in gymnasium's own registry: `gymnasium.make("robotlearn/sim-lift-v0", horizon=80)`.

`import robotlearn` registers one id per env `list_envs()` knows, `<group>/<name>` ->
`robotlearn/<group>-<name>-v0` (`gymnasium_id`), whose entry point is `make_env` itself: the
kwargs of `gymnasium.make` are `make_env`'s overrides, unchanged. gymnasium adds its usual
wrappers (order enforcing, passive env checker) and no TimeLimit: the env ends its own episodes
at its declared horizon. Envs added later (`register_env`, another ROBOTLEARN_CONFIG_DIR) get
their ids from `register_gymnasium_envs()`.
"""
from __future__ import annotations

import warnings

NAMESPACE = "robotlearn"
ENTRY_POINT = "robotlearn.envs.registry:make_env"


def gymnasium_id(name: str) -> str:
    """The gymnasium id of a robotlearn env name: "sim/lift" -> "robotlearn/sim-lift-v0"."""
    return f"{NAMESPACE}/{name.replace('/', '-')}-v0"


def register_gymnasium_envs(names: list[str] | None = None) -> list[str]:
    """Register `names` (default: every env `list_envs()` knows) with gymnasium; returns their ids."""
    from gymnasium.envs.registration import register, registry

    from robotlearn.envs.registry import list_envs

    ids = []
    for name in list_envs() if names is None else names:
        gid = gymnasium_id(name)
        have = registry.get(gid)
        if have is None:
            register(id=gid, entry_point=ENTRY_POINT, kwargs={"name": name})
        elif have.kwargs.get("name") != name:  # two names that map to one id ("a-b/c" and "a/b-c")
            warnings.warn(f"gymnasium id {gid} already names env {have.kwargs.get('name')!r}, so env {name!r} "
                          "has no gymnasium id; rename one of the two env configs", stacklevel=2)
            continue
        ids.append(gid)
    return ids
