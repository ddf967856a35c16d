"""The schedule study: validation mAP of the Table 1 heads trained for 12, 8, 6 and 4 epochs.

    .venv/bin/python benchmarks/schedule.py [--profile default] [--data-root DIR] [--epochs 12 8 6 4]

Runs :func:`actx.experiments.schedule.schedule_study` (the shorter schedules never read a test split), prints the
comparison to the profile's schedule and the number of epochs the rule picks (:func:`choose_epochs`), and writes
the per-seed table to figures/schedule.csv (figures/<profile>/ for other profiles), which notebook 04 shows. The
picks are set by hand in actx/config.py (TRAIN[profile]["stream_epochs"]); notebook 04 checks that they agree.
"""

from __future__ import annotations

import argparse

from actx.config import make_config
from actx.experiments.schedule import REFERENCE, STUDY_EPOCHS, STUDY_FILE, choose_epochs, compare_to, schedule_study


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--epochs", type=int, nargs="+", default=list(STUDY_EPOCHS))
    args = ap.parse_args()
    cfg = make_config(args.profile, args.data_root)
    if REFERENCE not in args.epochs:
        raise SystemExit(f"--epochs must include the reference schedule's {REFERENCE} epochs")
    table = schedule_study(cfg, args.epochs)
    cfg.figures.mkdir(parents=True, exist_ok=True)
    path = cfg.figures / STUDY_FILE
    table.to_csv(path, index=False, float_format="%.3f")
    print(compare_to(table, REFERENCE).round(2).to_string(index=False))
    print(f"written {path}")
    print(f"epochs chosen on val, per stream: {choose_epochs(table)}")


if __name__ == "__main__":
    main()
