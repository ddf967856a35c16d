"""``torch.compile`` for feature extraction: the profile's backbone compiled against eager, side by side in turns.

    .venv/bin/python benchmarks/compile.py [--stream flow] [--batch 32] [--reps 3]

One fixed input shape (the default profile's frame size, ``--batch`` frames), BN folded and channels_last on both
sides (``actx.features.prepare_backbone``). Prints the compile time (the first call) and, per turn, eager and
compiled seconds; the last line is ``compile ratio <median eager / compiled>``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from actx.config import make_config
from actx.features import load_backbone, prepare_backbone


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stream", default="flow", choices=("rgb", "flow"))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    cfg = make_config("default", device="cpu")
    name, (h, w) = cfg.features["backbone"], cfg.features["size"]
    eager = prepare_backbone(load_backbone(name, args.stream))
    compiled = prepare_backbone(load_backbone(name, args.stream), compile=True)
    x = torch.rand(args.batch, 3 if args.stream == "rgb" else 2, h, w).contiguous(memory_format=torch.channels_last)
    ratios = []
    with torch.inference_mode():
        start = time.perf_counter()
        compiled.forward_features(x)
        print(f"{name} ({args.stream}), batch {args.batch} at {h}x{w}: compile and first call "
              f"{time.perf_counter() - start:.1f} s")
        eager.forward_features(x)  # warm-up
        for _ in range(args.reps):
            start = time.perf_counter()
            eager.forward_features(x)
            a = time.perf_counter() - start
            start = time.perf_counter()
            compiled.forward_features(x)
            b = time.perf_counter() - start
            ratios.append(a / b)
            print(f"eager {a:.3f} s, compiled {b:.3f} s, ratio {a / b:.2f}", flush=True)
    print(f"compile ratio {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
