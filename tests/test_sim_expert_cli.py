"""`robotlearn expert` prints the success table and writes it as JSON."""
from __future__ import annotations

import json

import pytest

from robotlearn.cli.expert import main, split_env_arg


def test_expert_cli_table_and_json(tmp_path, capsys):
    out = tmp_path / "experts.json"
    assert main(["env=sim/reach", "episodes=3", "noise=[0.0,1.0]", "progress=false", f"out={out}"]) == 0
    text = capsys.readouterr().out
    assert "sim/reach" in text and "noise=0.0" in text and "noise=1.0" in text
    res = json.loads(out.read_text())
    assert res["sim/reach"]["0.0"]["success_rate"] == 1.0
    assert res["sim/reach"]["0.0"]["episodes"] == 3


def test_env_all_expands_to_sim_tasks():
    names, rest = split_env_arg(["env=all", "episodes=2"])
    assert {"sim/reach", "sim/lift", "sim/pick_place"} <= set(names) and rest == ["episodes=2"]
    assert all(n.startswith("sim/") for n in names)


def test_env_without_expert_is_a_clear_error(capsys):
    with pytest.raises(SystemExit):
        main(["env=gym/Pendulum-v1", "episodes=1", "progress=false"])
    assert "no scripted expert" in capsys.readouterr().err
