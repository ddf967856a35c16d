"""benchmarks/heads.py: its batch, operation counts, peak-memory measure and the printed last line."""

import importlib.util
import re
import subprocess
import sys

import pytest
import torch

from actx.config import REPO_ROOT, make_config
from actx.models import ActXHead, actx_objective

SCRIPT = REPO_ROOT / "benchmarks" / "heads.py"


@pytest.fixture(scope="module")
def heads():
    spec = importlib.util.spec_from_file_location("bench_heads", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_map_size_is_the_backbone_grid(heads):
    assert heads.map_size(make_config("default")) == (4, 6)  # ceil(128/32) x ceil(176/32)
    assert heads.map_size(make_config("ci")) == (2, 3)  # ceil(64/32) x ceil(96/32)


def test_random_batch_is_a_collated_training_batch(heads):
    b = heads.random_batch(3, 8, 2, 5, (2, 3), 4, "cpu", seed=7)
    assert b["f"].shape == (3, 8, 2, 2, 3) and b["cf"].shape == (3, 8, 5, 2, 3) and b["y"].shape == (3, 4)
    assert b["mask"].shape == (3, 2) and b["cmask"].shape == (3, 5) and b["mask"].all() and b["cmask"].all()
    assert b["f"].min() >= 0 and b["f"].max() <= 6  # ReLU6-like features
    again = heads.random_batch(3, 8, 2, 5, (2, 3), 4, "cpu", seed=7)
    assert all(torch.equal(b[k], again[k]) for k in b)


def test_count_flops_of_a_matmul_is_2n3(heads):
    fn, flops = heads.peak_matmul(64, "cpu")
    assert flops == 2 * 64 ** 3 and heads.count_flops(fn) == flops


def test_actx_step_flops_cover_the_eta_products(heads):
    B, D, T, Tc, (h, w) = 2, 16, 3, 4, (2, 3)
    batch = heads.random_batch(B, D, T, Tc, (h, w), 5, "cpu")
    head = ActXHead(D, 5)
    step = heads.training_step(head, actx_objective, batch)
    N, M = T * h * w, Tc * h * w
    # cos(eta(x, X), eta(x, Z)) (Eq. 2) from the Gram matrices X X^T, X Z^T, Z Z^T and three quadratic forms
    eta = 2 * B * D * (N * N + N * M + M * M) + 2 * B * (N * N * N + N * N * M + N * M * M)
    conv = 2 * (2 * B * 2 * N * D * 27)  # phi and psi, 3x3x3 to one channel each: forward and weight gradient
    flops = heads.count_flops(step)
    assert eta + conv <= flops <= 1.2 * (eta + conv)
    assert head.phi.weight.grad is not None  # the step ran backward


def test_peak_memory_is_the_high_water_mark_not_the_sum(heads):
    def two_in_turn():
        a = torch.ones(1 << 20)  # 4 MiB
        del a
        b = torch.ones(1 << 20)
        return b.sum()

    def two_at_once():
        a, b = torch.ones(1 << 20), torch.ones(1 << 20)
        return a.sum() + b.sum()

    one, both = heads.peak_memory(two_in_turn, "cpu"), heads.peak_memory(two_at_once, "cpu")
    assert 4 << 20 <= one < 6 << 20
    assert 8 << 20 <= both < 10 << 20


@pytest.mark.slow
def test_the_script_runs_and_ends_with_the_ratio(tmp_path):
    args = [sys.executable, str(SCRIPT), "--profile", "ci", "--reps", "1", "--warmup", "0", "--peak-n", "128",
            "--long-steps", "2", "--long-batch", "1", "--threads", "1"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert re.fullmatch(r"heads ratio \d+\.\d{3}", lines[-1]), lines[-1]
    assert float(lines[-1].split()[-1]) > 0
    assert {line.split()[0] for line in lines if line.strip()} >= {"backbone", "theta"}  # the memory table
