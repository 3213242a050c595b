"""The whole hardware path on one machine without hardware: MuJoCo robot node + actor + learner.

    ros2 launch robotlearn mujoco_dry_run.launch.py

Equivalent to `python -m hw_drivers.dry_run` (which needs no ROS 2 launch install).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from hw_drivers.config import ros2_config_path as config  # installed with the robotlearn Python package


def generate_launch_description():
    params = LaunchConfiguration("params")
    return LaunchDescription([
        DeclareLaunchArgument("params", default_value=config("finetune_panda_sim.yaml")),
        DeclareLaunchArgument("robot_params", default_value=config("panda_sim.yaml")),
        Node(package="robotlearn", executable="robotlearn-mujoco-robot", output="screen",
             arguments=["--params", LaunchConfiguration("robot_params")]),
        Node(package="robotlearn", executable="robotlearn-learner-node", output="screen",
             arguments=["--params", params]),
        Node(package="robotlearn", executable="robotlearn-actor-node", output="screen",
             arguments=["--params", params]),
    ])
