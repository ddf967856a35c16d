"""actx.parallel: jobs in spawned worker processes, in order, errors raised with the job named; worker counts;
the configuration travels to a worker (pickling)."""

from __future__ import annotations

import pickle

import pytest

import actx.config
from actx.parallel import ENV, default_workers, process_map, threads_per_worker


def _square(x: int) -> int:
    return x * x


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("three is not allowed")
    return x


def test_process_map_returns_results_in_the_order_of_the_items():
    assert process_map(_square, range(7), workers=2, progress=False) == [x * x for x in range(7)]
    assert process_map(_square, [5], workers=2, progress=False) == [25]  # one item: no worker started
    assert process_map(_square, [], workers=2, progress=False) == []


def test_an_error_in_a_worker_is_raised_here_and_names_the_item():
    with pytest.raises(ValueError, match="three is not allowed") as info:
        process_map(_fail_on_three, range(6), workers=2, progress=False)
    assert any("_fail_on_three(3)" in note for note in getattr(info.value, "__notes__", []))


def test_default_workers_follow_the_device_the_cores_and_the_environment(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert default_workers("cpu", 10) == 2 and default_workers("cpu", 1) == 1
    assert default_workers("cuda", 10) == 1
    assert threads_per_worker(2) == 1 and threads_per_worker(1) == 2
    monkeypatch.setattr("os.cpu_count", lambda: 64)
    assert default_workers("cpu", 100) == 4  # MAX_WORKERS
    assert default_workers("cpu", 100, configured=1) == 1 and default_workers("cuda", 100, configured=6) == 6
    assert default_workers("cpu", 2, configured=6) == 2
    with pytest.raises(ValueError, match="configured"):
        default_workers("cpu", 4, configured=0)
    monkeypatch.setenv(ENV, "3")
    assert default_workers("cuda", 10) == 3 and default_workers("cpu", 2) == 2
    assert default_workers("cpu", 10, configured=1) == 3  # the environment overrides the profile
    monkeypatch.setenv(ENV, "zero")
    with pytest.raises(ValueError, match=ENV):
        default_workers("cpu", 4)


def test_a_config_survives_pickling_with_its_sections_read_only(tmp_path):
    cfg = actx.config.make_config("ci", tmp_path, "cpu", 3, train__epochs=5)
    back = pickle.loads(pickle.dumps(cfg))
    assert back == cfg and back.train["epochs"] == 5 and back.cache == cfg.cache
    with pytest.raises(TypeError):
        back.train["epochs"] = 1  # still a read-only mapping
