import random

import numpy as np
import pytest
import torch

from actx import config


@pytest.mark.parametrize("stage", sorted(config.STAGES))
def test_every_profile_has_the_same_settings(stage):
    table = config.STAGES[stage]
    assert set(table) == set(config.PROFILE_NAMES)
    keys = [set(table[p]) for p in config.PROFILE_NAMES]
    assert keys[0] == keys[1] == keys[2]


def test_full_profile_holds_the_papers_settings():
    # ActX supplement (001) section 2 and ActX section 4: 256x352 frames, 128-frame clips, ActionThread schedule.
    full = config.make_config("full", device="cpu")
    assert (full.data["height"], full.data["width"], full.data["thread_frames"]) == (256, 352, 128)
    assert full.train["lr"] == 0.01 and full.train["epochs"] == 60 and tuple(full.train["milestones"]) == (20, 40)
    assert full.train["batch_size"] == 36 and full.train["crop"] == 10 and full.train["weight_decay"] == 1e-4


def test_make_config_overrides_and_hash(tmp_path):
    a = config.make_config("ci", tmp_path, "cpu")
    b = config.make_config("ci", tmp_path, "cpu", train__epochs=7)
    assert b.train["epochs"] == 7 and a.train["epochs"] != 7
    assert a.stage_hash("train") != b.stage_hash("train")
    assert a.stage_hash("data") == b.stage_hash("data") == config.make_config("ci", tmp_path, "cpu").stage_hash("data")
    assert a.cache == tmp_path.resolve() / "cache" / "ci"
    with pytest.raises(TypeError):
        a.train["epochs"] = 3  # sections are read-only


@pytest.mark.parametrize("kwargs, message", [
    (dict(profile="fast"), "PROFILE must be one of"),
    (dict(profile="ci", train__nope=1), "has no setting 'nope'"),
    (dict(profile="ci", epochs=1), "must look like"),
    (dict(profile="ci", device="tpu"), "DEVICE must be"),
])
def test_bad_parameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        config.make_config(**kwargs)


def test_auto_device_and_missing_cuda():
    assert config.choose_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device"):
            config.choose_device("cuda")


def test_seed_everything_reproduces_all_generators():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    config.seed_everything(3)
    first = draw()
    config.seed_everything(3)
    assert draw() == first


def test_setup_prints_the_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ACTX_FIGURES", str(tmp_path / "figures"))
    cfg = config.setup("ci", str(tmp_path), "cpu", 1)
    out = capsys.readouterr().out
    for key in ("torch", "cpu cores", "free disk", "profile", "device"):
        assert key in out
    assert cfg.cache.is_dir() and cfg.figures.is_dir() and cfg.seed == 1
    assert cfg.figures == tmp_path / "figures" / "ci"


def test_reuse_freed_memory_is_idempotent_and_reported():
    import platform

    from actx.config import environment_report, reuse_freed_memory

    expected = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert reuse_freed_memory() is expected and reuse_freed_memory() is expected
    assert environment_report()["allocator"].startswith("glibc" if expected else "the platform")


def test_default_data_root_is_the_repositorys_from_any_cwd(tmp_path, monkeypatch):
    monkeypatch.delenv(config.DATA_ROOT_ENV, raising=False)
    monkeypatch.chdir(tmp_path)  # "../data" would have been tmp_path.parent / "data"
    assert config.make_config("ci", device="cpu").data_root == config.REPO_ROOT / "data"


def test_env_variable_wins_over_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv(config.DATA_ROOT_ENV, str(tmp_path / "elsewhere"))
    assert config.make_config("ci", device="cpu").data_root == (tmp_path / "elsewhere").resolve()


def test_explicit_data_root_is_kept_relative_to_the_cwd(tmp_path, monkeypatch):
    monkeypatch.setenv(config.DATA_ROOT_ENV, str(tmp_path / "elsewhere"))
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    assert config.make_config("ci", "../data", "cpu").data_root == tmp_path.resolve() / "data"
