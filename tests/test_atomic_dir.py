"""Checkpoint folders are swapped in whole: every crash point leaves one complete, consistent copy."""
import numpy as np
import pytest

from robotlearn.atomic_dir import atomic_dir, readable_dir, recover_dir
from robotlearn.rl.residual import ResidualConfig, ResidualLearner


def write(d, tag):
    (d / "a.txt").write_text(tag)
    (d / "b.txt").write_text(tag)


def tags(d):
    return {(d / "a.txt").read_text(), (d / "b.txt").read_text()}


def test_swap_replaces_all_files_and_leaves_nothing_beside(tmp_path):
    p = tmp_path / "ckpt"
    for tag in ("v1", "v2"):
        with atomic_dir(p) as d:
            write(d, tag)
        assert tags(p) == {tag}
    assert sorted(x.name for x in tmp_path.iterdir()) == ["ckpt"]


def test_crash_while_writing_keeps_the_previous_copy(tmp_path):
    p = tmp_path / "ckpt"
    with atomic_dir(p) as d:
        write(d, "v1")
    with pytest.raises(RuntimeError):
        with atomic_dir(p) as d:
            (d / "a.txt").write_text("v2")  # half the set written, then the crash
            raise RuntimeError("killed")
    assert readable_dir(p) == p and tags(p) == {"v1"}
    with atomic_dir(p) as d:  # the next save clears the torn temp folder
        write(d, "v3")
    assert tags(p) == {"v3"} and not (tmp_path / "ckpt.tmp").exists()


@pytest.mark.parametrize("stage", ["between_renames", "before_cleanup"])
def test_crash_during_the_swap_recovers_the_new_copy(tmp_path, stage):
    p, tmp, old = tmp_path / "ckpt", tmp_path / "ckpt.tmp", tmp_path / "ckpt.old"
    p.mkdir()
    write(p, "v1")
    tmp.mkdir()
    write(tmp, "v2")
    p.rename(old)  # the swap's first rename
    if stage == "before_cleanup":
        tmp.rename(p)  # second rename done, old not yet deleted
    assert tags(readable_dir(p)) == {"v2"}  # readers find the complete new copy without touching anything
    assert old.exists()
    recover_dir(p)
    assert tags(p) == {"v2"} and not old.exists() and not tmp.exists()


def test_learner_checkpoint_mid_swap_loads_the_new_state(tmp_path):
    cfg = ResidualConfig(num_critics=2, hidden_dim=16, critic_warmup_updates=0)
    learner = ResidualLearner(4, 2, cfg, device="cpu")
    learner.num_updates = 1
    learner.save(tmp_path / "ckpt")
    learner.num_updates = 2
    learner.save(tmp_path / "ckpt.tmp.src")
    (tmp_path / "ckpt").rename(tmp_path / "ckpt.old")  # crash between the renames of the second save
    (tmp_path / "ckpt.tmp.src").rename(tmp_path / "ckpt.tmp")
    restored = ResidualLearner.load(tmp_path / "ckpt", device="cpu")
    assert restored.num_updates == 2
    for k, v in learner.actor_weights().items():
        np.testing.assert_array_equal(restored.actor_weights()[k], v)
