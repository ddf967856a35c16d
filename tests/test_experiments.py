"""Tests for actx.experiments on a tiny fake benchmark built in tmp_path (records, actor masks, a feature
store with both streams): no rendering, no extraction. Each run trains a few steps on 8-channel maps."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

import actx.config
from actx.features.geometry import backbone_geometry
import actx.experiments as E
from actx.conjugates import thread_conjugates
from actx.data import ClipSet, Record
from actx.experiments import runner
from actx.features import FeatureStore
from actx.models import ActXHead, classification_objective
from actx.train import collate_maps

CLASSES = ("a", "b", "c")
D, STEPS, H, W = 8, 4, 2, 3  # channels, time steps (32 frames at stride 8), map grid
FRAMES, MASK_H, MASK_W = 32, 64, 96  # the ci profile's frame size: stride 32 gives the 2 x 3 grid
SPLITS = {"train": 4, "test": 2, "test_shifted": 2}  # threads per class


def _record(root, split: str, c: int, j: int, rng) -> Record:
    """A thread of class c; the action spans frames [8, 24) except every 4th training thread, whose action
    fills the clip (no pre/post window: no conjugate). Its actor covers exactly map cell (0, 0)'s footprint (the
    ci backbone's real padding puts its centre at pixel 31: rows and columns [0, 47))."""
    rid = f"{split}_{CLASSES[c]}_{j}"
    action = (0, FRAMES) if split == "train" and j % 4 == 3 else (8, 24)
    mask = np.zeros((FRAMES, MASK_H, MASK_W), bool)
    (_, r1), (_, c1) = (axis[0] for axis in backbone_geometry("efficientnet_lite0", (MASK_H, MASK_W)).bounds())
    mask[:, :r1, :c1] = True
    ann = root / "ann" / f"{rid}.npz"
    ann.parent.mkdir(parents=True, exist_ok=True)
    np.savez(ann, actor_mask_packed=np.packbits(mask, axis=-1), mask_shape=np.array(mask.shape, np.int32))
    return Record(video=str(root / f"{rid}.mp4"), labels=(CLASSES[c],), id=rid, split=split, thread=rid,
                  extra={"action_frames": action, "frames": FRAMES, "annotation": str(ann)})


def _features(record: Record, stream: str, rng) -> np.ndarray:
    """(D, T, H, W) non-negative maps: the class lifts channel c in the actor cell during the action steps;
    the flow stream is weaker and noisier."""
    c = CLASSES.index(record.labels[0])
    f = np.abs(rng.normal(0.0, 1.0 if stream == "rgb" else 1.5, size=(D, STEPS, H, W)))
    s, e = record.extra["action_frames"]
    f[c, s // 8:e // 8, 0, 0] += 4.0 if stream == "rgb" else 2.0
    return f.astype(np.float16)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    rng = np.random.default_rng(0)
    records = {}
    for split, n in SPLITS.items():
        recs = [_record(root, split, c, j, rng) for c in range(len(CLASSES)) for j in range(n)]
        records[split] = ClipSet(recs, CLASSES, "fake", root, split)
    store = FeatureStore(root / "store")
    for stream in ("rgb", "flow"):
        store.begin(stream, {"fake": stream})
        for recs in records.values():
            for r in recs:
                store.put(r.id, stream, _features(r, stream, rng), frames=FRAMES)
    store.consolidate()
    pairs = thread_conjugates(records["train"])
    return {"records": records, "store": FeatureStore(root / "store"), "pairs": pairs}


def _cfg(tmp_path, **train):
    overrides = {f"train__{k}": v for k, v in {**dict(epochs=2, batch_size=4, milestones=(2,)), **train}.items()}
    return actx.config.make_config("ci", tmp_path / "data", "cpu", 0, **overrides)


def _run(cfg, bench, method="avgpool", stream="rgb", seed=0, **kw):
    return E.run(cfg, method, stream, seed, store=bench["store"], records=bench["records"],
                 pairs=bench["pairs"], progress=False, **kw)


def test_run_is_cached_and_reloaded_without_training(tmp_path, bench, monkeypatch):
    cfg = _cfg(tmp_path)
    first = _run(cfg, bench)
    folder = cfg.cache / "runs" / "rgb" / "avgpool" / "seed0"
    assert first.path == folder
    files = {p.name for p in folder.iterdir()}
    assert {"final.pt", "metrics.csv", "predictions.npz", "metrics.json"} <= files
    assert list(first.history["epoch"]) == [1, 2] and "val_mAP" in first.history
    assert "test_mAP" not in first.history  # test is read once, after training, not per epoch

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(runner, "fit", no_training)
    again = _run(cfg, bench)
    assert again.metrics == first.metrics
    for split in E.EVAL_SPLITS:
        np.testing.assert_array_equal(again.probs[split], first.probs[split])
        assert again.ids[split] == [r.id for r in bench["records"][split]]
    for k, v in first.head.state_dict().items():
        torch.testing.assert_close(again.head.state_dict()[k], v)


def test_metrics_are_computed_from_the_saved_probabilities(tmp_path, bench):
    cfg = _cfg(tmp_path)
    result = _run(cfg, bench)
    saved = json.loads((result.path / "metrics.json").read_text())
    with np.load(result.path / "predictions.npz") as z:
        for split in E.EVAL_SPLITS:
            probs, labels = z[f"{split}.probs"], z[f"{split}.labels"]
            assert probs.shape == (len(CLASSES) * SPLITS[split], len(CLASSES))
            np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
            assert saved["metrics"][split] == E.split_metrics(probs, labels)
            assert 0.0 <= saved["metrics"][split]["mAP"] <= 1.0
    # the saved probabilities are the trained head's on whole action windows
    transform = E.feature_transform(bench["store"], "rgb", bench["records"]["train"])  # the pipeline's
    assert saved["feature_scale"] == getattr(transform, "scale", None)
    test = E.WindowSamples(bench["store"], bench["records"]["test"], CLASSES, "rgb", transform=transform)
    batch = collate_maps([test[i] for i in range(len(test))])
    with torch.no_grad():
        logits = result.head(batch["f"].float(), batch["mask"])["logits"]
    np.testing.assert_allclose(E.softmax(logits.numpy()), result.probs["test"], atol=1e-5)
    assert result.params == D * len(CLASSES) + len(CLASSES)


def test_a_run_made_with_other_settings_is_refused(tmp_path, bench):
    _run(_cfg(tmp_path), bench)
    with pytest.raises(E.RunMismatch, match="lr"):
        _run(_cfg(tmp_path, lr=0.5), bench)


def test_only_the_first_seed_draws_a_val_curve_and_the_others_give_the_same_numbers(tmp_path, bench):
    cfg = _cfg(tmp_path, epochs=3, milestones=(2,), seeds=(0, 1))
    first, second = _run(cfg, bench, seed=0), _run(cfg, bench, seed=1)
    assert first.history["val_mAP"].notna().all()  # val after every epoch: the curve a chapter plots
    assert second.history["val_mAP"].isna().tolist() == [True, True, False]  # val once, after the last epoch
    # the same seed-1 run with a val pass after every epoch: evaluating changes no number of the run
    every = actx.config.make_config("ci", tmp_path / "every", "cpu", 0, train__epochs=3, train__batch_size=4,
                                    train__milestones=(2,), train__seeds=(1,))
    curve = _run(every, bench, seed=1)
    assert curve.history["val_mAP"].notna().all()
    assert curve.metrics == second.metrics
    np.testing.assert_array_equal(curve.probs["test"], second.probs["test"])
    # and a finished run evaluated more or less often is still the same run: it loads, it does not mismatch
    (second.path.parent).rename(curve.path.parent.with_name("moved"))
    (curve.path.parent).rename(second.path.parent)
    assert _run(cfg, bench, seed=1).metrics == second.metrics


def test_pair_keys_name_the_windows_read_and_the_memo_changes_no_number(tmp_path, bench, monkeypatch):
    from actx.models.actx import memo

    store, train, pairs = bench["store"], bench["records"]["train"], bench["pairs"]
    transform = E.feature_transform(store, "rgb", train)
    ds = E.WindowSamples(store, train, CLASSES, "rgb", pairs, transform=transform)
    twin = E.WindowSamples(store, train, CLASSES, "rgb", pairs, seed=5, transform=transform)
    flow = E.WindowSamples(store, train, CLASSES, "flow", pairs, transform=transform)
    opaque = E.WindowSamples(store, train, CLASSES, "rgb", pairs, transform=lambda f: f.float())
    rows = [(i, j) for i in range(len(ds)) for j in range(int(ds.conjugate_counts()[i]))]
    keys = [ds.pair_key(i, j) for i, j in rows]
    assert len(set(keys)) == len(rows) and min(keys) >= 0  # one key per pairs row
    assert keys == [twin.pair_key(i, j) for i, j in rows]  # the same windows read the same way: the same key
    assert not set(keys) & {flow.pair_key(i, j) for i, j in rows}  # another stream: other keys
    assert {opaque.pair_key(i, j) for i, j in rows} == {-1}  # a transform that cannot say what it does: none
    assert ds[rows[0][0]]["key"] in (-1, *keys)

    cfg = _cfg(tmp_path)
    monkeypatch.setattr(memo, "MEMO", memo.CosineMemo())
    monkeypatch.setattr("actx.models.actx.objective.MEMO", memo.MEMO)
    kept = _run(cfg, bench, "actx")
    assert memo.MEMO.misses > 0 and memo.MEMO.rows  # ... and later epochs found rows computed before
    monkeypatch.setattr("actx.models.actx.objective.MEMO", memo.CosineMemo(max_bytes=0))  # computes every row
    direct = E.run(_cfg(tmp_path / "direct"), "actx", "rgb", 0, store=store, records=bench["records"],
                   pairs=pairs, progress=False)
    for split in E.EVAL_SPLITS:
        np.testing.assert_allclose(kept.probs[split], direct.probs[split], rtol=1e-5, atol=1e-6)


def test_conjugate_choice_depends_on_seed_epoch_and_index_only(bench):
    store, train, pairs = bench["store"], bench["records"]["train"], bench["pairs"]
    ds = E.WindowSamples(store, train, CLASSES, "rgb", pairs, seed=3)
    twin = E.WindowSamples(store, train, CLASSES, "rgb", pairs, seed=3)
    counts = ds.conjugate_counts()
    assert set(counts) == {0, 2}  # pre and post windows, or none when the action fills the thread
    choices = [[ds.choice(i, e) for e in range(1, 9)] for i in range(len(ds))]
    assert choices == [[twin.choice(i, e) for e in range(1, 9)] for i in range(len(twin))]
    assert any(len(set(c)) > 1 for c in choices if c[0] is not None)  # varies over epochs
    ds.set_epoch(5)
    for i in range(len(ds)):
        item = ds[i]
        assert item["f"].shape == (D, 2 if counts[i] else STEPS, H, W)
        if counts[i] == 0:
            assert ds.choice(i) is None and item["cf"].shape == (D, 0, H, W)
        else:
            side = pairs[pairs.sample_id == ds.ids[i]].iloc[ds.choice(i)]
            start = side.conjugate_start // 8
            want = np.asarray(store.load(ds.ids[i], "rgb")[:, start:start + 1])
            np.testing.assert_array_equal(item["cf"].numpy(), want)


def test_windows_are_read_from_disk_once_within_the_cache_budget(bench, monkeypatch):
    store, train, pairs = bench["store"], bench["records"]["train"], bench["pairs"]
    opened = []
    load = FeatureStore.load

    def counting_load(self, clip_id, stream, mmap=True):
        opened.append(clip_id)
        return load(self, clip_id, stream, mmap)

    monkeypatch.setattr(FeatureStore, "load", counting_load)
    ds = E.WindowSamples(store, train, CLASSES, "rgb", pairs)
    first = ds[0]
    reads = len(opened)
    first["f"].zero_()  # a caller's change must not reach the cache
    again = ds[0]
    assert len(opened) == reads and ds.cached_bytes() > 0  # served from memory
    want = np.asarray(store.load(ds.ids[0], "rgb")[:, slice(*ds.windows[0])])
    np.testing.assert_array_equal(again["f"].numpy(), want)

    opened.clear()
    off = E.WindowSamples(store, train, CLASSES, "rgb", None, cache_bytes=0)
    off[0], off[0]
    assert opened == [off.ids[0]] * 2 and off.cached_bytes() == 0

    one = want.nbytes  # a budget of one window keeps the first window read and no other
    small = E.WindowSamples(store, train, CLASSES, "rgb", None, cache_bytes=one)
    small[0], small[1]
    assert small.cached_bytes() == one and len(small._cache) == 1
    opened.clear()
    small[0], small[1]
    assert opened == [small.ids[1]]


def test_samples_without_conjugate_train_on_classification_alone(bench):
    ds = E.WindowSamples(bench["store"], bench["records"]["train"], CLASSES, "rgb", bench["pairs"])
    torch.manual_seed(0)
    head = ActXHead(D, len(CLASSES))
    objective = E.METHODS["actx"].objective
    without = [i for i in range(len(ds)) if ds.conjugate_counts()[i] == 0]
    with_c = [i for i in range(len(ds)) if ds.conjugate_counts()[i] > 0]

    def batch(indices):
        b = collate_maps([ds[i] for i in indices])
        return {k: (v.float() if torch.is_tensor(v) and v.is_floating_point() else v) for k, v in b.items()}

    alone = objective(head, batch(without[:2]))  # every cmask row all False
    plain = classification_objective(head, batch(without[:2]), multi_label=False)
    torch.testing.assert_close(alone["loss"], plain["loss"])
    assert float(alone["sim"]) == 0.0 and float(alone["diff"]) == 0.0

    mixed = batch(without[:1] + with_c[:3])
    parts = objective(head, mixed)
    assert all(math.isfinite(float(v.detach())) for v in parts.values())
    full = objective(head, batch(with_c[:3]))
    torch.testing.assert_close(parts["sim"], 0.75 * full["sim"])
    torch.testing.assert_close(parts["diff"], 0.75 * full["diff"])
    parts["loss"].backward()
    grads = [p.grad for p in head.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_eep_actx_builds_on_the_cached_actx_run(tmp_path, bench, monkeypatch):
    cfg = _cfg(tmp_path)
    base = _run(cfg, bench, "actx")
    assert base.path.parent.name == "actx-thread" and base.conjugates == "thread"
    assert set(base.maps["test"]) == {"S", "C", "mask"} and base.maps["test"]["C"] is not None
    trained = []
    original = runner.fit
    monkeypatch.setattr(runner, "fit", lambda head, *a, **k: trained.append(type(head).__name__)
                        or original(head, *a, **k))
    eep = _run(cfg, bench, "eep_actx")
    assert trained == ["EEPHead"]  # the ActX base was loaded, not retrained
    assert eep.path.parent.name == "eep_actx-thread"
    for k, v in base.head.state_dict().items():  # frozen: the base's weights are unchanged
        torch.testing.assert_close(eep.head.base.state_dict()[k], v)
    basis = eep.head.eep.basis
    torch.testing.assert_close(basis @ basis.T, torch.eye(basis.shape[0]), atol=1e-5, rtol=0)


def test_late_fusion_averages_the_two_streams_probabilities(tmp_path, bench):
    cfg = _cfg(tmp_path)
    rgb, flow = _run(cfg, bench, stream="rgb"), _run(cfg, bench, stream="flow")
    fused = E.late_fusion(rgb, flow)
    assert fused.stream == "rgb+flow" and fused.head is None and fused.maps == {}
    for split in E.EVAL_SPLITS:
        np.testing.assert_allclose(fused.probs[split], (rgb.probs[split] + flow.probs[split]) / 2, atol=1e-7)
        np.testing.assert_allclose(fused.probs[split].sum(1), 1.0, atol=1e-5)
        assert fused.metrics[split] == E.split_metrics(fused.probs[split], rgb.labels[split])
    shuffled = E.load_run(flow.path)
    shuffled.ids["test"] = shuffled.ids["test"][::-1]
    with pytest.raises(ValueError, match="other clips"):
        E.late_fusion(rgb, shuffled)


def test_grounding_of_a_uniform_map_is_the_actor_fraction(tmp_path, bench):
    cfg = _cfg(tmp_path)
    result = _run(cfg, bench)
    g = E.grounding(cfg, result, "test", records=bench["records"]["test"])
    assert g["n"] == len(bench["records"]["test"])
    assert g["actor_fraction"] == pytest.approx(1 / (H * W))  # the actor fills cell (0, 0) of the 2 x 3 grid
    assert g["action_in_actor"] == pytest.approx(g["actor_fraction"])
    assert g["context_on_background"] == pytest.approx(1 - g["actor_fraction"])
    grids = E.actor_grids(cfg, result, "test", bench["records"]["test"])
    assert grids.shape == result.maps["test"]["S"].shape and grids[:, :, 0, 0].max() == 1.0
    attentional = _run(cfg, bench, "attentional")  # a head without a context map
    assert attentional.maps["test"]["C"] is None
    g = E.grounding(cfg, attentional, "test", records=bench["records"]["test"])
    assert math.isnan(g["context_on_background"]) and 0.0 <= g["action_in_actor"] <= 1.0


def test_grounding_table_loads_each_actor_mask_once_and_scores_as_single_calls(tmp_path, bench, monkeypatch):
    import actx.data.synthetic as synthetic

    cfg, records = _cfg(tmp_path), bench["records"]["test"]
    results = {"avgpool": _run(cfg, bench), "attentional": _run(cfg, bench, "attentional")}
    single = {name: E.grounding(cfg, r, "test", records=records) for name, r in results.items()}
    loaded = []
    load = synthetic.load_annotation
    monkeypatch.setattr(synthetic, "load_annotation", lambda rec: loaded.append(rec.id) or load(rec))
    table = E.grounding_table(cfg, results, "test", records)
    assert sorted(loaded) == sorted(r.id for r in records)  # once per clip, not once per clip and run
    for name, g in single.items():
        for key, value in g.items():
            assert table.loc[name, key] == pytest.approx(value, nan_ok=True)


def test_results_table_gives_mean_and_std_over_seeds(tmp_path, bench):
    cfg = _cfg(tmp_path)
    kw = dict(store=bench["store"], records=bench["records"], pairs=bench["pairs"])
    table = E.results_table(cfg, ["avgpool"], ["rgb", "rgb+flow"], seeds=[0, 1], progress=False, **kw)
    assert isinstance(table, pd.DataFrame) and list(table["stream"]) == ["rgb", "rgb+flow"]
    runs = [_run(cfg, bench, seed=s) for s in (0, 1)]
    values = [100 * r.metrics["test_shifted"]["mAP"] for r in runs]
    row = table.iloc[0]
    assert row["test_shifted mAP"] == pytest.approx(np.mean(values))
    assert row["test_shifted mAP std"] == pytest.approx(np.std(values, ddof=1))
    assert row["seeds"] == 2 and row["params"] == runs[0].params


def test_unknown_method_and_still_pairs_on_video_maps_are_refused(tmp_path, bench):
    with pytest.raises(KeyError, match="known"):
        E.get_method("nope")
    with pytest.raises(ValueError, match="conjugates must be one of"):
        _run(_cfg(tmp_path), bench, "actx", conjugates="bogus")
    stills = bench["pairs"].assign(kind="still")  # still pairs need one-step (image) maps
    with pytest.raises(ValueError, match="one-step"):
        E.WindowSamples(bench["store"], bench["records"]["train"], CLASSES, "rgb", stills)


def test_still_pairs_read_one_step_maps_of_the_image_and_its_conjugate(tmp_path):
    store = FeatureStore(tmp_path / "store")
    store.begin("rgb", {"test": 1})
    rng = np.random.default_rng(0)
    maps = {i: rng.random((D, 1, H, W)).astype(np.float16) for i in ("s0", "s0~a", "s1")}
    for i, m in maps.items():
        store.put(i, "rgb", m, 1)
    store.consolidate(verify=False)
    store.refresh()
    recs = [Record(video=f"{i}.png", labels=("a",) if i == "s0" else ("a", "b"), id=i, split="train",
                   extra={"frames": 1, "action_frames": (0, 1)}) for i in ("s0", "s1")]
    pairs = pd.DataFrame([dict(sample_id="s0", sample_split="train", label="a", sample_start=0, sample_end=1,
                               conjugate_id="s0~a", conjugate_split="train", conjugate_start=0, conjugate_end=1,
                               kind="still", side="", action_overlap=0.0, similarity=float("nan"),
                               conjugate_path="s0~a.png")])
    ds = E.WindowSamples(store, recs, CLASSES, "rgb", pairs)
    item = ds[0]
    assert torch.equal(item["f"], torch.from_numpy(maps["s0"])) and torch.equal(item["cf"], torch.from_numpy(maps["s0~a"]))
    assert ds[1]["cf"].shape == (D, 0, H, W)  # no conjugate row: classification only
    assert ds.labels[1].tolist() == [1.0, 1.0, 0.0]  # multi-label stills


def test_runs_on_another_data_set_get_their_own_folder(tmp_path):
    cfg = actx.config.make_config("ci", tmp_path)
    other = cfg.replace(dataset__name="synthetic_hacs30")
    assert E.run_dir(cfg, "actx", "rgb", 0, "neighbour").parent.parent.parent.name == "runs"
    assert E.run_dir(other, "actx", "rgb", 0, "neighbour").parts[-5:] == (
        "runs", "synthetic_hacs30", "rgb", "actx-neighbour", "seed0")


def test_voxel_norm_scale_gives_training_voxels_unit_mean_norm(bench):
    store, train = bench["store"], bench["records"]["train"]
    scale = E.Scale(E.voxel_norm_scale(store, "rgb", [r.id for r in train]))
    maps = [scale(torch.from_numpy(np.array(store.load(r.id, "rgb")))) for r in train]  # (D, T, h, w) each
    norms = torch.cat([m.flatten(1).norm(dim=0) for m in maps]).numpy()
    assert norms.mean() == pytest.approx(1.0, rel=1e-4)
    f = torch.from_numpy(np.array(store.load(train[0].id, "rgb")))
    assert scale(f).dtype == torch.float32 and (scale(f) >= 0).all()  # non-negative maps stay non-negative


def test_paper_map_gives_reported_numbers_and_nan_for_the_rest():
    import math

    from actx.experiments import PAPER_MAP, paper_map

    assert paper_map("ActionThread", "actx", "rgb+flow") == 63.1  # ActX Table 1
    assert paper_map("Hollywood2", "eep_actx", "rgb") == 76.0     # ActX Table 2
    assert math.isnan(paper_map("Hollywood2", "actx_no_satt", "rgb"))  # not in Table 2
    assert math.isnan(paper_map("ActionThread", "actx", "flow"))        # no flow-only column
    assert set(PAPER_MAP) == {"ActionThread", "Hollywood2"}


def test_mean_pm_and_map_cells_scale():
    assert E.mean_pm(12.345, 0.56) == "12.3 ± 0.6" and E.mean_pm(12.345, np.nan) == "12.3"
    assert E.mean_pm(np.nan, np.nan) == ""
    cfg = actx.config.make_config("ci", device="cpu")  # frames resized to 64 x 96 for the backbone
    at_input, doubled = E.map_cells(cfg, (64, 96)), E.map_cells(cfg, (128, 192))
    assert at_input.cols.stride == 32 and doubled.cols.stride == 64
    assert doubled.cols.centre(1) == pytest.approx(2 * at_input.cols.centre(1) + 0.5)  # pixel centres scale
    assert doubled.bounds()[1][0] == (0, 95)

def test_run_many_trains_side_by_side_the_same_runs_as_one_after_the_other(tmp_path, bench, monkeypatch):
    jobs = {(m, s, seed): (m, s, seed) for m in ("avgpool", "actx", "eep_actx") for s in ("rgb", "flow")
            for seed in (0, 1)}
    common = dict(store=bench["store"], records=bench["records"], pairs=bench["pairs"], progress=False)
    pooled = E.run_many(_cfg(tmp_path / "pooled"), jobs, workers=2, **common)
    alone = {key: _run(_cfg(tmp_path / "alone"), bench, *job) for key, job in jobs.items()}
    assert list(pooled) == list(jobs)
    for key, result in pooled.items():
        assert result.path.parts[-3:] == alone[key].path.parts[-3:]
        assert result.recipe == alone[key].recipe
        for split in E.EVAL_SPLITS:  # workers run one torch thread: the same numbers up to rounding
            np.testing.assert_allclose(result.probs[split], alone[key].probs[split], atol=1e-4)

    def no_pool(*args, **kwargs):
        raise AssertionError("finished runs were sent to worker processes")

    monkeypatch.setattr("actx.parallel.process_map", no_pool)
    again = E.run_many(_cfg(tmp_path / "pooled"), jobs, workers=2, **common)
    assert {k: r.metrics for k, r in again.items()} == {k: r.metrics for k, r in pooled.items()}
