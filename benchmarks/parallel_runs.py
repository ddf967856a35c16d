"""Training runs one after the other in this process against the same runs side by side in worker processes.

    .venv/bin/python benchmarks/parallel_runs.py [--profile default] [--data-root DIR] [--methods ...] [--rounds 2]

Both ways train the same runs (``--methods`` x rgb, flow x seed 0) from nothing, in turns, ``--rounds`` times,
into scratch run folders beside the profile's cache (its features and pairs are read, never written), and the
script prints each round's wall times and their ratio: what actx.experiments.run_many gains over a loop of
actx.experiments.run. It also prints the largest difference of the test probabilities between the two ways (the
workers use one torch thread each, this process all of them: rounding, not bit for bit).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from actx.config import make_config
from actx.experiments import run_many
from actx.parallel import default_workers

METHODS = ("avgpool", "attentional", "acf", "actx", "region10")


def scratch_config(cfg, scratch: Path):
    """``cfg`` whose cache is a scratch folder: links to the real cache's entries, but its own empty runs/."""
    root = scratch / "data"
    cache = root / "cache" / cfg.profile
    cache.mkdir(parents=True)
    for entry in Path(cfg.cache).iterdir():
        if entry.name != "runs":
            (cache / entry.name).symlink_to(entry.resolve())
    return dataclasses.replace(cfg, data_root=root)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    cfg = make_config(args.profile, args.data_root, "cpu")
    jobs = {(m, s): (m, s, 0) for m in args.methods for s in ("rgb", "flow")}
    run_many(cfg, {}, progress=False)  # nothing: imports done before the clock starts
    workers = default_workers(cfg.device, len(jobs))
    print(f"{len(jobs)} runs ({', '.join(args.methods)} x rgb, flow, seed 0); {workers} worker processes")
    with tempfile.TemporaryDirectory(dir=Path(cfg.cache).parent) as tmp:
        scratch = scratch_config(cfg, Path(tmp))
        runs_dir = Path(scratch.cache) / "runs"
        for r in range(args.rounds):
            times, probs = {}, {}
            for name, n in (("one process", 1), ("worker processes", workers)):
                shutil.rmtree(runs_dir, ignore_errors=True)
                start = time.perf_counter()
                out = run_many(scratch, jobs, workers=n, progress=False)
                times[name] = time.perf_counter() - start
                probs[name] = {k: v.probs["test"] for k, v in out.items()}
            diff = max(float(np.abs(probs["one process"][k] - probs["worker processes"][k]).max()) for k in jobs)
            print(f"round {r + 1}: one process {times['one process']:.1f} s, {workers} worker processes "
                  f"{times['worker processes']:.1f} s: {times['one process'] / times['worker processes']:.2f}x; "
                  f"largest test-probability difference {diff:.1e}")


if __name__ == "__main__":
    main()
