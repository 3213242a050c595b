"""On the robot's computer: the actor node (Ros2RobotEnv + base + residual) next to the robot driver.

    ros2 launch robotlearn robot.launch.py params:=/path/to/finetune.yaml
    ros2 launch robotlearn robot.launch.py sim:=true     # serve the MuJoCo robot too (no hardware)

The real driver (e.g. franka_ros2 with ros2_control forward controllers) is started by its own
launch file; this one only adds what robotlearn needs. Same executables and YAML files as the
console scripts `robotlearn-actor-node --params ...` / `robotlearn-mujoco-robot --params ...`.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from hw_drivers.config import ros2_config_path as config  # installed with the robotlearn Python package


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("params", default_value=config("finetune_panda_sim.yaml"),
                              description="finetune YAML read by the actor (names the robot params file)"),
        DeclareLaunchArgument("robot_params", default_value=config("panda_sim.yaml"),
                              description="robot description YAML for the MuJoCo robot (sim:=true)"),
        DeclareLaunchArgument("sim", default_value="false", description="also start the MuJoCo robot node"),
        Node(package="robotlearn", executable="robotlearn-mujoco-robot", output="screen",
             arguments=["--params", LaunchConfiguration("robot_params")],
             condition=IfCondition(LaunchConfiguration("sim"))),
        Node(package="robotlearn", executable="robotlearn-actor-node", output="screen",
             arguments=["--params", LaunchConfiguration("params")]),
    ])
