"""Sequence windows and n-step transitions against hand-computed indices and returns."""
import numpy as np
import pytest
import torch

from robotlearn.data import EpisodeDataset, EpisodeWriter, MixedSampler, SequenceDataset, TransitionBuffer


@pytest.fixture
def two_episodes(tmp_path):
    """Episodes of 3 and 5 steps; state = global row index, action = -row, a tiny camera = row."""
    path = tmp_path / "d.zarr"
    with EpisodeWriter(path) as w:
        for lo, hi in [(0, 3), (3, 8)]:
            rows = np.arange(lo, hi)
            w.add_episode({"state": rows[:, None].astype(np.float32), "action": -rows[:, None].astype(np.float32),
                           "images/cam": rows.astype(np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)},
                          success=True, source="scripted")
    return EpisodeDataset(path)


# anchor -> (obs rows, action rows, action_is_pad) for n_obs=2, horizon=3; episodes [0,3) and [3,8)
HAND = {
    0: ([0, 0], [0, 1, 2], [0, 0, 0]),
    1: ([0, 1], [1, 2, 2], [0, 0, 1]),
    2: ([1, 2], [2, 2, 2], [0, 1, 1]),
    3: ([3, 3], [3, 4, 5], [0, 0, 0]),
    6: ([5, 6], [6, 7, 7], [0, 0, 1]),
    7: ([6, 7], [7, 7, 7], [0, 1, 1]),
}


@pytest.mark.parametrize("in_memory", [True, False])
def test_sequence_windows_at_episode_edges(two_episodes, in_memory):
    sd = SequenceDataset(two_episodes, n_obs=2, horizon=3, in_memory=in_memory)
    assert len(sd) == 8 and sd.obs_keys == ["images/cam", "state"]
    for anchor, (obs, act, pad) in HAND.items():
        item = sd[anchor]
        assert item["state"].shape == (2, 1) and item["action"].shape == (3, 1)
        assert item["state"][:, 0].tolist() == obs, f"anchor {anchor}"
        assert item["images/cam"][:, 0, 0, 0].tolist() == obs and item["images/cam"].dtype == torch.uint8
        assert item["action"][:, 0].tolist() == [-a for a in act], f"anchor {anchor}"
        assert item["action_is_pad"].tolist() == [bool(p) for p in pad]


def test_sequence_key_subset_episode_subset_and_dataloader(two_episodes):
    sd = SequenceDataset(two_episodes, n_obs=1, horizon=2, obs_keys=["state"], episodes=[1])
    assert len(sd) == 5 and sd[0]["state"].tolist() == [[3.0]] and set(sd[0]) == {"state", "action", "action_is_pad"}
    first = SequenceDataset(two_episodes, keys=["state", "action"], episodes=1, n_obs=1, horizon=1)
    assert len(first) == 3 and first.obs_keys == ["state"] and first[2]["action"].tolist() == [[-2.0]]
    batch = next(iter(torch.utils.data.DataLoader(sd, batch_size=5, shuffle=False)))
    assert batch["state"].shape == (5, 1, 1) and batch["action"].shape == (5, 2, 1)
    assert batch["action"][-1, :, 0].tolist() == [-7.0, -7.0]
    mem = SequenceDataset.from_arrays(two_episodes.load(["state", "action"]), two_episodes.episode_ends, n_obs=2, horizon=3)
    b = mem.get_batch(np.array(list(HAND)))
    assert b["state"][:, :, 0].tolist() == [v[0] for v in HAND.values()]
    with pytest.raises(Exception, match=r"keys \['wrist'\] are not in the dataset"):
        SequenceDataset(two_episodes, obs_keys=["wrist"])


def _episode(rewards, base):
    L = len(rewards)
    return {"state": (base + np.arange(L))[:, None].astype(np.float32), "reward": np.asarray(rewards, np.float32)}


def _table(buf, n=4000):
    """row state -> (next state, reward, discount) over many samples."""
    s = buf.sample(n, np.random.default_rng(0))
    out = {}
    for st, nx, r, d in zip(s["state"][:, 0], s["next/state"][:, 0], s["reward"], s["discount"]):
        out.setdefault(int(st), set()).add((int(nx), round(float(r), 6), round(float(d), 6)))
    return out


def test_nstep_returns_match_hand_computation():
    buf = TransitionBuffer(["state"], n_step=3, gamma=0.5, capacity=100)
    buf.add_episode(_episode([1, 2, 3, 4, 5], 0), terminated=True)
    buf.add_episode(_episode([1, 2, 3, 4, 5], 10), terminated=False)
    assert len(buf) == 5 + 4
    got = _table(buf)
    want = {  # terminated: discount 0 once the window reaches the end (next/state is a placeholder)
        0: (3, 1 + 0.5 * 2 + 0.25 * 3, 0.125), 1: (4, 2 + 1.5 + 1, 0.125),
        2: (4, 3 + 2 + 1.25, 0.0), 3: (4, 4 + 2.5, 0.0), 4: (4, 5, 0.0),
        # truncated: bootstrap from the last recorded row, fewer steps near the end, row 14 never sampled
        10: (13, 2.75, 0.125), 11: (14, 4.5, 0.125), 12: (14, 3 + 2, 0.25), 13: (14, 4, 0.5),
    }
    assert set(got) == set(want)
    for st, (nx, r, d) in want.items():
        if d == 0.0:
            assert {(g[1], g[2]) for g in got[st]} == {(round(r, 6), 0.0)}, st
        else:
            assert got[st] == {(nx, round(r, 6), d)}, st


def test_ring_buffer_invalidates_overwritten_episodes_and_mixed_ratio(tmp_path):
    buf = TransitionBuffer(["state"], n_step=1, gamma=0.9, capacity=12)
    for base in (0, 100, 200):  # the third episode wraps onto slots of the first
        buf.add_episode(_episode([0] * 5, base), terminated=True)
    assert sorted(_table(buf)) == [100, 101, 102, 103, 104, 200, 201, 202, 203, 204]
    demos = TransitionBuffer(n_step=1, capacity=10)  # keys from the first episode
    demos.add_episode(_episode([1] * 5, 1000), terminated=True)
    mix = MixedSampler([(demos, 0.5), (buf, 0.5)])
    s = mix.sample(64, np.random.default_rng(1))
    assert s["state"].shape == (64, 1) and (s["state"][:32] >= 1000).all() and (s["state"][32:] < 1000).all()
    assert MixedSampler([(demos, 1), (buf, 2)]).counts(10).tolist() == [3, 7]
    other = TransitionBuffer(["state", "base_action"], capacity=10)
    other.add_episode({**_episode([0] * 3, 0), "base_action": np.zeros((3, 2))}, terminated=False)
    with pytest.raises(KeyError, match="base_action"):
        MixedSampler([(demos, 0.5), (other, 0.5)]).sample(4, np.random.default_rng(0))
    with pytest.raises(ValueError, match="no sampleable"):
        TransitionBuffer(["state"]).sample(1, np.random.default_rng(0))


def test_transition_buffer_from_dataset_uses_terminated_meta(tmp_path):
    path = tmp_path / "d.zarr"
    with EpisodeWriter(path) as w:
        w.add_episode({**_episode([0, 0, 1], 0), "action": np.zeros((3, 2), np.float32)}, success=True, source="scripted")
        w.add_episode({**_episode([0, 0, 0], 10), "action": np.ones((3, 2), np.float32)}, success=False, source="policy")
    buf = TransitionBuffer.from_dataset(path, keys=["state", "action"], n_step=3, gamma=0.5)
    got = _table(buf)
    assert sorted(got) == [0, 1, 2, 10, 11]  # truncated episode's last row has no next observation
    assert got[0] == {(2, 0.25, 0.0)} and got[10] == {(12, 0.0, 0.25)}
    s = buf.sample(8, np.random.default_rng(0))
    assert set(s) == {"state", "next/state", "action", "next/action", "reward", "discount"}


def _naive_nstep(episodes, n, gamma, slot_episode, slot_t):
    """Reference: per sampled (episode, t), walk the episode step by step."""
    out = []
    for e, t in zip(slot_episode, slot_t):
        arrays, terminated = episodes[e]
        L = len(arrays["reward"])
        horizon = L if terminated else L - 1
        k = min(n, horizon - t)
        ret = sum(gamma**i * arrays["reward"][t + i] for i in range(k))
        end = t + k
        disc = 0.0 if (terminated and end == L) else gamma**k
        nxt = min(end, L - 1)
        out.append((arrays["images/front"][t], arrays["images/front"][nxt], arrays["state"][t],
                    arrays["state"][nxt], ret, disc))
    return out


def test_image_nstep_sampling_matches_a_naive_reference():
    """Frames are stored once per step; next/images is the bootstrap row by index, n-step as the reference."""
    from robotlearn.data import TransitionBuffer

    rng = np.random.default_rng(3)
    episodes = []
    for L, term in ((7, True), (5, False), (9, True), (4, False)):
        episodes.append(({"images/front": rng.integers(0, 255, (L, 6, 6, 3), dtype=np.uint8),
                          "state": rng.normal(size=(L, 2)).astype(np.float32),
                          "reward": rng.normal(size=L).astype(np.float32)}, term))
    buf = TransitionBuffer(["images/front", "state"], n_step=3, gamma=0.9, capacity=40)
    for arrays, term in episodes:
        buf.add_episode(arrays, terminated=term)
    assert buf._store["images/front"].shape == (40, 6, 6, 3)  # one copy per step, no next/ twin stored
    # identify each sample's (episode, t) by its state row, then compare every field with the reference
    index = {arrays["state"][t].tobytes(): (e, t) for e, (arrays, _) in enumerate(episodes)
             for t in range(len(arrays["reward"]))}
    batch = buf.sample(256, rng)
    where = [index[s.tobytes()] for s in batch["state"]]
    ref = _naive_nstep(episodes, 3, 0.9, [e for e, _ in where], [t for _, t in where])
    for i, (img, nimg, s, ns, ret, disc) in enumerate(ref):
        np.testing.assert_array_equal(batch["images/front"][i], img)
        np.testing.assert_array_equal(batch["next/images/front"][i], nimg)
        np.testing.assert_array_equal(batch["next/state"][i], ns)
        assert batch["reward"][i] == pytest.approx(ret, rel=1e-5, abs=1e-6)
        assert batch["discount"][i] == pytest.approx(disc, rel=1e-6)
    sampled_t = {w for w in where}
    assert (1, 4) not in sampled_t and (3, 3) not in sampled_t  # a truncated episode's last row has no next
    assert len(sampled_t) == 7 + 4 + 9 + 3  # every other transition was drawn at least once in 256 samples
