"""benchmarks/rl_report.py: the tables of a residual RL benchmark rebuilt from its printed log."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from rl_report import results_from_log  # noqa: E402

LOG = """profile=cpu device=cpu obs=pixels seeds=3
  sim/lift headroom (base + oracle residual clip(expert - base, +-scale)): scale 0.1: 90%, scale 0.2: 98%, scale 0.3: 98%, scale 0.5: 100%
    sim/lift scratch seed 0 (env reward, {'obs': 'proprio'}): step      0 success 0% (0s training wall)
    sim/lift residual seed 0 (env reward, {'obs': 'proprio'}): step      0 success 32% (0s training wall)
    sim/lift residual seed 0 (env reward, {'obs': 'proprio'}): step   2000 success 96% (84s training wall)
    sim/lift scratch seed 0 (env reward, {'obs': 'proprio'}): step   2000 success 2% (77s training wall)
    sim/lift residual seed 0 (env reward, {'obs': 'proprio'}): step   4000 success 98% (186s training wall)
    sim/lift residual seed 1 (env reward, {'obs': 'proprio'}): step      0 success 38% (0s training wall)
    sim/lift scratch seed 1 (env reward, {'obs': 'proprio'}): step      0 success 0% (0s training wall)
  sim/lift frozen BC base seed 1: 40%
    sim/lift residual seed 2 (env reward, {'obs': 'proprio'}): step      0 success 30% (0s training wall)
"""


def test_results_from_log():
    header, results, room = results_from_log(LOG)
    assert header.startswith("profile=cpu") and room == {"sim/lift": {0.1: 0.9, 0.2: 0.98, 0.3: 0.98, 0.5: 1.0}}
    r = results["sim/lift"]
    assert len(r["residual"]) == 3 and len(r["scratch"]) == 2  # seed 2 has no scratch run yet
    assert r["base"] == [0.32, 0.40, 0.30]  # seeds 0, 2: the zero-initialised residual's step 0; seed 1: its base line
    res0 = r["residual"][0]
    assert res0["curve"] == [(0, 0.32), (2000, 0.96), (4000, 0.98)] and res0["train_wall_s"] == 186
    assert res0["steps_to_target"] == 2000 and res0["wall_to_target_s"] == 84
    assert r["scratch"][0]["steps_to_target"] is None and r["scratch"][0]["curve"][-1] == (2000, 0.02)
    assert results_from_log("") == ("", {}, {})


def test_a_tasks_own_recipe_applies_under_the_command_lines_sets():
    from residual_rl import TASK_RL, task_recipes

    assert TASK_RL["sim/peg_pick_insert"]
    res, scr = task_recipes("cpu", "sim/peg_pick_insert")
    assert res.state_norm == scr.state_norm == "robust"
    assert res.base_only_dims == (3,) and scr.base_only_dims == ()  # a zero base never closes its gripper
    assert res.residual_scale == 0.3 and scr.residual_scale == 1.0  # scratch keeps configs/rl/rlpd.yaml's keys
    assert res.actor_lr == 3e-5 and scr.actor_lr == 1e-4
    res, scr = task_recipes("cpu", "sim/peg_pick_insert", ["state_norm=std"], ["base_only_dims=[]"])
    assert res.state_norm == scr.state_norm == "std" and res.base_only_dims == ()
    res, _ = task_recipes("cpu", "sim/lift")
    assert res.state_norm == "std" and res.base_only_dims == ()
