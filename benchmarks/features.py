"""Feature extraction throughput: end to end (decode -> [flow] -> backbone -> store) against the bare backbone.

    .venv/bin/python benchmarks/features.py [--clips 12] [--frames 64] [--reps 5] [--streams rgb flow]

Both are measured in the same run, alternating, on the default profile's frame size and batch size, with the same
prepared backbone (the profile's: EfficientNet-Lite0 at output stride 16 at default; BN folded, channels_last), every
frame through it (frame sampling is measured by benchmarks/extraction_cost.py):

- bare: ``model.forward_features`` on frames already decoded, converted to float and batched, in memory;
- end to end: :func:`actx.features.extract` on the same clips as video files into a fresh store: decoding (and
  the flow) in DataLoader workers overlapped with the backbone, or, by default on a 1-2 core CPU, in the main
  process (``actx.features.extract.default_workers``; ``--workers`` overrides), then float16 maps written.

ratio = end-to-end frames/s / bare frames/s, per repetition with each end-to-end run bracketed by two bare runs
(their mean), then the median over ``--reps``: the machine is shared, and bracketing cancels slow drifts of its
load. 1.0 means decoding, flow and writing cost nothing next to the backbone.
The last line printed is ``features ratio <value>``: the RGB stream's ratio (the bare side has nothing to decode),
with the flow stream's ratio printed above it when measured.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from actx.config import make_config
from actx.data import Record
from actx.features import compute_flow, extract, load_backbone, prepare_backbone
from actx.features.extract import BATCH_FRAMES, default_workers
from actx.video import read_video, write_video


def make_clips(folder: Path, n: int, frames: int, size: tuple[int, int], fps: int, seed: int = 0) -> list[Record]:
    """``n`` videos of a textured background panning at a random speed, with a bright square moving across."""
    import cv2

    rng = np.random.default_rng(seed)
    H, W = size
    records = []
    for k in range(n):
        speed = int(rng.integers(1, 4))
        noise = (rng.random((H, W + speed * frames, 3)) * 255).astype(np.uint8)
        tex = cv2.GaussianBlur(noise, (0, 0), 3.0)
        clip = np.stack([tex[:, t * speed: t * speed + W] for t in range(frames)])  # (T, H, W, 3)
        for t in range(frames):
            x = int(t * (W - 24) / max(frames - 1, 1))
            clip[t, H // 3: H // 3 + 24, x: x + 24] = (230, 200, 40)
        records.append(Record(video=str(write_video(folder / f"clip{k:03d}.mp4", clip, fps)), labels=(),
                              id=f"clip{k:03d}"))
    return records


def inputs_in_memory(records: list[Record], stream: str, size: tuple[int, int], chunk: int) -> list[torch.Tensor]:
    """The backbone's inputs, (n, C, H, W) float channels_last chunks, decoded (and flow computed) beforehand."""
    chunks = []
    for r in records:
        frames = read_video(r.video, size=size)  # (T, H, W, 3) uint8
        if stream == "rgb":
            x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255  # (T, 3, H, W)
        else:
            x = torch.from_numpy(compute_flow(frames)).permute(0, 3, 1, 2)  # (T, 2, H, W)
        chunks += [c.contiguous(memory_format=torch.channels_last) for c in x.split(chunk)]
    return chunks


@torch.inference_mode()
def bare_fps(model: torch.nn.Module, chunks: list[torch.Tensor]) -> float:
    frames = sum(len(c) for c in chunks)
    start = time.perf_counter()
    for c in chunks:
        model.forward_features(c)
    return frames / (time.perf_counter() - start)


def end_to_end_fps(records: list[Record], model: torch.nn.Module, stream: str, size: tuple[int, int],
                   batch_frames: int, workers: int | None, work: Path) -> float:
    root = work / f"store-{stream}"
    shutil.rmtree(root, ignore_errors=True)
    summary = extract(records, root, model, stream=stream, size=size, batch_frames=batch_frames, device="cpu",
                      workers=workers, progress=False, backbone_id=type(model).__name__)
    if summary.extracted != len(records):
        raise RuntimeError(f"benchmark extraction stored {summary.extracted} of {len(records)} clips: {summary}")
    return summary.fps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--frames", type=int, default=None, help="frames per clip (default: the profile's)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--streams", nargs="+", choices=("rgb", "flow"), default=["rgb", "flow"])
    parser.add_argument("--workers", type=int, default=None, help="decoding workers (default: automatic)")
    parser.add_argument("--profile", default="default")
    args = parser.parse_args()

    cfg = make_config(args.profile, device="cpu")
    size = tuple(cfg.features["size"])
    frames = args.frames or cfg.data["thread_frames"]
    batch_frames = cfg.features.get("batch_frames", BATCH_FRAMES)
    print(f"profile {args.profile}: {args.clips} clips x {frames} frames at {size[0]}x{size[1]}, batch "
          f"{batch_frames}, torch threads {torch.get_num_threads()}, decoding workers "
          f"{default_workers('cpu') if args.workers is None else args.workers}")
    ratios = {}
    with tempfile.TemporaryDirectory(prefix="actx-bench-features-") as tmp:
        work = Path(tmp)
        records = make_clips(work, args.clips, frames, size, int(cfg.data["fps"]))
        for stream in args.streams:
            raw = load_backbone(cfg.features["backbone"], stream)  # the profile's backbone
            model = prepare_backbone(raw, "cpu")  # the same preparation extract() applies
            chunks = inputs_in_memory(records, stream, size, batch_frames)
            bare_fps(model, chunks[:4])  # warm-up (oneDNN primitive caches)
            bare, e2e, rep_ratios = [bare_fps(model, chunks)], [], []
            for rep in range(args.reps):  # bare, e2e, bare, e2e, ..., bare: each e2e between two bare runs
                e2e.append(end_to_end_fps(records, raw, stream, size, batch_frames, args.workers, work))
                bare.append(bare_fps(model, chunks))
                rep_ratios.append(e2e[-1] / statistics.mean(bare[-2:]))
                print(f"{stream} rep {rep}: bare {bare[-2]:.1f} / {bare[-1]:.1f} frames/s, end to end {e2e[-1]:.1f} "
                      f"frames/s, ratio {rep_ratios[-1]:.3f}", flush=True)
            ratios[stream] = statistics.median(rep_ratios)
            print(f"{stream}: bare {statistics.median(bare):.1f} frames/s, end to end {statistics.median(e2e):.1f} "
                  f"frames/s, ratio {ratios[stream]:.3f} (median over {args.reps} bracketed reps)")
    if "flow" in ratios:
        print(f"features flow ratio {ratios['flow']:.3f}")
    print(f"features ratio {ratios.get('rgb', ratios.get('flow')):.3f}")


if __name__ == "__main__":
    main()
