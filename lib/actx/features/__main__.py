"""Command line for feature extraction; runs single-process or under torchrun (one shard per process).

    python -m actx.features --store DIR --videos DIR [--stream flow] [--size 128 176]
    python -m actx.features --store DIR --dataset synthetic --data-root data/cache/ci/synthetic --splits train test
    torchrun --nproc_per_node=2 -m actx.features --store DIR --videos DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path

from actx.runtime import shutdown

from .extract import BATCH_FRAMES, TIME_STRIDE, extract
from .flow import METHODS


def _records(args: argparse.Namespace) -> list:
    from actx.data import Record, load_dataset

    if args.videos:
        folder = Path(args.videos)
        paths = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        if not paths:
            raise SystemExit(f"--videos {folder}: no files found")
        return [Record(video=str(p), labels=(), id=p.stem) for p in paths]
    records: list = []
    for split in args.splits:
        records.extend(load_dataset(args.dataset, args.data_root, split))
    return records


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m actx.features", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True, help="feature store directory (created if absent)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--videos", help="a folder of videos; each file is one clip, its id the file stem")
    source.add_argument("--dataset", help="a data set name for actx.data.load_dataset (with --data-root, --splits)")
    parser.add_argument("--data-root", help="the data set's root folder")
    parser.add_argument("--splits", nargs="+", default=["train"], help="splits to extract (default: train)")
    parser.add_argument("--backbone", default="efficientnet_lite0",
                        help="efficientnet_lite0 | i3d | package.module:factory (default: efficientnet_lite0)")
    parser.add_argument("--checkpoint", help="backbone weights (required for i3d)")
    parser.add_argument("--stream", choices=("rgb", "flow"), default="rgb")
    parser.add_argument("--flow", choices=METHODS, default="dis", help="optical flow method (default: dis)")
    parser.add_argument("--size", nargs=2, type=int, metavar=("H", "W"), help="resize frames (default: as decoded)")
    parser.add_argument("--time-stride", type=int, default=TIME_STRIDE)
    parser.add_argument("--batch-frames", type=int, default=BATCH_FRAMES)
    parser.add_argument("--workers", type=int, help="decoding workers per process (default: automatic)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compile", action="store_true", help="torch.compile the backbone")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary line")
    args = parser.parse_args(argv)
    if args.dataset and not args.data_root:
        parser.error("--dataset needs --data-root")
    try:
        extract(_records(args), args.store, args.backbone, stream=args.stream,
                size=tuple(args.size) if args.size else None,
                time_stride=args.time_stride, batch_frames=args.batch_frames, device=args.device,
                workers=args.workers, progress=not args.quiet, flow_method=args.flow, checkpoint=args.checkpoint,
                compile=args.compile)
    finally:
        shutdown()  # the process group that extraction joined under torchrun (no-op in one process)


if __name__ == "__main__":
    main()
