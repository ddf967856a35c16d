"""Video I/O with PyAV: decoding, encoding, frame sampling and resizing. Nothing else in actx opens videos.

Reading returns uint8 RGB arrays, (T, H, W, 3) for a video and (H, W, 3) for a still image. The sampling
options (``size``, ``every``, ``start``/``end``, ``fps``, ``max_frames``) are applied while decoding, so
:func:`iter_frames` runs in constant memory on long videos.

Every unreadable input raises :class:`VideoError` naming the file and the reason (missing file, directory,
empty file, not a video, truncated or corrupt stream, no video stream, zero decodable frames); PyAV/ffmpeg
exceptions never escape bare, and a read never returns an empty array.

Times are in seconds from the start of the video stream (the first frame is at t = 0 for the files we write),
measured by frame timestamps, not frame indices, so they mean the same thing at any frame rate.

What we write is H.264 (libx264) in yuv420p, the combination every player and decoder supports.
"""

from __future__ import annotations

import itertools
import os
import struct
import uuid
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Iterator

import av
import cv2
import numpy as np

CODEC = "libx264"
PIX_FMT = "yuv420p"  # 4:2:0 chroma: what every decoder plays; it needs even H and W
DEFAULT_CRF = 20  # x264 constant quality, a notch better than its default 23: near-lossless on our frames
DEFAULT_PRESET = "veryfast"  # twice the encode speed of crf 20 "medium" here (PLATFORM.md), a little larger
# x264 settings that make the bytes a function of the frames alone. With its defaults (macroblock-tree rate control
# over a 40-frame lookahead) this build of libx264 encoded the same frames to different bytes and pixels from one
# call to the next, pinned to one core or not and with one thread or several: two renders of the benchmark differed
# in 4-60 % of their decoded pixel values, and so did their features and every number after them. Without the
# lookahead (constant quality per frame still holds: crf) every encode of the same frames is the same file, on any
# number of cores. tests/test_video.py checks it.
X264_PARAMS = "mbtree=0:rc-lookahead=0"
KEYFRAME_SECONDS = 2.0  # keyframe interval: bounds what a seek must decode (x264's default: 250 frames)
SEEK_AFTER_S = 10.0  # windows starting later seek; earlier ones decode from the start, which keeps the
#                      truncation check and costs little (10 s of small frames decode in a fraction of 1 s)
FASTSTART_SUFFIXES = (".mp4", ".m4v", ".mov")  # index ('moov') first: a cut file still opens and reads partly
# ffmpeg renders text files (.txt, .nfo, ANSI art) as "video" with these demuxers; never a real video
TEXT_DEMUXERS = frozenset({"tty", "bin", "xbin", "adf", "idf"})

# What PyAV raises: FFmpegError (a ValueError/OSError subclass per errno), plain OSError/EOFError, and
# IndexError or ValueError on some malformed containers. Only calls into PyAV are wrapped, not our own code.
_AV_ERRORS = (av.error.FFmpegError, OSError, EOFError, ValueError, IndexError)


class VideoError(Exception):
    """An unreadable video or image (or an encoder failure): ``.path`` names the file, ``.reason`` says why.

    ``str(e)`` is ``"<path>: <reason>"`` plus, where there is one, a hint on what to do.
    """

    def __init__(self, path: str | os.PathLike, reason: str, hint: str = ""):
        self.path, self.reason, self.hint = str(path), reason, hint
        super().__init__(f"{self.path}: {reason}" + (f"; {hint}" if hint else ""))


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` reads from the container header (and the first decoded frame).

    frames    frames the file codes: for AVI the non-empty entries of its index; else the count the container
              declares (counted from its packets when it declares none: MKV)
    fps       average frame rate (frames per second)
    height, width   size of the decoded frames in pixels
    duration  seconds
    codec     ffmpeg decoder name ("h264", "mpeg4", ...)
    """

    frames: int
    fps: float
    height: int
    width: int
    duration: float
    codec: str


# ----------------------------------------------------------------------------------------------------------
# Opening files and naming what is wrong with them
# ----------------------------------------------------------------------------------------------------------

def _check_file(path: str | os.PathLike) -> Path:
    """The checks that need no decoder: missing, directory, empty, unreadable."""
    p = Path(path)
    if not p.exists():
        raise VideoError(p, "missing file", "check the path (is the data set there, is DATA_ROOT right?)")
    if p.is_dir():
        raise VideoError(p, "is a directory, not a file")
    if p.stat().st_size == 0:
        raise VideoError(p, "empty file (0 bytes)", "its writer probably failed; recreate it")
    if not os.access(p, os.R_OK):
        raise VideoError(p, "permission denied")
    return p


def _mp4_structure_problem(p: Path) -> str | None:
    """Walk the top-level MP4/MOV boxes; say how the file is cut short or lacks its index, else None."""
    size = p.stat().st_size
    seen, pos = [], 0
    with open(p, "rb") as f:
        while pos + 8 <= size:
            f.seek(pos)
            box_size, kind = struct.unpack(">I4s", f.read(8))
            name = kind.decode("latin-1")
            if box_size == 1 and pos + 16 <= size:  # 64-bit size follows the type
                box_size = struct.unpack(">Q", f.read(8))[0]
            elif box_size == 0:  # the box runs to the end of the file
                box_size = size - pos
            if box_size < 8:
                return f"malformed '{name}' box at byte {pos}"
            if pos + box_size > size:
                return (f"the '{name}' box at byte {pos} needs {box_size} bytes but the file ends "
                        f"{size - pos} bytes later (file cut short)")
            seen.append(name)
            pos += box_size
    if "moov" not in seen:
        return "no 'moov' index box (the writer stopped before finishing the file)"
    return None


# AVI layout, from Microsoft's "AVI RIFF File Reference": RIFF('AVI ' LIST('hdrl' ...) LIST('movi' ...)
# ['idx1' <AVIOLDINDEX>]), chunks padded to an even size; an OpenDML file (>1 GB) adds RIFF('AVIX' ...) parts.
# An idx1 entry (AVIOLDINDEX) is 16 bytes: chunk id ('00dc' = stream 0, compressed video), flags, offset,
# size. A zero-size '##dc' entry is a "dropped frame": the writer (ffmpeg's included) keeps the frame's time
# slot and its place in the declared frame count, but codes nothing; the decoder returns no frame for it.
_RIFF_HEADER = struct.Struct("<4sI")  # chunk id, size of the data that follows
_AVI_INDEX_ENTRY = struct.Struct("<4sIII")  # chunk id, flags, offset, size
_AVI_FRAME_CHUNKS = (b"dc", b"db")  # '##dc' compressed and '##db' uncompressed video frames


@dataclass(frozen=True)
class _AviLayout:
    """What the RIFF chunk walk of an AVI file found.

    problem   how the file is cut short or malformed, else None
    entries   idx1 entries of the video stream (None when there is no usable idx1: absent, or an OpenDML file
              whose idx1 covers only its first part)
    coded     the non-empty ones among them: the frames the file really codes
    """

    problem: str | None
    entries: int | None = None
    coded: int | None = None


def _avi_layout(p: Path, stream_number: int = 0) -> _AviLayout:
    """Walk the RIFF chunks of an AVI file (headers only, then its idx1) and count stream ``stream_number``'s
    frames in the index: all entries, and the non-empty ones."""
    size = p.stat().st_size
    with open(p, "rb") as f:
        riff_id, riff_size = _RIFF_HEADER.unpack(f.read(8))
        riff_end = 8 + riff_size
        if riff_end > size:
            return _AviLayout(f"the 'RIFF' chunk needs {riff_end} bytes but the file has {size} "
                              "(file cut short)")
        idx1, pos = None, 12
        while pos + 8 <= riff_end:
            f.seek(pos)
            kind, length = _RIFF_HEADER.unpack(f.read(8))
            name = kind.decode("latin-1")
            if kind == b"LIST":
                name = f"LIST '{f.read(4).decode('latin-1')}'"
            if pos + 8 + length > riff_end:
                return _AviLayout(f"the {name!s} chunk at byte {pos} needs {8 + length} bytes but the 'RIFF' "
                                  f"chunk ends {riff_end - pos} bytes later (file cut short)")
            if kind == b"idx1":
                idx1 = (pos + 8, length)
            pos += 8 + length + (length & 1)
        f.seek(riff_end + (riff_end & 1))
        more_parts = f.read(12)[8:] == b"AVIX"  # OpenDML: idx1, if any, indexes only the first part
        if idx1 is None or more_parts:
            return _AviLayout(None)
        f.seek(idx1[0])
        table = f.read(idx1[1] - idx1[1] % _AVI_INDEX_ENTRY.size)
    ours = b"%02d" % stream_number
    sizes = [n for ck, _, _, n in _AVI_INDEX_ENTRY.iter_unpack(table)
             if ck[:2] == ours and ck[2:] in _AVI_FRAME_CHUNKS]
    return _AviLayout(None, len(sizes), sum(1 for n in sizes if n))


def _container_kind(p: Path) -> str | None:
    """The container family a file's first bytes announce (MP4/MOV, AVI, Matroska/WebM), else None."""
    with open(p, "rb") as f:
        head = f.read(12)
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide"):
        return "MP4/MOV"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "AVI"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "Matroska/WebM"
    return None


def _damaged_container(p: Path, why: str | None = None) -> VideoError | None:
    """A VideoError for a file that announces a video container but is cut short or broken, else None.

    MP4/MOV files are checked box by box and AVI files chunk by chunk (cheap: headers only); other families
    only get ``why``, the reason ffmpeg gave for not opening them.
    """
    kind = _container_kind(p)
    if kind is None:
        return None
    problem = (_mp4_structure_problem(p) if kind == "MP4/MOV" else _avi_layout(p).problem if kind == "AVI"
               else None)
    if problem is None and why is None:
        return None
    problem = problem or f"ffmpeg cannot parse it: {why}"
    return VideoError(p, f"truncated or corrupt {kind} container: {problem}",
                      "re-download or re-encode the file")


def _open_failure(p: Path, exc: BaseException) -> VideoError:
    """Turn an exception from ``av.open`` into a VideoError that says truncated/corrupt or not a video."""
    if isinstance(exc, PermissionError):
        return VideoError(p, "permission denied")
    why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return _damaged_container(p, why) or VideoError(p, f"not a video (ffmpeg cannot parse it: {why})")


def _open(path: str | os.PathLike) -> tuple[Any, Any, Path]:
    """Open ``path`` with PyAV; return (container, its first video stream, path) or raise VideoError."""
    p = _check_file(path)
    try:
        container = av.open(str(p), "r")
    except _AV_ERRORS as exc:
        raise _open_failure(p, exc) from exc
    try:
        if container.format.name in TEXT_DEMUXERS:
            raise VideoError(p, f"not a video (ffmpeg reads it as text, format '{container.format.name}')")
        if not container.streams.video:
            damaged = _damaged_container(p)  # a cut MP4 index can leave only a stub 'data' stream
            if damaged is not None:
                raise damaged
            found = ", ".join(f"{s.type} ({s.codec_context.name if s.codec_context else '?'})"
                              for s in container.streams) or "none at all"
            raise VideoError(p, "no video stream", f"streams found: {found}")
        return container, container.streams.video[0], p
    except BaseException:
        container.close()
        raise


def _stream_fps(stream: Any) -> Fraction | None:
    """Average frame rate, else ffmpeg's guess, else the stream's base rate; None when it has none."""
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return Fraction(rate)
    return None


# ----------------------------------------------------------------------------------------------------------
# Decoding
# ----------------------------------------------------------------------------------------------------------

# Frames a container may declare beyond what decodes cleanly before we call the file truncated: MP4s with edit
# lists and decoders that hold back a last frame routinely miss one or two; a cut file misses many more.
# AVIs are compared with the frames their index codes (dropped-frame entries left out), not the declared one.
FRAME_COUNT_SLACK = 2


class _Decoded:
    """Decodes one video stream into (t, av.VideoFrame), t in seconds (Fraction) from the stream start.

    At the end of the stream it checks that something decoded, and that nothing is missing (a truncated file),
    unless ``allow_partial``: against the frames an AVI's index codes (its zero-size dropped-frame entries
    code none), else against the frame count the container declares. A decoder error on a packet
    raises at once, unless ``allow_partial``, which skips the packet and carries on. ``decoded`` and
    ``last_t`` (count and time of the last frame) are kept for messages.
    """

    def __init__(self, container: Any, stream: Any, path: Path, allow_partial: bool,
                 seek_to: float | None = None):
        self.container, self.stream, self.path = container, stream, path
        self.allow_partial, self.seek_to = allow_partial, seek_to
        self.decoded, self.last_t = 0, None
        fps = _stream_fps(stream)
        self.frame_dur = 1 / fps if fps else Fraction(0)

    def _time(self, frame: Any, t0: int) -> Fraction:
        if frame.pts is None or frame.time_base is None:  # no timestamp: one frame after the previous one
            return Fraction(0) if self.last_t is None else self.last_t + self.frame_dur
        return (frame.pts - t0) * Fraction(frame.time_base)

    def __iter__(self) -> Iterator[tuple[Fraction, Any]]:
        stream, t0 = self.stream, self.stream.start_time or 0
        if self.seek_to is not None:
            self.container.seek(t0 + int(self.seek_to / Fraction(stream.time_base)), stream=stream,
                                backward=True, any_frame=False)
        packets = self.container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except _AV_ERRORS as exc:
                self._fail(f"the demuxer failed after {self.decoded} frames: {exc}", exc)
                break
            try:
                frames = packet.decode()
            except _AV_ERRORS as exc:
                self._fail(f"the decoder failed at packet t={_seconds(packet, t0)} after {self.decoded} "
                           f"frames{self._of_declared()}: {getattr(exc, 'strerror', None) or exc}", exc)
                continue
            for frame in frames:
                t = self._time(frame, t0)
                self.decoded, self.last_t = self.decoded + 1, t
                yield t, frame
        self._check_end()

    def _of_declared(self) -> str:
        return f" of {self.stream.frames} declared" if self.stream.frames else ""

    def _avi_layout(self) -> _AviLayout | None:
        if self.container.format.name != "avi":
            return None
        return _avi_layout(self.path, self.stream.index)

    def _fail(self, what: str, exc: BaseException) -> None:
        if not self.allow_partial:
            raise VideoError(self.path, f"truncated or corrupt stream: {what}",
                             "pass allow_partial=True to keep the frames that decode") from exc

    def _check_end(self) -> None:
        if self.seek_to is not None:  # a seek skipped frames: no count to check (the caller checks emptiness)
            return
        declared = self.stream.frames
        if self.decoded == 0:
            said = f" (the container declares {declared})" if declared else ""
            raise VideoError(self.path, "zero decodable frames" + said)
        if not declared or declared - self.decoded <= FRAME_COUNT_SLACK or self.allow_partial:
            return
        avi = self._avi_layout()
        if avi is not None and avi.coded is not None:
            if avi.coded - self.decoded <= FRAME_COUNT_SLACK:
                return  # complete: the missing frames are the index's dropped-frame entries
            what = (f"decoded {self.decoded} of the {avi.coded} frames the AVI index codes "
                    f"({avi.entries - avi.coded} more entries are empty dropped-frame chunks)")
        else:
            what = f"decoded {self.decoded} of {declared} declared frames"
            if avi is not None:
                what += f"; {avi.problem or 'the AVI has no idx1 index to count its coded frames'}"
        raise VideoError(self.path, f"truncated stream: {what}",
                         "pass allow_partial=True to keep the frames that decode")


def _seconds(packet: Any, t0: int) -> str:
    if packet.pts is None or packet.time_base is None:
        return "?"
    return f"{float((packet.pts - t0) * Fraction(packet.time_base)):.3f}s"


def _window(frames: Iterable[tuple[Fraction, Any]], start: float | None, end: float | None):
    """Keep frames with start <= t < end (by timestamp); stop decoding at the first frame past ``end``."""
    for t, frame in frames:
        if start is not None and t < start:
            continue
        if end is not None and t >= end:
            return
        yield t, frame


def _resample(frames: Iterable[tuple[Fraction, Any]], fps: Fraction, frame_dur: Fraction, end: float | None):
    """Nearest-timestamp resampling to ``fps``.

    Target times t_k = t_first + k / fps each take the frame whose timestamp is nearest (ties go to the
    earlier frame): frames are dropped when slowing down and repeated when speeding up. Targets run while
    t_k < end and t_k < t_last + frame_dur (the end of the last frame; with no known frame rate, the last
    frame's own time).
    """
    step, target, prev = 1 / fps, None, None
    for t, frame in frames:
        if prev is None:
            target = t
        else:
            middle = (prev[0] + t) / 2  # targets up to here are nearer to prev than to this frame
            while target <= middle and (end is None or target < end):
                yield target, prev[1]
                target += step
        prev = (t, frame)
    if prev is not None:
        stop = prev[0] + max(frame_dur, Fraction(1, 10**9))  # at least the last frame itself
        while target < stop and (end is None or target < end):
            yield target, prev[1]
            target += step


def _resize(rgb: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """(H, W, 3) -> size=(h, w): cv2.INTER_AREA when shrinking (no aliasing), INTER_LINEAR otherwise."""
    if size is None or rgb.shape[:2] == tuple(size):
        return rgb
    h, w = size
    shrink = h <= rgb.shape[0] and w <= rgb.shape[1]
    return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)  # (h, w, 3)


def _to_rgb(frame: Any, size: tuple[int, int] | None) -> np.ndarray:
    """One decoded frame as uint8 RGB (H, W, 3), resized to ``size``."""
    return _resize(frame.to_ndarray(format="rgb24"), size)  # (H, W, 3)


def _check_options(size, every, start, end, fps, max_frames) -> None:
    if size is not None:
        if len(size) != 2 or not all(isinstance(v, (int, np.integer)) and v > 0 for v in size):
            raise ValueError(f"size must be (H, W) with two positive ints, got {size!r}")
    if not isinstance(every, (int, np.integer)) or every < 1:
        raise ValueError(f"every must be an int >= 1, got {every!r}")
    if fps is not None and every != 1:
        raise ValueError("give either every=k (keep every k-th frame) or fps=target (resample), not both")
    if fps is not None and not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps!r}")
    if start is not None and start < 0:
        raise ValueError(f"start must be >= 0 seconds, got {start!r}")
    if start is not None and end is not None and end <= start:
        raise ValueError(f"end ({end}) must be greater than start ({start})")
    if max_frames is not None and (not isinstance(max_frames, (int, np.integer)) or max_frames < 1):
        raise ValueError(f"max_frames must be an int >= 1, got {max_frames!r}")


def _timed_frames(p: Path, start: float | None, allow_partial: bool):
    """(t, frame) for the whole stream, or from the keyframe before ``start`` when it is late enough to seek.

    A seek that lands after ``start`` (an imprecise index) is not trusted: the file is decoded from the start.
    Yields the _Decoded object first, then its frames.
    """
    if start is not None and start > SEEK_AFTER_S:
        container, stream, _ = _open(p)
        with container:
            decoded = _Decoded(container, stream, p, allow_partial, seek_to=start)
            try:
                frames = iter(decoded)
                first = next(frames, None)
            except _AV_ERRORS:  # the container cannot seek: decode from the start below
                first = None
            if first is not None and first[0] <= start:
                yield decoded
                yield first
                yield from frames
                return
    container, stream, _ = _open(p)
    with container:
        decoded = _Decoded(container, stream, p, allow_partial)
        yield decoded
        yield from decoded


def iter_frames(path: str | os.PathLike, size: tuple[int, int] | None = None, every: int = 1,
                start: float | None = None, end: float | None = None, fps: float | None = None,
                max_frames: int | None = None, allow_partial: bool = False) -> Iterator[np.ndarray]:
    """Yield uint8 RGB frames (H, W, 3) one by one, in constant memory; options as in :func:`read_video`.

    Bad options and a missing/empty file raise at the call; decoding errors raise when iteration reaches them
    (truncation only after the frames before it have been yielded).
    """
    _check_options(size, every, start, end, fps, max_frames)
    return _iter_frames(_check_file(path), size, every, start, end, fps, max_frames, allow_partial)


def _iter_frames(p: Path, size, every, start, end, fps, max_frames, allow_partial) -> Iterator[np.ndarray]:
    source = _timed_frames(p, start, allow_partial)
    try:
        decoded = next(source)
        frames = _window(source, start, end)
        if fps is not None:
            frames = _resample(frames, Fraction(fps).limit_denominator(10**6), decoded.frame_dur, end)
        elif every > 1:
            frames = itertools.islice(frames, 0, None, every)
        if max_frames is not None:
            frames = itertools.islice(frames, max_frames)
        n, last = 0, (None, None)
        for _, frame in frames:
            # a frame repeated by fps resampling is converted once; each yield is its own array
            rgb = last[1].copy() if frame is last[0] else _to_rgb(frame, size)
            last = (frame, rgb)
            n += 1
            yield rgb
    finally:
        source.close()  # closes the container even when the window ends before the stream
    if n == 0:
        seen = ("none decoded" if decoded.last_t is None
                else f"its frames span 0 to {float(decoded.last_t):.3f} s")
        raise VideoError(p, f"no frames in the requested window start={start}, end={end} ({seen})")


def read_video(path: str | os.PathLike, size: tuple[int, int] | None = None, every: int = 1,
               start: float | None = None, end: float | None = None, fps: float | None = None,
               max_frames: int | None = None, allow_partial: bool = False) -> np.ndarray:
    """Decode a video into a uint8 RGB array (T, H, W, 3).

    size          (H, W): resize every frame (cv2.INTER_AREA when shrinking, INTER_LINEAR otherwise)
    every         keep every k-th frame of the window (the first one included)
    start, end    seconds: keep frames whose timestamp t satisfies start <= t < end
    fps           resample the window to this rate by nearest timestamp (drops or repeats frames);
                  cannot be combined with ``every``
    max_frames    stop after this many output frames
    allow_partial return the frames that decode from a truncated or corrupt file instead of raising

    Raises VideoError (naming the file) for any unreadable input, and when the window holds no frame.
    """
    frames = list(iter_frames(path, size, every, start, end, fps, max_frames, allow_partial))
    return np.stack(frames)  # (T, H, W, 3)


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Frame count, fps, size, duration and codec of a video, from its header and its first decoded frame.

    ``frames`` of an AVI is what its index codes: the zero-size "dropped frame" entries, which the header's
    count includes but which decode to nothing, are left out (a J-HMDB clip declaring 48 frames and coding 40
    reports 40; ``duration`` still spans all 48 time slots).

    Raises VideoError like :func:`read_video`. Truncation is seen in MP4/MOV and AVI files from their box or
    chunk structure; in other containers only decoding the whole file (read_video / iter_frames) finds it.
    """
    container, stream, p = _open(path)
    with container:
        damaged = _damaged_container(p)
        if damaged is not None:
            raise damaged
        # _Decoded raises "zero decodable frames" itself when the stream ends before a first frame
        decoded = _Decoded(container, stream, p, allow_partial=False)
        _, first = next(iter(decoded))
        avi = decoded._avi_layout()
        declared, rate = stream.frames, _stream_fps(stream)
        seconds = (stream.duration * Fraction(stream.time_base) if stream.duration and stream.time_base
                   else Fraction(container.duration or 0, av.time_base))
        codec, height, width = stream.codec_context.name, first.height, first.width
    coded = avi.coded if avi is not None else None
    frames = coded or declared or _count_packets(p)
    if not rate and not seconds:
        raise VideoError(p, "no frame rate: the header declares neither a frame rate nor a duration")
    rate = rate or frames / seconds
    seconds = seconds or frames / rate
    return VideoInfo(frames=int(frames), fps=float(rate), height=int(height), width=int(width),
                     duration=float(seconds), codec=codec)


def _count_packets(p: Path) -> int:
    """Non-empty video packets (one per frame for the codecs we meet), for containers declaring no count."""
    container, stream, _ = _open(p)
    with container:
        try:
            return sum(1 for packet in container.demux(stream) if packet.size)
        except _AV_ERRORS as exc:
            raise VideoError(p, f"truncated or corrupt stream: the demuxer failed: {exc}") from exc


def read_image(path: str | os.PathLike, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read a still image as uint8 RGB (H, W, 3) with OpenCV; size=(H, W) resizes as in :func:`read_video`.

    Grey and 16-bit images are converted to 8-bit RGB, alpha is dropped. Raises VideoError like read_video.
    """
    _check_options(size, 1, None, None, None, None)
    p = _check_file(path)
    data = np.fromfile(p, dtype=np.uint8)  # cv2.imdecode of the bytes = cv2.imread, also for non-ASCII paths
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)  # (H, W, 3) BGR, or None
    if bgr is None:
        raise VideoError(p, "not an image (OpenCV cannot decode it)")
    return _resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size)  # (H, W, 3)


# ----------------------------------------------------------------------------------------------------------
# Encoding
# ----------------------------------------------------------------------------------------------------------

def _checked_frames(frames: np.ndarray | Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Yield (H, W, 3) uint8 frames, checking each one; the first fixes H and W."""
    if isinstance(frames, np.ndarray) and (frames.ndim != 4 or frames.shape[-1] != 3):
        raise ValueError(f"frames must be uint8 (T, H, W, 3) RGB, got an array of shape {frames.shape}")
    shape = None
    for i, frame in enumerate(frames):
        frame = np.asarray(frame)
        if frame.dtype != np.uint8:
            raise ValueError(f"frame {i} has dtype {frame.dtype}, not uint8; "
                             "convert with np.clip(x, 0, 255).astype(np.uint8)")
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame {i} must be (H, W, 3) RGB, got shape {frame.shape}")
        if shape is None:
            shape = frame.shape
            if shape[0] % 2 or shape[1] % 2:
                raise ValueError(f"frames are {shape[0]}x{shape[1]} (HxW): yuv420p needs an even height and "
                                 "width; crop or resize to even sizes first")
        elif frame.shape != shape:
            raise ValueError(f"frame {i} has shape {frame.shape} but frame 0 had {shape}: "
                             "all frames need one size")
        yield frame


def _encode(tmp: Path, final: Path, frames: Iterable[np.ndarray], fps: float, crf: int, preset: str
            ) -> int:
    """Encode frames into ``tmp`` (named for ``final`` in errors); return the number of frames written."""
    frames = _checked_frames(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError(f"no frames to write to {final}")
    rate = Fraction(fps).limit_denominator(1001)  # 29.97 -> 30000/1001
    options = {"movflags": "+faststart"} if final.suffix.lower() in FASTSTART_SUFFIXES else {}
    try:
        container = av.open(str(tmp), "w", options=options)
    except _AV_ERRORS as exc:
        raise ValueError(f"cannot write {final}: ffmpeg has no muxer for '{final.suffix}' ({exc}); "
                         "use .mp4, .mkv, .mov or .avi") from exc
    n = 0
    with container:
        try:
            stream = container.add_stream(CODEC, rate=rate)
            stream.height, stream.width = first.shape[:2]
            stream.pix_fmt = PIX_FMT
            stream.codec_context.gop_size = max(1, round(KEYFRAME_SECONDS * float(rate)))
            stream.options = {"crf": str(crf), "preset": str(preset), "x264-params": X264_PARAMS}
            for n, rgb in enumerate(itertools.chain([first], frames), start=1):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                frame.pts = n - 1
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))  # flush the encoder's delayed frames
        except _AV_ERRORS as exc:
            if isinstance(exc, ValueError) and not isinstance(exc, av.error.FFmpegError):
                raise  # our own argument checks
            raise VideoError(final, f"cannot write: ffmpeg failed: {exc}") from exc
    return n


def write_video(path: str | os.PathLike, frames: np.ndarray | Iterable[np.ndarray], fps: float,
                crf: int = DEFAULT_CRF, preset: str = DEFAULT_PRESET) -> Path:
    """Write uint8 RGB frames, (T, H, W, 3) or an iterable of (H, W, 3), as H.264 (libx264, yuv420p).

    The file is written under a temporary name in the same folder, then renamed: ``path`` is never half
    written, and a failure leaves any earlier file there untouched. Parent folders are created.
    Odd H or W raise ValueError (yuv420p halves the chroma resolution). MP4/MOV get their index first
    (faststart). Returns ``path`` as a Path.
    """
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}.partial{path.suffix}")  # unique per call
    try:
        _encode(tmp, path, frames, fps, crf, preset)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
