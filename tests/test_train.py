"""Tests for actx.train: batching, crops, settings, the loop (resume, load-or-compute, divergence), predict
and torchrun data parallel. A tiny attention-pooling head and objective stand in for the real ones."""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import actx.config
import actx.train as T
from actx.train import checkpoint, precision
from actx.train.loop import to_device

D, C = 6, 3  # channels and classes of the toy feature maps


class ToyHead(nn.Module):
    """phi -> sigmoid spatio-temporal weights, masked weighted pooling, dropout, linear classifier."""

    def __init__(self, dim: int = D, classes: int = C, dropout: float = 0.0):
        super().__init__()
        self.phi = nn.Conv3d(dim, 1, kernel_size=1)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(dim, classes)

    def forward(self, f, mask=None):
        s = torch.sigmoid(self.phi(f))[:, 0]  # (B, T, H, W)
        if mask is not None:
            s = s * mask[:, :, None, None]
        pooled = (f * s[:, None]).sum((2, 3, 4)) / s.sum((1, 2, 3))[:, None].clamp_min(1e-6)  # (B, D)
        return {"logits": self.fc(self.drop(pooled)), "S": s}


def toy_objective(model, batch):
    """Classification plus a small term on the conjugate map (runs the head twice, as ActX objectives do)."""
    out = model(batch["f"], batch["mask"])
    cls = F.binary_cross_entropy_with_logits(out["logits"], batch["y"])
    parts = {"class": cls}
    if "cf" in batch:
        parts["diff"] = torch.sigmoid(model(batch["cf"], batch["cmask"])["logits"]).mean()
    parts["loss"] = cls + 0.1 * parts.get("diff", 0.0)
    return parts


class ToySet(torch.utils.data.Dataset):
    """n samples of float16 maps (D, T, 2, 3) with T varying from 3 to 7; class c lifts channel c."""

    def __init__(self, n: int = 16, conjugate: bool = False, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.items = []
        for i in range(n):
            c, t = i % C, 3 + i % 5
            f = rng.normal(size=(D, t, 2, 3)).astype(np.float16)  # (D, T, H, W)
            f[c] += 2.0
            y = np.eye(C, dtype=np.float32)[c]
            item = {"f": f, "y": y}
            if conjugate:
                item["cf"] = rng.normal(size=(D, 2 + i % 3, 2, 3)).astype(np.float16)
            self.items.append(item)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def settings(**kw) -> T.TrainSettings:
    base = dict(epochs=4, lr=1e-2, milestones=(2, 3), batch_size=4, crop=3, weight_decay=1e-4, seed=0)
    return T.TrainSettings(**{**base, **kw})


def fresh_head(**kw) -> ToyHead:
    torch.manual_seed(0)
    return ToyHead(**kw)


def params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


# --- batching -----------------------------------------------------------------------------------------------

def test_collate_maps_pads_time_and_builds_masks():
    ds = ToySet(3, conjugate=True)
    batch = T.collate_maps([{**ds[i], "id": f"s{i}", "index": i} for i in range(3)])
    assert batch["f"].shape == (3, D, 5, 2, 3) and batch["f"].dtype == torch.float16
    assert batch["mask"].tolist() == [[True] * 3 + [False] * 2, [True] * 4 + [False], [True] * 5]
    assert batch["cf"].shape == (3, D, 4, 2, 3) and batch["cmask"].sum(1).tolist() == [2, 3, 4]
    assert torch.equal(batch["f"][0, :, 3:], torch.zeros(D, 2, 2, 3, dtype=torch.float16))  # zero padding
    assert torch.equal(batch["f"][1, :, :4], torch.from_numpy(ds[1]["f"]))
    assert batch["y"].shape == (3, C) and batch["index"].tolist() == [0, 1, 2]
    assert batch["id"] == ["s0", "s1", "s2"]


def test_collate_maps_rejects_bad_samples():
    ds = ToySet(2)
    with pytest.raises(ValueError, match="sample 1 has keys"):
        T.collate_maps([ds[0], {"f": ds[1]["f"]}])
    with pytest.raises(ValueError, match=r"\(D, T, H, W\)"):
        T.collate_maps([{"f": np.zeros((D, 3, 2)), "y": np.zeros(C)}])


def test_temporal_crop_windows_are_inside_real_steps_and_reproducible():
    ds = ToySet(5, conjugate=True)
    batch = T.collate_maps([{**ds[i], "index": i} for i in range(5)])  # lengths 3..7, T = 7
    crop = T.TemporalCrop(4, seed=0)
    out = crop(batch, epoch=1)
    assert out["f"].shape == (5, D, 4, 2, 3) and out["mask"].shape == (5, 4)
    assert out["mask"].sum(1).tolist() == [3, 4, 4, 4, 4]  # the 3-step map is kept whole
    starts = crop.starts(batch["mask"].sum(1), batch["index"], epoch=1)
    for b, s in enumerate(starts.tolist()):
        assert 0 <= s <= max(int(batch["mask"][b].sum()) - 4, 0)
        assert torch.equal(out["f"][b], batch["f"][b, :, s:s + 4])
    assert out["cf"].shape == (5, D, 4, 2, 3)  # the conjugate (lengths 2..4) fits: uncut
    again = crop(batch, epoch=1)
    assert all(torch.equal(again[k], out[k]) for k in ("f", "mask"))
    later = [crop.starts(batch["mask"].sum(1), batch["index"], epoch=e).tolist() for e in range(2, 8)]
    assert any(s != starts.tolist() for s in later)  # the windows move from epoch to epoch
    with pytest.raises(KeyError, match="index"):
        crop({k: v for k, v in batch.items() if k != "index"}, epoch=1)


# --- settings -----------------------------------------------------------------------------------------------

def test_settings_from_config_hold_the_papers_schedules(tmp_path):
    full = T.TrainSettings.from_config(actx.config.make_config("full", tmp_path, "cpu", seed=3))
    assert (full.lr, full.epochs, full.milestones, full.gamma) == (0.01, 60, (20, 40), 0.1)
    assert (full.batch_size, full.crop, full.weight_decay, full.betas) == (36, 10, 1e-4, (0.9, 0.999))
    assert full.seed == 3
    ci = actx.config.make_config("ci", tmp_path, "cpu")
    hw2 = T.TrainSettings.from_config(ci, preset="hollywood2", seed=1)
    assert (hw2.lr, hw2.epochs, hw2.milestones, hw2.crop, hw2.seed) == (1e-3, 30, (10, 20), 6, 1)
    for profile in ("ci", "default"):
        s = T.TrainSettings.from_config(actx.config.make_config(profile, tmp_path, "cpu"))
        assert s.epochs >= 2 and max(s.milestones) < s.epochs
    with pytest.raises(ValueError, match="not TrainSettings fields"):
        T.TrainSettings.from_config({"epochs": 2, "lr_typo": 1.0})
    with pytest.raises(ValueError, match="unknown training preset"):
        T.TrainSettings.from_config({}, preset="kinetics")
    with pytest.raises(ValueError, match="milestones"):
        T.TrainSettings(milestones=(5, 3))


def test_amp_choice():
    cpu = torch.device("cpu")
    assert precision.autocast_dtype("auto", cpu) is None
    assert precision.autocast_dtype("bf16", cpu) is torch.bfloat16
    with pytest.raises(ValueError, match="CUDA"):
        precision.autocast_dtype("fp16", cpu)
    assert not precision.grad_scaler(cpu, None).is_enabled()


def test_joint_loss_weights_named_parts():
    parts = {"class": torch.tensor(2.0), "sim": torch.tensor(3.0), "loss": torch.tensor(9.0)}
    assert float(T.joint_loss(parts, None)) == 9.0
    assert float(T.joint_loss(parts, {"class": 1.0, "sim": 0.5})) == 3.5
    with pytest.raises(KeyError, match="diff"):
        T.joint_loss(parts, {"diff": 1.0})


def test_to_device_casts_float16_maps_to_float32():
    batch = {"f": torch.zeros(2, dtype=torch.float16), "mask": torch.ones(2, dtype=torch.bool)}
    batch = to_device(batch, torch.device("cpu"))
    assert batch["f"].dtype == torch.float32 and batch["mask"].dtype == torch.bool


# --- the loop -----------------------------------------------------------------------------------------------

def test_fit_learns_and_writes_checkpoints_and_csv(tmp_path):
    model = fresh_head()
    hist = T.fit(model, toy_objective, ToySet(24), settings(epochs=8, lr=0.1, milestones=(6,), batch_size=6,
                                                            eval_every=3),
                 tmp_path, progress=False, eval_fn=lambda m, e: {"acc": accuracy(m, ToySet(24))})
    assert len(hist) == 8 and hist.resumed_from == 0
    assert hist.rows[-1]["loss"] < 0.2 * hist.rows[0]["loss"]
    assert hist.last["acc"] == 1.0
    rows = read_csv(tmp_path / "metrics.csv")
    assert list(rows[0]) == ["epoch", "lr", "loss", "class", "acc", "seconds"]
    assert [r["epoch"] for r in rows if r["acc"]] == ["3", "6", "8"]  # every 3 epochs and after the last
    assert [float(r["lr"]) for r in rows] == pytest.approx([0.1] * 6 + [0.01] * 2)  # /10 after epoch 6
    assert {p.name for p in tmp_path.iterdir()} == {"last.pt", "final.pt", "metrics.csv"}
    last = checkpoint.load(tmp_path / "last.pt")
    assert last["epoch"] == 8 and {"model", "optimizer", "scheduler", "scaler"} <= set(last)


def accuracy(model, ds) -> float:
    out = T.predict(model, ds, batch_size=5)
    return float((out["logits"].argmax(1) == out["y"].argmax(1)).mean())


@pytest.mark.parametrize("how", ["epochs", "callback"])
def test_resume_reproduces_the_uninterrupted_run_exactly(tmp_path, how):
    data, s = ToySet(10, conjugate=True), settings()  # crops, conjugates, dropout and a schedule step
    whole = fresh_head(dropout=0.3)
    ref = T.fit(whole, toy_objective, data, s, tmp_path / "whole", progress=False)

    if how == "epochs":  # a shorter run, continued with more epochs
        T.fit(fresh_head(dropout=0.3), toy_objective, data, settings(epochs=2), tmp_path / "cut",
              progress=False)
    else:  # a run killed after epoch 2
        def die(epoch, row):
            if epoch == 2:
                raise KeyboardInterrupt
        with pytest.raises(KeyboardInterrupt):
            T.fit(fresh_head(dropout=0.3), toy_objective, data, s, tmp_path / "cut", progress=False,
                  callback=die)
    torch.manual_seed(123)  # the caller's RNG state must not matter
    resumed = fresh_head(dropout=0.3)
    hist = T.fit(resumed, toy_objective, data, s, tmp_path / "cut", progress=False)
    assert hist.resumed_from == 2 and len(hist) == 4
    for k, v in params(whole).items():
        assert torch.equal(v, resumed.state_dict()[k]), k
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in ref.rows]
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in hist.rows] == strip


def test_finished_run_is_loaded_not_retrained(tmp_path):
    data, s = ToySet(8), settings(epochs=2)
    trained = fresh_head()
    first = T.fit(trained, toy_objective, data, s, tmp_path, progress=False)
    mtime = (tmp_path / "final.pt").stat().st_mtime_ns
    other = ToyHead()  # different weights: they must be replaced by the finished run's
    again = T.fit(other, toy_objective, data, s, tmp_path, progress=False)
    assert again.resumed_from == 2 and again.rows == first.rows
    assert (tmp_path / "final.pt").stat().st_mtime_ns == mtime
    assert all(torch.equal(v, other.state_dict()[k]) for k, v in params(trained).items())
    with pytest.raises(T.CheckpointMismatch, match="lr"):
        T.fit(ToyHead(), toy_objective, data, settings(epochs=2, lr=0.5), tmp_path, progress=False)
    with pytest.raises(T.CheckpointMismatch, match="model tensors differ"):
        T.fit(ToyHead(dim=D, classes=C + 1), toy_objective, data, s, tmp_path, progress=False)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    state = {"calls": 0}

    def explode_in_epoch_3(model, batch):
        state["calls"] += 1
        parts = toy_objective(model, batch)
        if state["calls"] == 5:  # 8 samples, batch 4: 2 steps per epoch, so call 5 is epoch 3, step 1
            parts["loss"] = parts["loss"] * float("nan")
        return parts

    with pytest.raises(T.TrainingDiverged, match=r"epoch 3, step 1.*last.pt \(epoch 2\) is kept") as err:
        T.fit(fresh_head(), explode_in_epoch_3, ToySet(8), settings(), tmp_path, progress=False)
    assert err.value.epoch == 3 and math.isnan(err.value.value)
    assert checkpoint.load(tmp_path / "last.pt")["epoch"] == 2
    assert len(read_csv(tmp_path / "metrics.csv")) == 2 and not (tmp_path / "final.pt").exists()


def test_loss_weights_replace_the_objectives_total(tmp_path):
    hist = T.fit(fresh_head(), toy_objective, ToySet(8, conjugate=True), settings(epochs=1, loss_weights={
        "class": 1.0, "diff": 2.0}), tmp_path, progress=False)
    row = hist.last
    assert row["loss"] == pytest.approx(row["class"] + 2.0 * row["diff"], rel=1e-5)


class EpochAwareSet(ToySet):
    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.epochs_seen = []

    def set_epoch(self, epoch):
        self.epochs_seen.append(epoch)


def test_fit_under_cpu_autocast_tells_the_data_set_the_epoch(tmp_path):
    data = EpochAwareSet(8)
    hist = T.fit(fresh_head(), toy_objective, data, settings(epochs=2, amp="bf16"), tmp_path, progress=False)
    assert data.epochs_seen == [1, 2]
    assert all(math.isfinite(r["loss"]) for r in hist.rows)


def test_predict_whole_maps_in_dataset_order():
    model, ds = fresh_head(), ToySet(7)
    model.train()
    out = T.predict(model, ds, batch_size=3)
    assert model.training  # the mode is restored
    assert out["logits"].shape == (7, C) and out["S"].shape == (7, D + 1, 2, 3)  # T padded to the longest, 7
    assert out["index"].tolist() == list(range(7)) and out["mask"].sum(1).tolist() == [3, 4, 5, 6, 7, 3, 4]
    model.eval()
    for i in (0, 4, 6):
        f = torch.from_numpy(ds[i]["f"]).float()[None]  # (1, D, T, H, W), whole map
        with torch.no_grad():
            direct = model(f)["logits"][0].numpy()
        np.testing.assert_allclose(out["logits"][i], direct, rtol=1e-5, atol=1e-6)


# --- torchrun data parallel ---------------------------------------------------------------------------------

SCRIPT = """
import sys, torch
sys.path.insert(0, {tests!r})
import actx.train as T
from test_train import ToySet, fresh_head, settings, toy_objective

model = fresh_head()
T.fit(model, toy_objective, ToySet(16, conjugate=True), settings(batch_size=8, epochs=3), {out!r},
      progress=False)
rank = torch.distributed.get_rank()
torch.save(model.state_dict(), {out!r} + f"/rank{{rank}}.params")
T.shutdown()
"""


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_torchrun_two_cpu_processes_match_one_process(tmp_path):
    out = tmp_path / "ddp"
    script = tmp_path / "ddp_fit.py"
    script.write_text(textwrap.dedent(SCRIPT.format(tests=str(Path(__file__).parent), out=str(out))))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp_path)}  # torchrun's logs stay in tmp_path
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(script)]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(out / f"rank{r}.params", weights_only=True) for r in (0, 1))
    assert all(torch.equal(r0[k], r1[k]) for k in r0)  # both ranks end identical
    assert len(read_csv(out / "metrics.csv")) == 3

    single = fresh_head()
    T.fit(single, toy_objective, ToySet(16, conjugate=True), settings(batch_size=8, epochs=3),
          tmp_path / "one", progress=False)
    for k, v in single.state_dict().items():
        torch.testing.assert_close(r0[k], v, rtol=1e-4, atol=1e-5)
