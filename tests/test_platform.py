"""The method platform (actx.experiments): parameters in the recipe, the validation split, the data set in the
configuration, extra per-sample inputs, per-method feature settings and a method's own training routine. Runs on
the tiny fake benchmark of test_experiments (no rendering, no extraction)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn as nn

import actx.experiments as E
from actx import models
from actx.data import ClipSet, Record
from actx.data.splits import VAL_SHARE, held_out, validation_split
from actx.experiments import methods as methods_module
from actx.experiments import runner
from actx.train import fit as train_fit
from test_experiments import CLASSES, SPLITS, _cfg, _run, bench  # noqa: F401 (bench is a fixture)


# --- parameters --------------------------------------------------------------------------------------------
def test_every_registry_row_has_parameters_with_a_reason():
    for name, spec in E.METHODS.items():
        assert isinstance(spec.params, dict)
        assert set(spec.why) == set(spec.params)
        assert all(spec.why[k] for k in spec.params), f"{name}: every parameter says where it comes from"
    assert E.get_method("actx").params["gamma"] == models.actx.GAMMA
    assert E.get_method("actx_no_satt").params["use_s_att"] is False
    with pytest.raises(ValueError, match="no parameters \\['gamm'\\]"):
        E.get_method("actx").resolve({"gamm": 1.0})


def test_parameters_reach_the_head_and_the_objective():
    spec = E.get_method("actx")
    head = spec.make_head(8, 3, params={"rho": 10.0, "alpha": 2.0})
    assert (head.rho, head.alpha, head.beta) == (10.0, 2.0, 1.0)
    objective = spec.make_objective({"gamma": 5.0})
    inner = objective.__wrapped__  # optional_conjugates wraps the bound actx_objective
    assert inner.keywords["gamma"] == 5.0 and inner.keywords["xi"] == models.actx.XI
    assert E.get_method("acf").make_head(8, 3, params={"dim": 16}).action[0].out_features == 16


def test_a_changed_parameter_trains_a_new_run_and_the_same_parameters_load(tmp_path, bench, monkeypatch):
    cfg = _cfg(tmp_path)
    default = _run(cfg, bench, "actx")
    changed = _run(cfg, bench, "actx", params={"gamma": 5.0})
    assert changed.path != default.path and changed.path.parent.name == "actx-thread-gamma=5.0"
    assert changed.recipe["params"]["gamma"] == 5.0 and default.recipe["params"]["gamma"] == 10.0

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(runner, "fit", no_training)
    again = _run(cfg, bench, "actx", params={"gamma": 5.0})
    assert again.path == changed.path and again.metrics == changed.metrics
    assert _run(cfg, bench, "actx", params={"gamma": 10.0}).path == default.path  # the default, spelled out


def test_a_changed_default_is_refused_naming_the_parameter(tmp_path, bench, monkeypatch):
    cfg = _cfg(tmp_path)
    _run(cfg, bench, "actx")
    spec = E.get_method("actx")
    monkeypatch.setitem(E.METHODS, "actx", dataclasses.replace(spec, overrides={"gamma": 3.0}))
    with pytest.raises(E.RunMismatch, match="gamma"):
        _run(cfg, bench, "actx")


def test_run_folder_names_stay_short():
    assert E.params_suffix("actx", None) == ""
    assert E.params_suffix("actx", {"xi": 0.2, "gamma": 5}) == "gamma=5_xi=0.2"
    long = E.params_suffix("actx", {"xi": 0.2, "gamma": 5.5, "sim_weight": 0.25, "diff_weight": 2.0})
    assert long.startswith("p") and len(long) == 11


# --- the validation split ------------------------------------------------------------------------------------
def _records(n_per_class: dict[str, int], scenes=("park", "kitchen")) -> ClipSet:
    recs = [Record(video=f"{c}{j}.mp4", labels=(c,), id=f"{c}_{j}", split="train",
                   extra={"scene": scenes[j % len(scenes)]})
            for c, n in n_per_class.items() for j in range(n)]
    return ClipSet(recs, tuple(n_per_class), "toy", "", "train")


def test_validation_split_is_stratified_deterministic_and_disjoint():
    recs = _records({"a": 20, "b": 10, "c": 1})
    train, val = validation_split(recs)
    assert {r.id for r in train}.isdisjoint({r.id for r in val})
    assert len(train) + len(val) == len(recs) and val.split == "val" and train.classes == recs.classes
    per_class = {c: sum(r.labels == (c,) for r in val) for c in "abc"}
    assert per_class == {"a": round(VAL_SHARE * 20), "b": round(VAL_SHARE * 10), "c": 0}
    assert {r.extra["scene"] for r in val if r.labels == ("a",)} == {"park", "kitchen"}  # both scenes
    shuffled = ClipSet(list(reversed(recs.records)), recs.classes, "toy", "", "train")
    assert {r.id for r in validation_split(shuffled)[1]} == {r.id for r in val}  # order does not matter
    assert held_out(2, 0.2) == [1] and held_out(1, 0.5) == [] and len(held_out(10, 0.99)) == 9


def test_runs_train_without_the_validation_share_and_report_it(tmp_path, bench):
    cfg = _cfg(tmp_path)
    result = _run(cfg, bench)
    train, val = validation_split(bench["records"]["train"], cfg.dataset["val_share"])
    assert set(result.probs) == {"val", *E.EVAL_SPLITS}
    assert result.ids["val"] == [r.id for r in val]
    info = json.loads((result.path / E.RESULT).read_text())
    assert info["train_samples"] == len(train) == len(bench["records"]["train"]) - len(val)
    assert "val_mAP" in result.history and "test_mAP" not in result.history  # test: once, at the end


# --- the data set is part of the configuration -----------------------------------------------------------------
def test_a_real_set_goes_through_the_same_splits(tmp_path):
    root = tmp_path / "set"
    root.mkdir()
    rows = ["video,labels,split,action_start,action_end,thread"]
    rows += [f"v{c}{j}.mp4,{c},train,,," for c in "xy" for j in range(5)]
    rows += [f"t{c}{j}.mp4,{c},test,,," for c in "xy" for j in range(2)]
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    cfg = _cfg(tmp_path, ).replace(dataset__name="manifest", dataset__root=str(root),
                                   dataset__eval_splits=("test",))
    splits = E.benchmark_splits(cfg)
    assert list(splits) == ["train", "val", "test"] and E.eval_splits(cfg) == ("test",)
    assert (len(splits["train"]), len(splits["val"]), len(splits["test"])) == (8, 2, 4)
    with pytest.raises(ValueError, match="no root"):
        E.benchmark_splits(cfg.replace(dataset__root=None))


# --- a method's own inputs, features and training routine -----------------------------------------------------
class _StepHead(nn.Module):
    """A toy head that takes a per-step input "toy" (B, T, 2) and checks it is aligned with f's steps."""

    seen: list = []

    def __init__(self, d: int, c: int):
        super().__init__()
        self.classifier = nn.Linear(d + 2, c)

    def forward(self, f, mask=None, toy=None):
        assert toy is not None and toy.shape[:2] == f.shape[0:1] + f.shape[2:3], "toy is cut like f"
        _StepHead.seen.append(toy[:, :, 1].clone())
        x = torch.cat([f.mean((2, 3, 4)), toy.float().mean(1)], 1)
        return {"logits": self.classifier(x), **models.uniform_maps(f, mask)}


class _ToyPackage:
    PARAMS = {"width": 2}
    WHY = {"width": "the toy input's width"}

    @staticmethod
    def build_head(d, c, params, base=None):
        return _StepHead(d, c)

    build_objective = staticmethod(models.classify.classification_builder)


def test_a_method_with_extra_inputs_its_own_fit_and_features(tmp_path, bench, monkeypatch):
    # the toy input at step t is (index of the record's first step, t): the crop must keep t consecutive
    monkeypatch.setitem(E.INPUTS, "toy", lambda record, steps, stride: np.stack(
        [np.zeros(steps), np.arange(steps)], 1).astype(np.float32))
    calls = []

    def own_fit(head, objective, train_set, settings, out, **kwargs):
        calls.append(kwargs["time_keys"])
        return train_fit(head, objective, train_set, settings, out, **kwargs)

    spec = E.Method("toy", "Toy", _ToyPackage, inputs=("toy",), features={"batch_frames": 8}, fit=own_fit)
    monkeypatch.setitem(E.METHODS, "toy", spec)
    cfg = _cfg(tmp_path, crop=2)
    _StepHead.seen.clear()
    result = _run(cfg, bench, "toy")
    assert calls == [("toy",)]
    assert result.recipe["inputs"] == ["toy"] and result.recipe["params"] == {"width": 2}
    steps = torch.cat([s.flatten(0) for s in _StepHead.seen[:2]])  # training batches: cropped to 2 steps
    assert _StepHead.seen[0].shape[1] == 2
    assert torch.all(_StepHead.seen[0][:, 1] - _StepHead.seen[0][:, 0] == 1), steps
    assert E.method_config(cfg, spec).features["batch_frames"] == 8 and cfg.features["batch_frames"] != 8
    assert isinstance(E.load_run(result.path).head, _StepHead)


def test_actor_boxes_are_taken_at_each_steps_middle_frame(tmp_path):
    boxes = np.full((16, 1, 4), np.nan, np.float32)
    boxes[4] = [10, 20, 30, 40]  # frame 4: the middle of step 0 at stride 8
    mask = np.zeros((16, 64, 96), bool)
    kp = np.zeros((16, 1, 2, 3), np.float32)
    ann = tmp_path / "a.npz"
    np.savez(ann, actor_boxes=boxes, keypoints=kp, actor_mask_packed=np.packbits(mask, axis=-1),
             mask_shape=np.array(mask.shape, np.int32))
    rec = Record(video="a.mp4", labels=("a",), id="a", extra={"annotation": str(ann)})
    out = E.INPUTS["actor_boxes"](rec, 2, 8)  # (T, A, 4)
    np.testing.assert_allclose(out[0, 0], [10 / 96, 20 / 64, 30 / 96, 40 / 64], rtol=1e-6)
    assert np.all(out[1] == 0), "a person outside the frame has an all-zero box"
    assert E.INPUTS["keypoints"](rec, 2, 8).shape == (2, 1, 2, 3)
    with pytest.raises(KeyError, match="no per-frame annotation"):
        E.INPUTS["actor_boxes"](Record(video="b.mp4", labels=(), id="b"), 2, 8)


def test_the_stride_check_applies_only_to_conjugate_methods(tmp_path, bench):
    cfg = _cfg(tmp_path).replace(features__time_stride=4)
    with pytest.raises(ValueError, match="time_stride"):
        _run(cfg, bench, "actx")
    assert methods_module.uses_conjugates(E.get_method("eep_actx"))


# --- a method's own samples, evaluation and metrics (the hooks detection uses) ---------------------------------
class _OwnSet(torch.utils.data.Dataset):
    """Per record one sample of 3 numbers; its label is the record's class."""

    in_channels = 3

    def __init__(self, records):
        self.ids = [r.id for r in records]
        self.y = [CLASSES.index(r.labels[0]) for r in records]

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        x = torch.zeros(3)
        x[self.y[i]] = 1.0
        return {"x": x, "y": torch.tensor(self.y[i])}


class _OwnPackage:
    PARAMS = {"scale": 1.0}
    WHY = {"scale": "a toy"}

    @staticmethod
    def build_head(d, c, params, base=None):
        return nn.Linear(d, c)

    @staticmethod
    def build_objective(params, multi_label, inputs=()):
        return lambda head, batch: {"loss": nn.functional.cross_entropy(head(batch["x"]), batch["y"])}


def test_a_method_with_its_own_samples_evaluation_and_metrics(tmp_path, bench, monkeypatch):
    seen = {}

    def samples(cfg, records, split, params, seed, progress, training):
        seen[split] = training
        return _OwnSet(records)

    def own_fit(head, objective, train_set, settings, out, **kwargs):
        opt = torch.optim.SGD(head.parameters(), lr=0.5)
        for _ in range(20):
            batch = {"x": torch.stack([train_set[i]["x"] for i in range(len(train_set))]),
                     "y": torch.tensor(train_set.y)}
            opt.zero_grad()
            objective(head, batch)["loss"].backward()
            opt.step()
        torch.save({"format": 1, "model": head.state_dict()}, out / "final.pt")

    def evaluate(head, data, device, batch_size):
        x = torch.stack([data[i]["x"] for i in range(len(data))])
        return {"probs": head(x).softmax(1).detach().numpy(), "labels": np.eye(3)[data.y],
                "ids": np.array(data.ids), "extra_rows": np.arange(len(data))}

    def score(preds, classes):
        return {"mAP": float((preds["probs"].argmax(1) == preds["labels"].argmax(1)).mean())}

    spec = E.Method("own", "Own", _OwnPackage, fit=own_fit, samples=samples, evaluate=evaluate, score=score,
                    sections=("detection.per_clip", "detection.proposals"))
    monkeypatch.setitem(E.METHODS, "own", spec)
    cfg = _cfg(tmp_path)
    result = E.run(cfg, "own", records=bench["records"], progress=False)
    assert seen == {"train": True, "val": False, "test": False, "test_shifted": False}
    assert result.metrics["test"]["mAP"] == 1.0
    assert result.extra["test"]["extra_rows"].tolist() == list(range(len(result.ids["test"])))
    assert result.recipe["sections"] == {"detection.per_clip": cfg.detection["per_clip"]}  # None left out
    assert result.maps == {} and result.windows == {}
