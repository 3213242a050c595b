"""On the workstation (GPU): the learner node. Set `dds.localhost_only: false` in the robot params
and the same ROS_DOMAIN_ID on both machines when the actor runs on the robot's computer.

    ros2 launch robotlearn learner.launch.py params:=/path/to/finetune.yaml

Same executable and YAML as `robotlearn-learner-node --params ...`.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from hw_drivers.config import ros2_config_path as config  # installed with the robotlearn Python package


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("params", default_value=config("finetune_panda_real.yaml"),
                              description="finetune YAML (robot params, transport, rl, learner)"),
        Node(package="robotlearn", executable="robotlearn-learner-node", output="screen",
             arguments=["--params", LaunchConfiguration("params")]),
    ])
