"""sim/peg_pick_insert: pick a peg standing on the table, carry it to a tight chamfered hole and insert it.

sim/peg_insert with the grasp first: a longer, multi-stage task (approach, grasp, lift, carry, align, insert)
whose last stage is the same millimetre-precision contact problem. The peg (a 2 cm x 8 cm cylinder) stands
upright at a random spot beside the hole's region. The grasp is a weld: once the gripper is commanded closed
and both fingers touch the peg, the peg is held rigidly at the pose it had in the hand then (so where it was
grasped sets the tip's offset from the TCP, every episode differently); opening the gripper releases it. A
friction grasp would let the peg tilt and slide in the fingers while it is pressed into a 2 mm clearance,
which makes the insertion a matter of finger friction, not of aiming; the weld keeps the contact problem the
one sim/peg_insert has (PegInsertEnv: the bore, its chamfer and how misaimed pegs jam).

Success: the peg tip is at least `insert_depth` below the block's top face and inside the bore.
"""
from __future__ import annotations

import mujoco
import numpy as np

from sim.scene import PREFIX, TABLE_Z, WORLD_COLLISION
from sim.tasks.peg_insert import CONTACT, PEG_FEATURES, PEG_RADIUS, PegInsertEnv, PegInsertExpert

PEG_LENGTH = 0.08  # m
PEG_BOX = np.array([[0.42, 0.58], [0.16, 0.24]])  # peg xy spawn region (m): clear of the block's (y <= 0.145)
GRASP_BELOW_TOP = 0.03  # TCP this far below the peg's top when grasping: the tip then ends ~5 cm below the TCP
CLOSED_CTRL = 0.02  # per-finger opening command (m) below which the gripper counts as commanded closed
PICK_FEATURES = (*PEG_FEATURES, "tip_minus_tcp_x", "tip_minus_tcp_y", "tip_minus_tcp_z")


class PegPickInsertEnv(PegInsertEnv):
    """Features: hole top centre (3), hole top centre - peg tip (3), peg tip - TCP (3)."""

    task_name = "sim/peg_pick_insert"
    default_horizon = 150
    task_feature_names = PICK_FEATURES
    tip_site = "peg_tip"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        m = self.model
        j = m.joint("peg")
        self._peg_q, self._peg_v = j.qposadr[0], j.dofadr[0]
        self._peg_body, self._hand_body = m.body("peg").id, m.body(f"{PREFIX}hand").id
        self._peg_geom = m.geom("peg").id
        self._fingers = {m.geom(f"{PREFIX}left_finger").id, m.geom(f"{PREFIX}right_finger").id}
        self._weld = m.equality("grasp").id

    def _add_peg(self, arena) -> None:
        body = arena.worldbody.add("body", name="peg", pos=[0.5, 0.2, TABLE_Z + PEG_LENGTH / 2])
        body.add("freejoint", name="peg")
        body.add("geom", name="peg", type="cylinder", size=[PEG_RADIUS, PEG_LENGTH / 2], rgba=[0.2, 0.6, 0.9, 1],
                 mass=0.05, **{**CONTACT, "friction": [1.0, 0.005, 0.0001]}, **WORLD_COLLISION)
        body.add("site", name="peg_tip", pos=[0, 0, -PEG_LENGTH / 2], size=[0.003], rgba=[1, 0, 0, 0], group=4)
        # the grasp: hand -> peg, off until a grasp switches it on with the relative pose of that moment
        arena.root.equality.add("weld", name="grasp", body1=arena.root.find("body", f"{PREFIX}hand"), body2=body,
                                active="false", solref=[0.004, 1.0], solimp=[0.99, 0.999, 0.0005])

    def _randomise(self, rng) -> None:
        super()._randomise(rng)  # the hole
        xy = rng.uniform(PEG_BOX[:, 0], PEG_BOX[:, 1])
        self.data.qpos[self._peg_q:self._peg_q + 7] = [*xy, TABLE_Z + PEG_LENGTH / 2, 1.0, 0.0, 0.0, 0.0]

    @property
    def peg_top(self) -> np.ndarray:
        """Centre of the peg's top face (m, world)."""
        axis = self.data.xmat[self._peg_body].reshape(3, 3)[:, 2]
        return self.data.xpos[self._peg_body] + axis * PEG_LENGTH / 2

    @property
    def grasped(self) -> bool:
        return bool(self.data.eq_active[self._weld])

    def _fingers_touch_peg(self) -> bool:
        touching = set()
        for c in self.data.contact[:self.data.ncon]:
            pair = {int(c.geom1), int(c.geom2)}
            if self._peg_geom in pair:
                touching |= pair & self._fingers
        return touching == self._fingers

    def _update_grasp(self) -> None:
        """Weld the peg to the hand at their current relative pose on a closed gripper with both fingers on it;
        release it when the gripper is commanded open."""
        d = self.data
        closed = d.ctrl[7] < CLOSED_CTRL
        if self.grasped and not closed:
            d.eq_active[self._weld] = 0
        elif not self.grasped and closed and self._fingers_touch_peg():
            h, p = self._hand_body, self._peg_body
            rot_h = d.xmat[h].reshape(3, 3)
            rel_quat, inv_h = np.empty(4), np.empty(4)
            mujoco.mju_negQuat(inv_h, d.xquat[h])
            mujoco.mju_mulQuat(rel_quat, inv_h, d.xquat[p])
            # weld data: anchor on body2 (its origin), body2's position and orientation in body1's frame
            self.model.eq_data[self._weld, :10] = [0.0, 0.0, 0.0, *(rot_h.T @ (d.xpos[p] - d.xpos[h])), *rel_quat]
            d.eq_active[self._weld] = 1

    def physics_step(self, nstep: int | None = None) -> None:
        self._update_grasp()  # here, not in apply_action: the ROS 2 robot node steps physics without it
        super().physics_step(nstep)

    def _task_features(self) -> np.ndarray:
        return np.concatenate([super()._task_features(), self.peg_tip - self.tcp_pos])

    def make_expert(self, noise: float = 0.0, seed: int = 0) -> "PegPickInsertExpert":
        return PegPickInsertExpert(self, noise, seed)


class PegPickInsertExpert(PegInsertExpert):
    """Above the peg -> descend -> close -> lift -> then PegInsertExpert's align and insert, from the tip's
    measured offset in the hand. Noise misplaces the grasp (along and across the fingers, and too high or low:
    the tip's offset changes, which the insertion reads) and misaims the insertion as in sim/peg_insert; it
    never opens the gripper by accident (a dropped peg is not the failure this task is about)."""

    slip_p = 0.0
    carry_clearance = 0.03  # tip height above the block's top face while carrying (m)
    grasp_scale = 0.004  # grasp xy offset standard deviation per axis at noise 1 (m)

    def _episode_start(self) -> None:
        super()._episode_start()
        self.phase = "approach"
        self.wait = 0
        self.grasp_offset = self.aim_error(self.grasp_scale)
        self.grasp_offset[2] = self.rng.normal(0.0, 0.005 * self.noise)

    def _grasp_point(self) -> np.ndarray:
        return self.env.peg_top - [0.0, 0.0, GRASP_BELOW_TOP] + self.grasp_offset

    def _clean_action(self) -> np.ndarray:
        env = self.env
        if self.phase in ("approach", "descend", "close"):
            g = self._grasp_point()
            if self.phase == "approach":
                above = g + [0.0, 0.0, 0.06]
                if self.at(above, 0.01):
                    self.phase = "descend"
                return self.move_to(above, -1.0)
            if self.phase == "descend":
                if self.at(g, 0.004):
                    self.phase, self.wait = "close", 0
                return self.move_to(g, -1.0)
            self.wait += 1
            if self.wait >= 4 and env.grasped:
                self.phase = "lift"
            return self.move_to(g, 1.0)
        if self.phase == "lift":
            carry_z = env.hole_top[2] + self.carry_clearance - (env.peg_tip - env.tcp_pos)[2]
            target = env.tcp_pos.copy()
            target[2] = carry_z
            if abs(carry_z - env.tcp_pos[2]) < 0.005:
                self.phase = "align"
            return self.move_to(target, 1.0)
        a = super()._clean_action()  # align, insert
        a[3] = 1.0
        return a
