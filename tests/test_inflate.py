"""The inflated EfficientNet-Lite0 (actx.backbones.inflate) and the HACS-30 fine-tuning pieces: the static-clip
identity of I3D's inflation, the 3D convolution computed from 2D ones, frozen batch norm, the weighted cross
entropy (001 section 2.4), the K + 1 accuracy, and the HACS clips."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from actx.backbones import efficientnet_lite0
from actx.backbones.inflate import TIME_STRIDE, TimeConv, inflated_efficientnet_lite0
from actx.data import Record
import actx.experiments as E
from actx.experiments import hacs30, split_metrics
from actx.models import finetune3d
from actx.models.classify import classification_loss, sample_weight_sum
from actx.models.finetune3d import FinetunedTop, weighted_cross_entropy


@pytest.fixture(scope="module")
def nets():
    return efficientnet_lite0(), inflated_efficientnet_lite0()


def test_inflated_network_gives_the_2d_output_on_a_static_clip(nets):
    net2d, net3d = nets
    torch.manual_seed(0)
    image = torch.rand(1, 3, 64, 96)
    clip = image[:, :, None].expand(1, 3, 16, 64, 96)  # 16 copies of one image
    with torch.no_grad():
        f2 = net2d.forward_features(image)  # (1, 1280, 2, 3)
        f3 = net3d.forward_features(clip)  # (1, 1280, 16 / 8, 2, 3)
    assert f3.shape == (1, 1280, 16 // TIME_STRIDE, 2, 3)
    assert torch.allclose(f3, f2[:, :, None].expand_as(f3), atol=1e-4)
    # a moving clip does not give it: the kernels really look across time
    moving = torch.rand(1, 3, 16, 64, 96)
    with torch.no_grad():
        assert not torch.allclose(net3d.forward_features(moving)[:, :, 0], net2d.forward_features(moving[:, :, 0]),
                                  atol=1e-2)


def test_time_conv_equals_conv3d_with_edge_frames_repeated():
    torch.manual_seed(0)
    conv2d = nn.Conv2d(6, 6, 3, stride=2, groups=6, bias=False)
    tc = TimeConv(conv2d, 3, 2)
    with torch.no_grad():
        tc.weight.normal_()  # any 3D kernel, not only an inflated one
    x = torch.randn(2, 7, 6, 9, 10)  # (B, T, C, H, W)
    xt = x.transpose(1, 2)  # (B, C, T, H, W)
    t0, t1 = 1, 1  # TF SAME for 7 frames, kernel 3, stride 2: 4 outputs, one frame each side
    xt = torch.cat([xt[:, :, :1]] * t0 + [xt] + [xt[:, :, -1:]] * t1, 2)
    xt = F.pad(xt, (0, 1, 1, 1))  # SAME in space: H 9 -> 5 (one pixel each side), W 10 -> 5 (one after)
    ref = F.conv3d(xt, tc.weight, None, (2, 2, 2), 0, 1, 6).transpose(1, 2)
    out = tc(x)
    assert out.shape == ref.shape == (2, 4, 6, 5, 5)
    assert torch.allclose(out, ref, atol=1e-5)


def test_batch_norm_stays_frozen_in_training(nets):
    _, net3d = nets
    head = FinetunedTop(112, 5)
    head.train()
    bns = [m for m in head.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert bns and all(not m.training for m in bns)
    assert all(not p.requires_grad for m in bns for p in m.parameters())
    assert all("bn" not in n for n, p in head.named_parameters() if p in set(head.network_parameters()))
    before = [m.running_mean.clone() for m in bns]
    head(torch.rand(2, 112, 8, 2, 3))
    assert all(torch.equal(a, m.running_mean) for a, m in zip(before, bns))


def test_weighted_cross_entropy_weighs_the_background_by_the_negative_weight():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.5], [0.3, 0.2, 0.1]])
    y = torch.eye(3)[[0, 1, 2]]  # the last sample is a negative (background, the last class)
    ce = F.cross_entropy(logits, y.argmax(1), reduction="none")
    w = torch.tensor([1.0, 1.0, 0.01])
    assert torch.allclose(weighted_cross_entropy(logits, y, 0.01), (w * ce).sum() / w.sum())
    assert torch.allclose(weighted_cross_entropy(logits, y, 1.0), ce.mean())
    with pytest.raises(ValueError, match="one label"):
        weighted_cross_entropy(logits, torch.ones(3, 3))


def test_weighted_class_loss_on_hand_computed_values():
    # sample 0: class 0 of logits (0, 0, 0): CE = ln 3; sample 1: the background (last class) of logits
    # (0, 0, ln 2): p = 2 / 4, CE = ln 2
    logits = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, math.log(2.0)]])
    y = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    expected = (1.0 * math.log(3.0) + 0.01 * math.log(2.0)) / (1.0 + 0.01)
    assert classification_loss(logits, y, False, 0.01).item() == pytest.approx(expected, rel=1e-6)
    assert classification_loss(logits, y, False).item() == pytest.approx((math.log(3.0) + math.log(2.0)) / 2)
    assert sample_weight_sum(y, 0.01) == pytest.approx(1.01) and sample_weight_sum(y, None) == 2.0
    with pytest.raises(ValueError, match="multi-label"):
        classification_loss(logits, y, True, 0.01)
    with pytest.raises(ValueError, match="> 0"):
        classification_loss(logits, y, False, 0.0)


def test_hacs_heads_train_with_the_backbones_weighted_loss_and_the_generic_rows_do_not():
    for name in ("hacs_attentional", "hacs_acf", "hacs_actx"):
        assert E.get_method(name).params["negative_weight"] == finetune3d.NEGATIVE_WEIGHT
        assert "negative_weight" not in E.get_method(name[5:]).params  # the other chapters' recipes unchanged
    assert set(hacs30.METHODS[1:]) == {"hacs_attentional", "hacs_acf", "hacs_actx"}
    torch.manual_seed(0)
    f = torch.rand(4, 6, 2, 3, 3)  # (B, D, T, H, W)
    y = torch.eye(3)[[0, 2, 1, 2]]  # samples 1 and 3: the background
    head = E.get_method("hacs_attentional").make_head(6, 3)
    out = E.get_method("hacs_attentional").make_objective(multi_label=False)(head, {"f": f, "y": y})
    assert out["loss"].item() == pytest.approx(weighted_cross_entropy(head(f)["logits"], y, 0.01).item(), rel=1e-6)
    # with conjugates for the positives only (neighbour pairs: negatives have none), the class part is still the
    # weighted mean over the whole batch, and the conjugate losses keep their share of the batch
    spec = E.get_method("hacs_actx")
    head = spec.make_head(6, 3)
    cmask = torch.tensor([[True, True], [False, False], [True, True], [False, False]])
    batch = {"f": f, "y": y, "cf": torch.rand(4, 6, 2, 3, 3) * cmask[:, None, :, None, None], "cmask": cmask}
    out = spec.make_objective(multi_label=False)(head, batch)
    assert out["class"].item() == pytest.approx(weighted_cross_entropy(head(f)["logits"], y, 0.01).item(), rel=1e-5)
    assert out["loss"].item() == pytest.approx((out["class"] + out["sim"] + out["diff"]).item(), rel=1e-6)
    plain = E.get_method("actx").make_objective(multi_label=False)(head, batch)  # same head, unweighted
    assert plain["class"].item() == pytest.approx(F.cross_entropy(head(f)["logits"], y.argmax(1)).item(), rel=1e-5)
    assert plain["sim"].item() == pytest.approx(out["sim"].item()) and plain["class"] != out["class"]


def test_mean_class_accuracy_counts_the_background_as_the_k_plus_1th_class():
    # 2 actions + background; the background (4 of 6 samples) is always right, the actions half right
    labels = np.eye(3)[[0, 0, 1, 2, 2, 2]]
    probs = np.eye(3)[[0, 1, 0, 2, 2, 2]] * 0.8 + 0.1
    m = split_metrics(probs, labels)
    assert m["mean_class_acc"] == pytest.approx((0.5 + 0.0 + 1.0) / 3)
    assert m["top1"] == pytest.approx(4 / 6)
    multi = split_metrics(probs, np.array([[1, 1, 0]] * 6))  # multi-label rows: only mAP is defined
    assert np.isnan(multi["mean_class_acc"]) and np.isfinite(multi["mAP"])


def _thread(i: int, frames: int, action=(10, 30), labels=("a",)) -> Record:
    return Record(video=f"v{i}.mp4", labels=labels, id=f"t{i}", split="train",
                  extra={"frames": frames, "action_frames": action, "fps": 16.0})


def test_hacs_clips_are_32_frames_centred_on_the_action_and_negatives_split_by_video():
    c = hacs30.positive_clip(_thread(0, 64, (20, 40)))
    assert c.extra["clip_start"] == 14 and c.extra["action_frames"] == (0, 32) and c.extra["frames"] == 32
    assert hacs30.positive_clip(_thread(1, 64, (50, 64))).extra["clip_start"] == 32  # clamped to the video
    with pytest.raises(ValueError, match="32"):
        hacs30.positive_clip(_thread(2, 24))
    negs = [dataclasses.replace(_thread(i, 64, (0, 0), ()), id=f"neg{i}") for i in range(20)]
    clips = hacs30.negative_clips(negs[0], "test")
    assert [x.extra["clip_start"] for x in clips] == [0, 32] and clips[0].labels == (hacs30.BACKGROUND,)
    parts = hacs30.split_negatives(negs)
    ids = {k: {r.id for r in v} for k, v in parts.items()}
    assert sum(map(len, ids.values())) == 20 and not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"])
    assert len(ids["test"]) == 8 and parts == hacs30.split_negatives(negs[::-1])  # from the ids alone
