"""Scene composition with dm_control PyMJCF: table + Panda + cameras, objects added per task.

Tasks get an `Arena` (a PyMJCF root with the robot attached under the `panda/`
prefix) and add their own bodies; `compile()` turns it into a raw
`mujoco.MjModel` so stepping never goes through PyMJCF.
"""
from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np
from dm_control import mjcf

ASSETS = Path(__file__).resolve().parent / "assets"
PANDA_XML = ASSETS / "panda.xml"
PREFIX = "panda/"
TABLE_Z = 0.0  # table top height; the robot base stands on it at the origin

# world geoms collide with the robot (contype 2) and with each other (contype 1)
WORLD_COLLISION = {"contype": 1, "conaffinity": 3}


def lookat_xyaxes(pos, target, up=(0.0, 0.0, 1.0)) -> list[float]:
    """MJCF camera `xyaxes` for a camera at `pos` looking at `target`."""
    fwd = np.asarray(target, float) - np.asarray(pos, float)
    fwd /= np.linalg.norm(fwd)
    x = np.cross(fwd, up)
    x /= np.linalg.norm(x)
    y = np.cross(x, fwd)
    return [*x.round(4), *y.round(4)]


class Arena:
    """A table-top scene with the Panda attached; tasks add objects, then `compile()`."""

    def __init__(self, name: str) -> None:
        root = mjcf.RootElement(model=name)
        root.compiler.angle = "radian"
        root.option.timestep = 0.002
        root.option.integrator = "implicitfast"
        root.option.cone = "elliptic"
        root.option.impratio = 10
        root.visual.headlight.ambient = [0.45, 0.45, 0.45]
        root.visual.headlight.diffuse = [0.5, 0.5, 0.5]
        root.visual.quality.shadowsize = 0
        root.visual.map.znear = 0.01
        root.size.memory = "4M"
        wb = root.worldbody
        wb.add("light", name="top", pos=[0.4, 0, 1.5], dir=[0, 0, -1], diffuse=[0.6, 0.6, 0.6],
               castshadow=False)
        # the floor collides: an object pushed off the table lands on it instead of falling without end
        # (its pose, and the state built from it, stay bounded)
        wb.add("geom", name="floor", type="plane", size=[2, 2, 0.1], pos=[0, 0, -0.75],
               rgba=[0.3, 0.32, 0.35, 1], **WORLD_COLLISION)
        wb.add("geom", name="table", type="box", size=[0.6, 0.6, 0.02], pos=[0.35, 0, TABLE_Z - 0.02],
               rgba=[0.55, 0.45, 0.35, 1], friction=[1.0, 0.005, 0.0001], **WORLD_COLLISION)
        front = [1.0, 0.0, 0.5]
        wb.add("camera", name="front", pos=front, xyaxes=lookat_xyaxes(front, [0.45, 0, 0.05]), fovy=60)
        side = [0.5, -0.75, 0.4]
        wb.add("camera", name="side", pos=side, xyaxes=lookat_xyaxes(side, [0.5, 0, 0.05]), fovy=60)
        robot = mjcf.from_path(str(PANDA_XML))
        robot.model = "panda"
        wb.attach(robot)
        self.root = root

    @property
    def worldbody(self):
        return self.root.worldbody

    def add_box(self, name: str, half_size, rgba, mass: float = 0.05, free: bool = True, pos=(0, 0, 0)):
        """A (free) box body; returns the PyMJCF body."""
        body = self.root.worldbody.add("body", name=name, pos=list(pos))
        if free:
            body.add("freejoint", name=name)
        body.add("geom", name=name, type="box", size=list(half_size), rgba=list(rgba), mass=mass,
                 friction=[1.0, 0.01, 0.0002], condim=4, **WORLD_COLLISION)
        return body

    def add_target(self, name: str, radius: float, rgba) -> None:
        """A visual-only mocap marker (no collision) that tasks move on reset."""
        body = self.root.worldbody.add("body", name=name, mocap=True)
        body.add("geom", name=name, type="sphere", size=[radius], rgba=list(rgba), contype=0,
                 conaffinity=0, group=1)

    def compile(self) -> mujoco.MjModel:
        xml = self.root.to_xml_string()
        return mujoco.MjModel.from_xml_string(xml, self.root.get_assets())
