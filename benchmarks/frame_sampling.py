"""The frame-sampling study: validation mAP of average pooling on RGB maps extracted with k of every 8 frames.

    .venv/bin/python benchmarks/frame_sampling.py [--profile default] [--ks 1 2 4 8] [--stream rgb|flow]

Runs :func:`actx.experiments.sampling.frame_sampling_study` (train and val clips only; test splits are never read),
prints the per-k summary and the k the rule picks (:func:`choose_frames_per_step`), and writes the per-seed table
to figures/frame_sampling_<stream>.csv (figures/<profile>/ for other profiles), which notebook 02 shows. Each
stream's pick is set by hand in actx/config.py (FEATURES["frames_per_step"] = {stream: k}); notebook 02 checks
that they agree.
"""

from __future__ import annotations

import argparse

from actx.config import make_config
from actx.experiments.sampling import STUDY_KS, choose_frames_per_step, frame_sampling_study, study_file, summarise


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--ks", type=int, nargs="+", default=list(STUDY_KS))
    ap.add_argument("--stream", default="rgb", choices=("rgb", "flow"))
    args = ap.parse_args()
    cfg = make_config(args.profile)
    table = frame_sampling_study(cfg, args.ks, stream=args.stream)
    cfg.figures.mkdir(parents=True, exist_ok=True)
    path = cfg.figures / study_file(args.stream)
    table.to_csv(path, index=False, float_format="%.3f")
    print(summarise(table).to_string())
    print(f"written {path}")
    print(f"frames_per_step chosen on val: {choose_frames_per_step(table)}")


if __name__ == "__main__":
    main()
