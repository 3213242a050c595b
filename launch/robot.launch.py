"""On the robot's computer: the safety bridge + the actor node (Ros2RobotEnv + base + residual).

    ros2 launch robotlearn robot.launch.py params:=/path/to/finetune.yaml robot_params:=/path/to/robot.yaml
    ros2 launch robotlearn robot.launch.py sim:=true     # the MuJoCo robot instead of hardware + bridge

The real driver (e.g. franka_ros2 with ros2_control forward controllers) is started by its own
launch file; this one adds what robotlearn needs: the safety bridge between the env and the
controller, and the actor. Same executables and YAML files as the console scripts
`robotlearn-safety-bridge`, `robotlearn-actor-node`, `robotlearn-mujoco-robot` with `--params ...`.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from hw_drivers.config import ros2_config_path as config  # installed with the robotlearn Python package


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("params", default_value=config("finetune_panda_real.yaml"),
                              description="finetune YAML read by the actor (names the robot params file)"),
        DeclareLaunchArgument("robot_params", default_value=config("panda_real.yaml"),
                              description="robot description YAML (the same file the finetune YAML names)"),
        DeclareLaunchArgument("sim", default_value="false",
                              description="serve the MuJoCo robot (robot_params:=.../panda_sim.yaml) instead of a bridge"),
        Node(package="robotlearn", executable="robotlearn-safety-bridge", output="screen",
             arguments=["--params", LaunchConfiguration("robot_params")],
             condition=UnlessCondition(LaunchConfiguration("sim"))),
        Node(package="robotlearn", executable="robotlearn-mujoco-robot", output="screen",
             arguments=["--params", LaunchConfiguration("robot_params")],
             condition=IfCondition(LaunchConfiguration("sim"))),
        Node(package="robotlearn", executable="robotlearn-actor-node", output="screen",
             arguments=["--params", LaunchConfiguration("params")]),
    ])
