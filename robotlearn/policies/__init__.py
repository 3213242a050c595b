from robotlearn.policies.base import BasePolicy, ChunkStepper, ZeroPolicy

__all__ = ["BasePolicy", "ChunkStepper", "ZeroPolicy"]
