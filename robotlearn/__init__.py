"""robotlearn: demonstrations -> base policy -> residual off-policy RL, on MuJoCo or ROS 2 robots."""

__version__ = "0.1.0"
