"""Tests for actx.experiments.diagnosis on tiny hand-made tensors: the conjugate difference (ActX Eq. 2-4),
voxel categories, and the gradient of each loss part on phi and psi."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import actx.config
from actx.data import ClipSet, Record
from actx.experiments import diagnosis as G
from actx.features import FeatureStore
from actx.models.actx import ActXHead, actx_objective

GAMMA = 10.0
PARAMS = {"gamma": GAMMA, "xi": 0.5, "sim_weight": 1.0, "diff_weight": 1.0}


def _voxels(*directions, d: int = 6, noise: float = 0.01, seed: int = 0) -> torch.Tensor:
    """(1, N, d) non-negative voxel rows, each a unit basis vector (by index) plus a little positive noise."""
    g = torch.Generator().manual_seed(seed)
    rows = torch.zeros(len(directions), d)
    rows[torch.arange(len(directions)), torch.tensor(directions)] = 1.0
    return (rows + noise * torch.rand(rows.shape, generator=g))[None]


def test_the_difference_of_a_sample_against_itself_is_zero_everywhere():
    x = torch.rand(2, 12, 5, generator=torch.Generator().manual_seed(1))  # (B, N, D) non-negative
    d = G.conjugate_difference(x, x, GAMMA)
    assert d.shape == (2, 12)
    torch.testing.assert_close(d, torch.zeros_like(d), atol=1e-5, rtol=0)
    f = torch.rand(5, 3, 2, 3)  # (D, T, h, w)
    dm = G.difference_map(f, f, GAMMA)
    assert dm.shape == (3, 2, 3) and float(dm.abs().max()) < 1e-5
    # no difference at all: the normalised map has no preference (uniform, the chance level)
    np.testing.assert_allclose(G.normalise_map(np.zeros((3, 2, 3))), 1 / 18)


def test_a_voxel_absent_from_the_conjugate_gets_the_largest_difference():
    x = _voxels(0, 1, 0, 2, 1, 0)  # context directions 0 and 1, and one voxel of direction 2 (the action)
    z = _voxels(0, 1, 1, 0, seed=1)  # the conjugate: the same context, no action
    d = G.conjugate_difference(x, z, GAMMA)[0]  # (N,)
    assert int(d.argmax()) == 3
    assert float(d[3]) > 0.5 and float(d[[0, 1, 2, 4, 5]].max()) < 0.1
    assert (d >= 0).all()


def test_padded_voxels_get_no_difference():
    x, z = _voxels(0, 2, 1), _voxels(0, 1)
    mask = torch.tensor([[True, True, False]])
    assert float(G.conjugate_difference(x, z, GAMMA, x_mask=mask)[0, 2]) == 0.0


def test_normalised_maps_sum_to_one():
    d = np.random.default_rng(0).random((2, 3, 4))
    m = G.normalise_map(d)
    assert np.isclose(m.sum(), 1.0) and np.allclose(m / d, m.flat[0] / d.flat[0])


def test_longest_conjugate_per_sample():
    pairs = pd.DataFrame({"sample_id": ["a", "a", "b", "b"], "conjugate_id": ["a", "a", "b", "b"],
                          "side": ["pre", "post", "pre", "post"], "conjugate_start": [0, 40, 0, 16],
                          "conjugate_end": [8, 64, 16, 32]})
    best = G.longest_conjugates(pairs)
    assert best["sample_id"].tolist() == ["a", "b"]
    assert best["side"].tolist() == ["post", "pre"]  # a: 24 > 8 frames; b: a tie goes to the first row


def test_boxes_cover_the_pixels_whose_centres_they_hold():
    boxes = np.array([[[1.0, 0.0, 3.0, 2.0], [np.nan] * 4]])  # (T=1, P=2, 4): one box, one person off-frame
    m = G.boxes_mask(boxes, (3, 5))
    expected = np.zeros((1, 3, 5), bool)
    expected[0, 0:2, 1:3] = True  # columns 1, 2 (centres 1.5, 2.5) and rows 0, 1
    np.testing.assert_array_equal(m, expected)


def test_voxel_categories_follow_the_stated_order():
    actor = np.zeros((1, 3, 4))
    bystander = np.zeros((1, 3, 4))
    actor[0, 0, 0] = 0.9  # a border cell the actor covers: actor
    actor[0, 1, 1] = 0.4  # not enough: an inner background cell
    bystander[0, 1, 2] = 0.6
    bystander[0, 0, 0] = 1.0  # the actor comes first
    cats = G.voxel_categories(actor, bystander)
    name = lambda i, j: G.CATEGORIES[cats[0, i, j]]  # noqa: E731
    assert (name(0, 0), name(1, 1), name(1, 2), name(2, 3)) == ("actor", "background", "bystander", "border")
    # a 3 x 4 grid has 2 inner cells: (1, 1) and (1, 2)
    assert (cats == G.CATEGORIES.index("border")).sum() == 9


def test_category_shares_sum_to_one_and_count_the_selection():
    cats = np.array([[[0, 1, 2, 3], [2, 2, 3, 3]]])  # (1, 2, 4)
    every = G.category_shares(cats)
    np.testing.assert_allclose(every, [1 / 8, 1 / 8, 3 / 8, 3 / 8])
    d = np.array([[[9.0, 1, 2, 3], [4, 5, 6, 8]]])
    top = G.top_voxels(d, share=0.25)  # round(0.25 * 8) = 2 voxels: d = 9 and 8
    assert top.sum() == 2 and top[0, 0, 0] and top[0, 1, 3]
    shares = G.category_shares(cats, top)
    np.testing.assert_allclose(shares, [0.5, 0, 0, 0.5])
    assert np.isclose(shares.sum(), 1.0) and np.isclose(every.sum(), 1.0)
    assert G.top_voxels(d, share=0.01).sum() == 1  # at least one voxel


def _batch(b: int = 4, d: int = 6, classes: int = 3, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"f": torch.rand(b, d, 2, 3, 4, generator=g), "mask": torch.ones(b, 2, dtype=torch.bool),
            "cf": torch.rand(b, d, 2, 3, 4, generator=g), "cmask": torch.ones(b, 2, dtype=torch.bool),
            "y": torch.nn.functional.one_hot(torch.arange(b) % classes, classes).float()}


def _head(seed: int = 0) -> ActXHead:
    torch.manual_seed(seed)
    return ActXHead(6, 3)


def test_gradient_shares_separate_the_parts():
    head, batch = _head(), _batch()
    norms = G.gradient_shares(head, G.actx_parts(PARAMS), batch)
    assert list(norms.index) == list(G.ACTX_GROUPS) and list(norms.columns) == ["class", "conjugate"]
    # the losses compare backbone maps: they reach the head only through S and C, i.e. phi and psi
    assert norms.loc["phi", "conjugate"] > 0 and norms.loc["psi", "conjugate"] > 0
    assert norms.loc["classifier", "conjugate"] == 0 and norms.loc["theta", "conjugate"] == 0
    assert (norms["class"] > 0).all()
    shares = G.norm_shares(norms)
    np.testing.assert_allclose(shares.sum(1), 1.0)
    assert shares.loc["classifier", "class"] == 1.0
    # zero conjugate weights: zero conjugate share, the classification gradient unchanged
    none = G.gradient_shares(_head(), G.actx_parts({**PARAMS, "sim_weight": 0.0, "diff_weight": 0.0}), batch)
    assert (none["conjugate"] == 0).all()
    np.testing.assert_allclose(none["class"], norms["class"], rtol=1e-6)


def test_gradient_parts_add_up_to_the_objective_and_leave_grads_alone():
    head, batch = _head(), _batch(seed=1)
    parts = G.actx_parts({**PARAMS, "sim_weight": 0.7, "diff_weight": 1.3})
    out = parts(head, batch)
    total = actx_objective(head, batch, gamma=GAMMA, xi=0.5, sim_weight=0.7, diff_weight=1.3,
                           multi_label=False)
    torch.testing.assert_close(out["class"] + out["conjugate"], total["loss"])
    g_parts = [torch.autograd.grad(v, head.phi.weight, retain_graph=True)[0] for v in out.values()]
    g_total = torch.autograd.grad(total["loss"], head.phi.weight)[0]
    torch.testing.assert_close(g_parts[0] + g_parts[1], g_total)
    G.gradient_shares(head, parts, batch)
    assert all(p.grad is None for p in head.parameters())


def test_samples_without_a_conjugate_train_as_in_a_run():
    batch = _batch(seed=2)
    batch["cmask"][1] = False  # sample 1 has no conjugate: its conjugate losses count 0 (optional_conjugates)
    out = G.actx_parts(PARAMS)(_head(), batch)
    from actx.experiments import get_method

    total = get_method("actx").make_objective(PARAMS)(_head(), batch)
    torch.testing.assert_close(out["class"] + out["conjugate"], total["loss"])
    norms = G.gradient_shares(_head(), G.actx_parts(PARAMS), batch)
    assert (norms.loc[["phi", "psi"], "conjugate"] > 0).all()


def test_gradient_shares_name_an_unknown_group():
    with pytest.raises(ValueError, match="rho"):
        G.gradient_shares(_head(), G.actx_parts(PARAMS), _batch(), groups={"rho": ("rho.",)})


# --- on a tiny store: the maps of the clips, where their voxels sit ----------------------------------------
FRAMES, MASK_H, MASK_W = 32, 64, 96  # the ci profile's frames: a 2 x 3 map


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Two test threads (action frames [8, 24)), 4-step maps of 6 channels on the ci grid; the actor fills the
    left third of the frame, a bystander box the right third."""
    root = tmp_path_factory.mktemp("diag")
    rng = np.random.default_rng(0)
    store = FeatureStore(root / "store")
    store.begin("rgb", {"fake": "rgb"})
    recs = []
    for j in range(2):
        rid = f"test_a_{j}"
        mask = np.zeros((FRAMES, MASK_H, MASK_W), bool)
        mask[:, :, :32] = True
        boxes = np.full((FRAMES, 2, 4), np.nan, np.float32)
        boxes[:, 0] = (0, 0, 32, 64)
        boxes[:, 1] = (64, 0, 96, 64)
        ann = root / f"{rid}.npz"
        np.savez(ann, actor_mask_packed=np.packbits(mask, axis=-1), mask_shape=np.array(mask.shape, np.int32),
                 boxes=boxes, is_actor=np.array([True, False]))
        recs.append(Record(video=str(root / f"{rid}.mp4"), labels=("a",), id=rid, split="test", thread=rid,
                           extra={"action_frames": (8, 24), "frames": FRAMES, "annotation": str(ann)}))
        f = np.abs(rng.normal(size=(6, 4, 2, 3))).astype(np.float16)
        f[5, 1:3, :, 0] += 5.0  # the action: a new direction in the actor's column during the action steps
        store.put(rid, "rgb", f, frames=FRAMES)
    store.consolidate()
    from actx.conjugates import thread_conjugates

    records = ClipSet(recs, ("a",), "fake", root, "test")
    return {"records": records, "store": FeatureStore(root / "store"), "pairs": thread_conjugates(records)}


def test_difference_maps_point_at_the_new_direction(tiny):
    cfg = actx.config.make_config("ci", tiny["store"].root.parent / "data", "cpu")
    diff = G.difference_maps(tiny["store"], tiny["records"], tiny["pairs"], GAMMA)
    assert diff["ids"] == ["test_a_0", "test_a_1"]
    assert diff["maps"].shape == (2, 2, 2, 3) and diff["mask"].all()  # window [8, 24): steps 1, 2
    np.testing.assert_allclose(diff["maps"].sum((1, 2, 3)), 1.0)
    assert (diff["d"][:, :, :, 0].min((1, 2)) > diff["d"][:, :, :, 1:].max((1, 2, 3))).all()
    score = G.map_grounding(cfg, diff, tiny["records"])
    assert score["action_in_actor"] > score["actor_fraction"] and score["pointing"] == 1.0
    table = G.where_different(cfg, diff, tiny["records"], share=1 / 6)  # the top voxel of each step's 6
    assert list(table.index) == list(G.CATEGORIES)
    np.testing.assert_allclose(table.sum(), 1.0)
    assert table.loc["actor", "top"] == 1.0 and table.loc["bystander", "all"] > 0


def test_the_diagnostic_config_lives_apart_and_leaves_the_benchmark_alone(tmp_path):
    cfg = actx.config.make_config("default", tmp_path, "cpu")
    diag = G.diagnostic_config(cfg)
    assert diag.data_root == tmp_path / G.DIAGNOSTIC_ROOT / "still_scene" and diag.cache != cfg.cache
    assert tuple(diag.data["bystanders"]) == (0, 0) and diag.data["camera_motion"] == 0.0
    assert diag.data["train_per_class"] == 6 and tuple(diag.dataset["eval_splits"]) == ("test",)
    assert cfg.data == actx.config.make_config("default", tmp_path, "cpu").data  # the main knobs untouched
    small = G.diagnostic_config(actx.config.make_config("ci", tmp_path, "cpu"))
    assert small.data["train_per_class"] == 3  # capped by the profile's own size


def test_gradient_history_measures_every_epoch_and_is_kept(tiny, tmp_path, monkeypatch):
    cfg = actx.config.make_config("ci", tmp_path, "cpu", train__epochs=2, train__batch_size=2,
                                  train__milestones=(), train__crop=None)
    train = ClipSet(list(tiny["records"]), ("a", "b"), "fake", tmp_path, "train")
    history = G.gradient_history(cfg, {"train": train}, tiny["store"], tiny["pairs"])
    assert sorted(history.epoch.unique()) == [0, 1, 2]
    assert len(history) == 3 * len(G.ACTX_GROUPS) * 2  # epochs 0-2, four groups, two parts
    assert (history.query("group == 'classifier' and part == 'conjugate'")["norm"] == 0).all()

    def no_training(*args, **kwargs):
        raise AssertionError("a kept gradient history was computed again")

    monkeypatch.setattr(G, "_measure_training", no_training)
    pd.testing.assert_frame_equal(G.gradient_history(cfg, {"train": train}, tiny["store"], tiny["pairs"]),
                                  history, check_dtype=False)
