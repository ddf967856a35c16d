"""What the default profile's feature maps cost: stride 32 against stride 16, every frame against k of every 8.

    .venv/bin/python benchmarks/extraction_cost.py [--clips 8] [--reps 3] [--streams rgb flow] [--k K]

End to end (decode -> [flow] -> backbone -> float16 store, :func:`actx.features.extract`) on the same synthetic clips
at the default profile's frame size, for each configuration in turn, repeated ``--reps`` times in rotation so that
a change of the machine's load hits all of them alike:

- ``s32 all``:  EfficientNet-Lite0, stride 32, every frame (the course before the 8 x 11 maps: 4 x 6 cells);
- ``s16 all``:  EfficientNet-Lite0 at output stride 16 (stage 6 dilated), every frame (8 x 11 cells);
- ``s16 k/8``:  the same, ``k`` frames of every 8 (``--k``, default: the profile's ``frames_per_step``).

Printed per stream: median seconds per clip of each configuration and its ratio to ``s32 all``. The last line,
``extraction ratio <value>``, is the RGB stream's ``s16 k/8`` / ``s32 all``: what the default maps cost against the
course's old maps (below 1: the paper-shaped maps are cheaper than the old ones).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path

import torch

from actx.config import make_config
from actx.features import extract, load_backbone
from features import make_clips  # benchmarks/features.py: textured panning clips with a moving square


def seconds_per_clip(records, backbone: str, stream: str, size, k, work: Path, batch_frames: int) -> float:
    root = work / "store"
    shutil.rmtree(root, ignore_errors=True)
    model = load_backbone(backbone, stream)
    summary = extract(records, root, model, stream=stream, size=size, batch_frames=batch_frames, device="cpu",
                      workers=0, progress=False, backbone_id=backbone, frames_per_step=k)
    if summary.extracted != len(records):
        raise RuntimeError(f"stored {summary.extracted} of {len(records)} clips: {summary}")
    return summary.seconds / len(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--streams", nargs="+", choices=("rgb", "flow"), default=["rgb", "flow"])
    parser.add_argument("--k", type=int, default=None, help="frames per 8 (default: the profile's)")
    args = parser.parse_args()
    cfg = make_config("default", device="cpu")
    size = tuple(cfg.features["size"])
    from actx.features import frames_per_step

    k = args.k or frames_per_step(cfg.features, "rgb") or 8  # the RGB stream's k (flow keeps every frame)
    configs = {"s32 all": ("efficientnet_lite0", None), "s16 all": ("efficientnet_lite0_os16", None),
               f"s16 {k}/8": ("efficientnet_lite0_os16", k)}
    print(f"{args.clips} clips x {cfg.data['thread_frames']} frames at {size[0]}x{size[1]}, torch threads "
          f"{torch.get_num_threads()}, {args.reps} reps in rotation")
    ratio = None
    with tempfile.TemporaryDirectory(prefix="actx-bench-cost-") as tmp:
        work = Path(tmp)
        records = make_clips(work, args.clips, int(cfg.data["thread_frames"]), size, int(cfg.data["fps"]))
        for stream in args.streams:
            times = {name: [] for name in configs}
            for rep in range(args.reps):
                for name, (backbone, kk) in configs.items():
                    times[name].append(seconds_per_clip(records, backbone, stream, size, kk, work,
                                                        int(cfg.features["batch_frames"])))
            base = statistics.median(times["s32 all"])
            for name, t in times.items():
                print(f"{stream:>4} {name:>9}: {statistics.median(t):.3f} s per clip, ratio to s32 all "
                      f"{statistics.median(t) / base:.2f}")
            if stream == "rgb":
                ratio = statistics.median(times[f"s16 {k}/8"]) / base
    if ratio is not None:
        print(f"extraction ratio {ratio:.3f}")


if __name__ == "__main__":
    main()
