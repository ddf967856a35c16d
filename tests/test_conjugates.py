import numpy as np
import pandas as pd
import pytest

from actx.conjugates import (ConjugateInvariantError, imperfect_conjugates, load_pairs, nearest_neighbours,
                             neighbour_conjugates, save_pairs, still_conjugate, thread_conjugates, verify_pairs)
from actx.data import Record


def thread(id, split="train", frames=64, action=(20, 44), label="wave"):
    return Record(video=f"/v/{id}.mp4", labels=(label,), id=id, split=split, thread=id,
                  extra={"frames": frames, "action_frames": action})


def negative(id, split="train", frames=64):
    return Record(video=f"/v/{id}.mp4", labels=(), id=id, split=split, thread=id, extra={"frames": frames})


def by_id(*records):
    return {r.id: r for r in records}


def test_thread_conjugates_hold_no_action_frame_and_align_to_the_stride():
    records = [thread("a", action=(20, 44)), thread("b", action=(3, 60)), thread("c", frames=70, action=(8, 40))]
    pairs = thread_conjugates(records)
    a = pairs[pairs.sample_id == "a"].set_index("side")
    assert (a.loc["pre", "conjugate_start"], a.loc["pre", "conjugate_end"]) == (0, 16)
    assert (a.loc["post", "conjugate_start"], a.loc["post", "conjugate_end"]) == (48, 64)
    assert (a.loc["pre", "sample_start"], a.loc["pre", "sample_end"]) == (16, 48)
    # b: 3 frames before the action are less than one feature step; 4 after as well -> no conjugate at all
    assert "b" not in set(pairs.sample_id)
    # c: 70 frames, only 64 fill whole steps; the post window stops there
    c = pairs[pairs.sample_id == "c"].set_index("side")
    assert c.loc["post", "conjugate_end"] == 64 and c.loc["pre", "conjugate_end"] == 8
    assert (pairs.action_overlap == 0).all()
    assert ((pairs[["sample_start", "sample_end", "conjugate_start", "conjugate_end"]] % 8) == 0).all().all()
    verify_pairs(pairs, by_id(*records))


def test_imperfect_conjugates_are_adjacent_and_measure_their_action_content():
    records = [thread(f"t{i}", action=(16, 56)) for i in range(20)]
    pairs = imperfect_conjugates(records, crop_frames=16, crops=2, seed=1)
    assert len(pairs) > 0 and set(pairs.kind) == {"imperfect"}
    pre, post = pairs[pairs.side == "pre"], pairs[pairs.side == "post"]
    assert (pre.conjugate_end == pre.sample_start).all() and (post.conjugate_start == post.sample_end).all()
    # ground truth: the overlap column is the fraction of conjugate frames inside [16, 56)
    for r in pairs.itertuples():
        inside = len(set(range(r.conjugate_start, r.conjugate_end)) & set(range(16, 56)))
        assert r.action_overlap == pytest.approx(inside / (r.conjugate_end - r.conjugate_start))
    assert pairs.action_overlap.max() > 0  # imperfect: some conjugates do contain action
    assert pairs.equals(imperfect_conjugates(records, crop_frames=16, crops=2, seed=1))  # seeded
    verify_pairs(pairs, by_id(*records))
    with pytest.raises(ValueError, match="multiple of the stride"):
        imperfect_conjugates(records, crop_frames=12)


def test_nearest_neighbours_matches_brute_force_in_small_chunks():
    rng = np.random.default_rng(0)
    q, p = rng.normal(size=(37, 16)), rng.normal(size=(101, 16))
    idx, sim = nearest_neighbours(q, p, k=3, query_chunk=5, pool_chunk=7)
    cos = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (p / np.linalg.norm(p, axis=1, keepdims=True)).T
    expected = np.argsort(-cos, axis=1, kind="stable")[:, :3]
    np.testing.assert_array_equal(idx, expected)
    np.testing.assert_allclose(sim, np.take_along_axis(cos, expected, 1), rtol=1e-5, atol=1e-6)


def test_nearest_neighbours_breaks_ties_by_lower_index():
    pool = np.ones((6, 4))
    idx, _ = nearest_neighbours(np.ones((2, 4)), pool, k=3, pool_chunk=4)
    np.testing.assert_array_equal(idx, [[0, 1, 2], [0, 1, 2]])


def test_neighbour_conjugates_never_cross_splits():
    pos = [thread("p0"), thread("p1", split="test")]
    neg = [negative("n0"), negative("n1"), negative("n2", split="test"), negative("n3")]
    emb = np.eye(4)
    pairs = neighbour_conjugates(pos, neg, emb[[0, 2]], emb[[0, 1, 2, 3]], k=2)
    assert (pairs.sample_split == pairs.conjugate_split).all()
    p0 = pairs[pairs.sample_id == "p0"]
    assert list(p0.conjugate_id) == ["n0", "n1"] and list(p0.side) == ["nn1", "nn2"]
    assert list(pairs[pairs.sample_id == "p1"].conjugate_id) == ["n2"]  # only one test negative
    verify_pairs(pairs, by_id(*pos, *neg))


def test_verify_pairs_catches_each_invariant():
    a, b = thread("a"), thread("b", split="test")
    good = thread_conjugates([a])
    verify_pairs(good, by_id(a, b))
    leaky = good.copy()
    leaky.loc[0, "conjugate_end"] = 24  # pre window now runs into the action (starts at frame 20)
    with pytest.raises(ConjugateInvariantError, match="contains action frames"):
        verify_pairs(leaky, by_id(a, b))
    other_thread = good.copy()
    other_thread.loc[:, "conjugate_id"] = "c"
    c = thread("c")
    with pytest.raises(ConjugateInvariantError, match="thread conjugate from thread"):
        verify_pairs(other_thread, by_id(a, c))
    crossing = good.copy()
    crossing.loc[:, ["conjugate_id", "conjugate_split"]] = ["b", "test"]
    with pytest.raises(ConjugateInvariantError, match="split mismatch"):
        verify_pairs(crossing, by_id(a, b))


def test_pairs_round_trip(tmp_path):
    pairs = pd.concat([thread_conjugates([thread("a")]),
                       neighbour_conjugates([thread("p")], [negative("n")], np.ones((1, 3)), np.ones((1, 3)), k=1)])
    path = save_pairs(pairs, tmp_path / "x" / "pairs.csv")
    back = load_pairs(path)
    pd.testing.assert_frame_equal(back.reset_index(drop=True), pairs.reset_index(drop=True))
    with pytest.raises(FileNotFoundError, match="notebook 03"):
        load_pairs(tmp_path / "missing.csv")


def test_still_conjugate_removes_the_actor_and_keeps_the_rest():
    rng = np.random.default_rng(0)
    img = np.clip(rng.normal(120, 10, size=(64, 96, 3)), 0, 255).astype(np.uint8)
    img[20:40, 30:50] = (250, 10, 10)  # a red "actor"
    out = still_conjugate(img, [(30, 20, 50, 40)])
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.abs(out[20:40, 30:50].astype(int) - 120).mean() < 15  # filled with background-like values
    far = np.ones(img.shape[:2], bool)
    far[10:50, 20:60] = False
    assert np.array_equal(out[far], img[far])  # pixels away from the hole are untouched
    with pytest.raises(ValueError, match="nothing to remove"):
        still_conjugate(img, [(200, 200, 210, 210)])


class FakeStore:
    """Stands in for actx.features.FeatureStore: a root folder and (D, T, h, w) maps by id."""

    def __init__(self, root, maps):
        self.root, self.maps, self.loads = root, maps, 0

    def load(self, clip_id, stream):
        self.loads += 1
        return self.maps[clip_id]


def test_conjugate_tables_are_mined_once_checked_and_reloaded(tmp_path, monkeypatch):
    import cv2

    from actx.conjugates import mine

    still_png = tmp_path / "still.png"
    img = np.full((48, 64, 3), 100, np.uint8)
    img[10:30, 10:25] = 250
    cv2.imwrite(str(still_png), img)
    still = Record(video=str(still_png), labels=("wave",), id="s0", split="stills",
                   extra={"frames": 1, "persons": [{"box": (10, 10, 25, 30), "actions": ("wave",)},
                                                   {"box": (40, 10, 55, 30), "actions": ()}]})
    records = by_id(thread("a"), thread("b", action=(16, 40)), negative("n0"), negative("n1"), still)
    rng = np.random.default_rng(0)
    store = FakeStore(tmp_path / "store", {k: rng.random((4, 8, 2, 3)).astype(np.float16) for k in records})
    recipe = dict(stride=8, crop_frames=16, crops=2, k=2, stream="rgb", seed=0, data="x")
    tables = mine.conjugate_tables(records, store, tmp_path / "store" / "conjugates", recipe, progress=False)
    assert set(tables) == {"thread", "imperfect", "neighbour", "still"}
    assert set(tables["neighbour"].conjugate_id) <= {"n0", "n1"} and len(tables["neighbour"]) == 4
    still_row = tables["still"].iloc[0]
    conj = cv2.imread(still_row.conjugate_path)
    assert conj.shape == img.shape and np.abs(conj[12:28, 12:23].astype(int) - 100).mean() < 20
    assert (tmp_path / "store" / "conjugates" / "recipe.json").is_file()

    monkeypatch.setattr(mine, "_mine", lambda *a, **k: pytest.fail("a complete set of tables was mined again"))
    again = mine.conjugate_tables(records, store, tmp_path / "store" / "conjugates", recipe, progress=False)
    pd.testing.assert_frame_equal(again["thread"], tables["thread"])
    with pytest.raises(pytest.fail.Exception):
        mine.conjugate_tables(records, store, tmp_path / "store" / "conjugates", dict(recipe, k=1), progress=False)


def test_still_pair_without_its_image_breaks_the_invariant():
    from actx.conjugates import make_pairs

    row = dict(sample_id="s0", sample_split="stills", label="wave", sample_start=0, sample_end=1,
               conjugate_id="s0", conjugate_split="stills", conjugate_start=0, conjugate_end=1, kind="still",
               side="", action_overlap=0.0)
    still = Record(video="/x.png", labels=("wave",), id="s0", split="stills", extra={"frames": 1})
    with pytest.raises(ConjugateInvariantError, match="without the path"):
        verify_pairs(make_pairs([row]), {"s0": still})
