from robotlearn.policies.base import BasePolicy, ChunkStepper, ZeroPolicy

__all__ = ["BasePolicy", "ChunkStepper", "ZeroPolicy", "load_policy", "save_policy"]


def __getattr__(name: str):
    """`load_policy` / `save_policy` on first use, so importing the contract stays light."""
    if name in ("load_policy", "save_policy"):
        from robotlearn.policies import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module 'robotlearn.policies' has no attribute {name!r}")
