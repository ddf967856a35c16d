"""ACRN's peak learning rate chosen on the validation split (actx.models.acrn.tuning): the four rows of Table 1a,
the profile's schedule and seeds, each learning rate of the grid.

    PYTHONPATH=lib .venv/bin/python benchmarks/acrn_lr.py [--profile default] [--lrs 0.0003 0.001 0.003]
        [--data-root D]

Prints the per-learning-rate summary and the rule's pick (:func:`choose_lr`: the profile's value stays unless
another is clearly better), and writes the per-seed table to figures/acrn_lr.csv (figures/<profile>/ for other
profiles), which notebook 11 shows and checks the profile against. The profile's own learning rate reads the
course's runs (notebook 11 trains them); the others train under DATA_ROOT/studies/acrn_lr=<lr>.
"""

from __future__ import annotations

import argparse

import actx.config
from actx.models import acrn
from actx.models.acrn.tuning import STUDY_FILE, STUDY_LRS, choose_lr, lr_study, summarise


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--lrs", type=float, nargs="+", default=list(STUDY_LRS))
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args()
    cfg = acrn.detection_config(actx.config.make_config(args.profile, data_root=args.data_root))
    table = lr_study(cfg, args.lrs)
    cfg.figures.mkdir(parents=True, exist_ok=True)
    path = cfg.figures / STUDY_FILE
    table.assign(val_mAP=table["val_mAP"].round(3)).to_csv(path, index=False)
    print(summarise(table).to_string())
    print(f"written {path}")
    lr = cfg.detection_train["lr"]
    print(f"lr chosen on val: {choose_lr(table, lr):g} (profile: {lr:g})")


if __name__ == "__main__":
    main()
