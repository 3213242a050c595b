"""sim/peg_insert: insert a peg held in the gripper into a tight, chamfered hole (contact-rich, millimetre precision).

The peg (a 2 cm cylinder) is mounted rigidly in the hand between the fingers, so it is held from the first
step and the gripper command does not move it (the simplest stable grasp; the ROS 2 robot node's reset, which
opens the gripper, cannot drop it). Its tip is `PEG_TIP` below the TCP. The hole is a block on the table whose
bore is a regular `BORE_SIDES`-gon of boxes with inradius peg radius + clearance / 2, topped by a 45-degree
chamfer `chamfer` wide; the block's xy and yaw are drawn per episode (the bore is round, so yaw changes the
view, not the insertion). The arm is a stiff joint position servo behind the IK step: a peg aimed beside the
bore by more than the chamfer lands on the top face and stays there, one pushed sideways onto the chamfer or
the bore wall sticks there, and one driven down fast wedges in the chamfer (numbers: PegInsertExpert).

Success: the peg tip is at least `insert_depth` below the block's top face and inside the bore.
"""
from __future__ import annotations

import mujoco
import numpy as np

from sim.scene import PREFIX, TABLE_Z, WORLD_COLLISION
from sim.tasks.base import PandaTaskEnv
from sim.tasks.expert import ScriptedExpert
from sim.tasks.lift import yaw_quat

PEG_RADIUS = 0.01  # m
PEG_TIP = 0.05  # peg tip below the TCP (m): 4 cm past the fingertips
PEG_TOP = 0.03  # peg top above the TCP (m), inside the hand
BORE_SIDES = 16  # bore polygon sides: corners stand 2% of the inradius proud of the flats
HOLE_HEIGHT = 0.035  # block height (m); the bore goes down to the table
WALL = 0.008  # radial thickness of the bore wall pieces (m)
PLATE_HALF = 0.045  # half-width of the square base plate that shows the block's yaw (visual only)
HOLE_BOX = np.array([[0.45, 0.57], [-0.08, 0.08]])  # block centre xy region (m)
MAX_YAW = 0.6  # block yaw drawn from [-MAX_YAW, MAX_YAW] (rad)
# Contacts between peg and block: stiff (time constant 2x the 2 ms step) and hard (impedance 0.99-0.999), so a
# 130 N push squeezes the surfaces by 0.15 mm, well under the clearance; friction 0.5 (jams a sideways press).
CONTACT = dict(solref=[0.004, 1.0], solimp=[0.99, 0.999, 0.0005], friction=[0.5, 0.005, 0.0001], condim=3)
# Start posture and the IK's null-space pull: TCP at (0.5, 0, 0.12) pointing down (robotlearn.envs.kinematics.ik_step
# iterated from base.HOME_Q). The damped IK leaks the posture pull into the TCP: under zero actions at insertion
# height a TCP drifts ~1 mm per step with base.HOME_Q (TCP 0.25 m up), 0.1-0.4 mm per step with this one.
PEG_HOME_Q = np.array([0.0, 0.2221, 0.0, -2.4011, 0.0, 2.6232, 0.7854])
PEG_FEATURES = ("hole_x", "hole_y", "hole_z", "hole_minus_tip_x", "hole_minus_tip_y", "hole_minus_tip_z")


class PegInsertEnv(PandaTaskEnv):
    """Features: hole top centre (3), hole top centre - peg tip (3)."""

    task_name = "sim/peg_insert"
    default_horizon = 100
    task_feature_names = PEG_FEATURES
    home_q = PEG_HOME_Q
    tip_site = f"{PREFIX}peg_tip"  # the peg tip's site (the mounted peg is part of the attached robot)

    def __init__(self, clearance: float = 0.002, chamfer: float = 0.002, insert_depth: float = 0.02,
                 **kwargs) -> None:
        if not 0.0 < clearance <= 0.01 or not 0.0 <= chamfer <= 0.01:
            raise ValueError(f"sim/peg_insert: need 0 < clearance <= 0.01 and 0 <= chamfer <= 0.01 (m), "
                             f"got clearance={clearance}, chamfer={chamfer}")
        if not 0.0 < insert_depth < HOLE_HEIGHT - chamfer:
            raise ValueError(f"sim/peg_insert: insert_depth must be in (0, {HOLE_HEIGHT - chamfer:g}) m (below the "
                             f"chamfer, above the table), got {insert_depth}")
        self.clearance, self.chamfer, self.insert_depth = float(clearance), float(chamfer), float(insert_depth)
        self.bore_radius = PEG_RADIUS + self.clearance / 2  # inradius of the bore polygon
        super().__init__(**kwargs)
        self.env_info.config.update(clearance=self.clearance, chamfer=self.chamfer, insert_depth=self.insert_depth)
        self._hole = self.model.body("hole").mocapid[0]
        self._tip = self.model.site(self.tip_site).id

    def _build(self, arena) -> None:
        self._add_peg(arena)
        self._add_hole(arena)

    def _add_peg(self, arena) -> None:
        """The peg mounted rigidly in the hand, its tip PEG_TIP below the TCP."""
        hand = arena.root.find("body", f"{PREFIX}hand")
        tcp_z = float(arena.root.find("site", f"{PREFIX}tcp").pos[2])  # in the hand frame
        peg = hand.add("body", name="peg", pos=[0, 0, tcp_z + (PEG_TIP - PEG_TOP) / 2])
        # a robot geom (contype 2, conaffinity 0): touches the world, never the arm; massless like the hand's geoms
        peg.add("geom", name="peg", type="cylinder", size=[PEG_RADIUS, (PEG_TIP + PEG_TOP) / 2],
                rgba=[0.2, 0.6, 0.9, 1], contype=2, conaffinity=0, mass=0, **CONTACT)
        peg.add("site", name="peg_tip", pos=[0, 0, (PEG_TIP + PEG_TOP) / 2], size=[0.003], rgba=[1, 0, 0, 0],
                group=4)

    def _add_hole(self, arena) -> None:
        """The block with the chamfered bore, a mocap body placed on reset."""
        body = arena.worldbody.add("body", name="hole", mocap=True, pos=[0.5, 0, TABLE_Z])
        rgba, h, c, r, n = (0.85, 0.55, 0.15, 1), HOLE_HEIGHT, self.chamfer, self.bore_radius, BORE_SIDES
        body.add("geom", name="hole_plate", type="box", size=[PLATE_HALF, PLATE_HALF, 0.0015], pos=[0, 0, 0.0015],
                 rgba=(0.3, 0.3, 0.3, 1), contype=0, conaffinity=0)
        body.add("geom", name="hole_mark", type="box", size=[0.006, 0.004, 0.0016], rgba=(0.9, 0.9, 0.9, 1),
                 pos=[PLATE_HALF - 0.008, 0, 0.0016], contype=0, conaffinity=0)  # shows the yaw in the images
        collide = dict(**WORLD_COLLISION, **CONTACT, rgba=rgba)
        for i in range(n):
            a = 2 * np.pi * i / n
            radial, quat = np.array([np.cos(a), np.sin(a)]), yaw_quat(a)
            # lower wall: inner face at the bore radius, from the table to the chamfer
            lower = h - c
            half_t = (r + WALL) * np.tan(np.pi / n)  # tangential half-width at the outer face: no gaps
            body.add("geom", name=f"hole_wall{i}", type="box", size=[WALL / 2, half_t, lower / 2], quat=quat,
                     pos=[*(radial * (r + WALL / 2)), lower / 2], **collide)
            if c <= 0:
                continue
            # upper wall: inner face at bore radius + chamfer, over the chamfer's height (the block's top face)
            ro = r + c
            half_to = (ro + WALL) * np.tan(np.pi / n)
            body.add("geom", name=f"hole_top{i}", type="box", size=[WALL / 2, half_to, c / 2], quat=quat,
                     pos=[*(radial * (ro + WALL / 2)), h - c / 2], **collide)
            # chamfer: a box tilted 45 deg whose inner face runs exactly from (r, h - c) up to (r + c, h) (longer,
            # it would stick into the bore)
            t = 0.002  # half-thickness behind the chamfer face
            mid = np.array([r + c / 2, h - c / 2]) + t * np.array([1.0, -1.0]) / np.sqrt(2)
            tilt = np.array([np.cos(-np.pi / 8), 0.0, np.sin(-np.pi / 8), 0.0])  # -45 deg about the local y
            chamfer_quat = np.empty(4)
            mujoco.mju_mulQuat(chamfer_quat, quat, tilt)
            body.add("geom", name=f"hole_chamfer{i}", type="box", size=[c / np.sqrt(2), half_to, t],
                     quat=chamfer_quat, pos=[*(radial * mid[0]), mid[1]], **collide)

    def _randomise(self, rng) -> None:
        self.data.mocap_pos[self._hole] = [*rng.uniform(HOLE_BOX[:, 0], HOLE_BOX[:, 1]), TABLE_Z]
        self.data.mocap_quat[self._hole] = yaw_quat(rng.uniform(-MAX_YAW, MAX_YAW))

    @property
    def hole_top(self) -> np.ndarray:
        """Centre of the bore at the block's top face (m, world)."""
        return self.data.mocap_pos[self._hole] + [0.0, 0.0, HOLE_HEIGHT]

    @property
    def hole_yaw(self) -> float:
        w, _, _, z = self.data.mocap_quat[self._hole]
        return float(2 * np.arctan2(z, w))

    @property
    def peg_tip(self) -> np.ndarray:
        return self.data.site_xpos[self._tip].copy()

    def _task_features(self) -> np.ndarray:
        hole = self.hole_top
        return np.concatenate([hole, hole - self.peg_tip])

    def compute_success(self) -> bool:
        d = self.hole_top - self.peg_tip
        return bool(d[2] >= self.insert_depth and np.hypot(d[0], d[1]) < self.bore_radius)

    def make_expert(self, noise: float = 0.0, seed: int = 0) -> "PegInsertExpert":
        return PegInsertExpert(self, noise, seed)


class PegInsertExpert(ScriptedExpert):
    """Hover the tip above the hole -> descend slowly, pushing down. Noise misaims it by a few millimetres.

    A proportional step leaves the TCP 1-2 mm off its target (the EE controller's damped IK with its posture
    pull; under a downward push the joint servos' coupling shifts the tip sideways by as much), which is the
    clearance, so the expert adds an integral term on the tip's xy error near its target. With an aiming
    error that term presses the peg sideways against the chamfer or the bore wall, which is how misaimed
    insertions jam. The gripper command stays closed (the noise's gripper slips do nothing: the peg is mounted).
    Clean expert with a fixed aiming error (12 episodes each): 0-1 mm 100%, 2 mm 8%, 3-6 mm 0%; centred but
    descending at 0.5 or 1.0 x max_delta per step instead of 0.15: 42% and 0% (wedged in the chamfer).
    """

    hover = 0.015  # tip height above the top face before descending (m)
    descend_speed = 0.15  # max fraction of max_delta per step down once over the hole: pushing faster jams
    ki = 0.3  # integral gain on the TCP error once within `i_zone` of the target
    i_zone = 0.003  # m
    i_max = 0.01  # bound of the integral per axis (m): up to ki * i_max = 3 mm of compensation
    # noise scales, smaller than the other tasks' (a 4 mm aiming error already fails): at noise 1 the per-episode
    # aiming error has 2.5 mm standard deviation per axis, the per-step jitter 3 mm (0.15 x max_delta)
    aim_scale = 0.0025
    jitter = 0.15

    def _episode_start(self) -> None:
        self.phase = "align"
        self.aim = self.aim_error(self.aim_scale)
        self.i_err = np.zeros(3)

    def _servo(self, target: np.ndarray, z_integral: bool) -> np.ndarray:
        err = target - self.env.tcp_pos
        if np.hypot(err[0], err[1]) < self.i_zone:
            self.i_err[:2] += err[:2]
        if z_integral and abs(err[2]) < self.i_zone:
            self.i_err[2] += err[2]
        self.i_err = np.clip(self.i_err, -self.i_max, self.i_max)
        return self.move_to(target + self.ki * self.i_err, 1.0)

    def _clean_action(self) -> np.ndarray:
        env = self.env
        tcp_to_tip = env.peg_tip - env.tcp_pos
        aim = env.hole_top + self.aim
        if self.phase == "align":
            above = aim + [0.0, 0.0, self.hover] - tcp_to_tip
            err = above - env.tcp_pos
            if np.hypot(err[0], err[1]) < 0.0005 and abs(err[2]) < 0.002:
                self.phase = "insert"
            return self._servo(above, z_integral=True)
        self.i_err[2] = 0.0  # pushing down against contact: no integral along z
        a = self._servo(aim - [0.0, 0.0, env.insert_depth + 0.01] - tcp_to_tip, z_integral=False)
        a[2] = max(a[2], -self.descend_speed)
        return a
