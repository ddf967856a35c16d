"""Render the benchmark from the command line.

    python -m actx.data.synthetic --profile default              # into data/cache/default/synthetic
    python -m actx.data.synthetic --profile ci --out /tmp/bench --workers 2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ...config import DATA, PROFILE_NAMES, REPO_ROOT
from .dataset import render_benchmark


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m actx.data.synthetic", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", choices=PROFILE_NAMES, default="default", help="knob set: actx.config.DATA[profile]")
    ap.add_argument("--out", type=Path, default=None, help="folder (default: data/cache/<profile>/synthetic)")
    ap.add_argument("--workers", type=int, default=None, help="processes (default: one per CPU core)")
    args = ap.parse_args(argv)
    out = args.out or REPO_ROOT / "data" / "cache" / args.profile / "synthetic"
    t0 = time.perf_counter()
    root = render_benchmark(out, workers=args.workers, **DATA[args.profile])
    meta = json.loads((root / "meta.json").read_text())
    last = meta["last_run"]
    print(f"{root}: {meta['counts']}, {meta['frames']} frames ({time.perf_counter() - t0:.1f} s); the last rendering "
          f"run rendered {last['rendered']} samples with {last['workers']} workers in {last['seconds']} s")


if __name__ == "__main__":
    main()
