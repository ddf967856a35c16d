"""The on-disk feature store: one float16 ``.npy`` array per clip and stream, plus an index.

Layout of a store rooted at ``root``::

    root/index.json                    per stream: the extraction config, its hash, and one entry per clip
                                       {"file": "rgb/<name>.npy", "shape": [D, T', h, w], "frames": T}
    root/<stream>/<name>.npy           float16 (D, T', h, w), D channels, T' = ceil(T / time_stride) steps
    root/journal/<stream>-r<rank>-<pid>.jsonl   entries written since the last consolidation (a JSON line per clip)
    root/failures_<stream>.csv         clips that could not be decoded: id, path, reason

Crash safety: an array is written under a temporary name and renamed (``os.replace``), and only then is its entry
appended to the journal, so an entry always points at a complete file. A torn last journal line, a stray temporary
file, or an entry whose file is missing or unreadable are ignored and that clip is redone by the next extraction
(:meth:`FeatureStore.consolidate` cleans them up). Appending a line per clip keeps the cost per clip constant;
the index is rewritten once per extraction run.

Arrays are read with ``np.load(mmap_mode="r")``: a store larger than memory can be read with flat memory use.
One store holds one backbone; ``actx.features.ensure_features`` keys stores by configuration hash. Run one
extraction per store at a time (one ``extract`` call, or one ``torchrun`` job): two concurrent runs would both do
the same clips, and one's consolidation could drop index lines of the other (those clips are redone next time).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from actx.config import config_hash
from actx.files import atomic_write, write_csv

INDEX_NAME = "index.json"
FORMAT_VERSION = 1
STREAMS = ("rgb", "flow")
FAILURE_FIELDS = ("id", "path", "reason")


def safe_name(clip_id: str) -> str:
    """A file name for a clip id: unsafe characters become ``_``; a hash suffix keeps altered names unique."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", clip_id)
    if name != clip_id or len(name) > 120 or name.startswith("."):
        name = f"{name[:100].lstrip('.')}-{hashlib.sha1(clip_id.encode()).hexdigest()[:8]}"
    return name


def _atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def _npy_shape(path: Path) -> tuple[int, ...] | None:
    """The shape of a complete float16 .npy file, or None if it is missing, truncated or not float16."""
    try:
        arr = np.load(path, mmap_mode="r")  # raises on a file shorter than its header promises
    except (OSError, ValueError, EOFError):
        return None
    return tuple(arr.shape) if arr.dtype == np.float16 else None


class FeatureStore:
    """Read (and, for ``actx.features.extract``, write) a feature store. See the module docstring for the layout.

    store = FeatureStore(root)
    store.streams, store.ids("rgb"), store.has(id, "rgb"), store.load(id, "rgb")  # (D, T', h, w) float16 memmap
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser()
        self.refresh()

    # --- reading ------------------------------------------------------------------------------------------------
    def refresh(self) -> "FeatureStore":
        """Re-read index.json and any journal lines written since (e.g. by a running extraction)."""
        self._index = self._read_index()
        for stream, entry_id, entry in self._journal_entries():
            self._stream(stream)["entries"][entry_id] = entry
        return self

    def _read_index(self) -> dict[str, Any]:
        path = self.root / INDEX_NAME
        if not path.exists():
            return {"format": FORMAT_VERSION, "streams": {}}
        try:
            index = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: the feature index is not valid JSON ({exc}); delete the store directory "
                             f"{self.root} to re-extract") from exc
        if index.get("format") != FORMAT_VERSION:
            raise ValueError(f"{path}: feature store format {index.get('format')!r}, this code reads "
                             f"{FORMAT_VERSION}; delete {self.root} to re-extract")
        return index

    def _journal_paths(self) -> list[Path]:
        return sorted((self.root / "journal").glob("*.jsonl"))

    def _journal_entries(self) -> Iterable[tuple[str, str, dict[str, Any]]]:
        for path in self._journal_paths():
            for line in path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                    yield rec["stream"], rec["id"], rec["entry"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a line torn by a crash: that clip is redone

    def _stream(self, stream: str) -> dict[str, Any]:
        return self._index["streams"].setdefault(stream, {"config": None, "hash": None, "entries": {}})

    @property
    def streams(self) -> list[str]:
        """Streams with at least one entry."""
        return sorted(s for s, v in self._index["streams"].items() if v["entries"])

    def ids(self, stream: str | None = None) -> list[str]:
        """Sorted clip ids stored for ``stream`` (None: for any stream)."""
        names = [stream] if stream is not None else list(self._index["streams"])
        out: set[str] = set()
        for s in names:
            out.update(self._index["streams"].get(s, {}).get("entries", {}))
        return sorted(out)

    def entry(self, clip_id: str, stream: str) -> dict[str, Any]:
        """The index entry of a clip: {"file", "shape": [D, T', h, w], "frames": T}; KeyError if absent."""
        entries = self._index["streams"].get(stream, {}).get("entries", {})
        if clip_id not in entries:
            raise KeyError(f"{self.root}: no {stream!r} features for clip {clip_id!r} "
                           f"({len(entries)} stored; failed clips are listed in failures_{stream}.csv)")
        return entries[clip_id]

    def has(self, clip_id: str, stream: str) -> bool:
        """True when the clip's entry is indexed and its file exists."""
        entry = self._index["streams"].get(stream, {}).get("entries", {}).get(clip_id)
        return entry is not None and (self.root / entry["file"]).exists()

    def load(self, clip_id: str, stream: str, mmap: bool = True) -> np.ndarray:
        """The clip's map, float16 (D, T', h, w): a read-only memory map (``mmap=True``) or an array in memory."""
        path = self.root / self.entry(clip_id, stream)["file"]
        try:
            return np.load(path, mmap_mode="r" if mmap else None)
        except (OSError, ValueError) as exc:
            raise OSError(f"{path}: cannot read the {stream} features of {clip_id!r} ({exc}); "
                          "re-run the extraction to redo it") from exc

    def config(self, stream: str) -> dict[str, Any] | None:
        """The extraction configuration the stream was written with (None for an empty stream)."""
        return self._index["streams"].get(stream, {}).get("config")

    def read_window(self, clip_id: str, stream: str, start: int, end: int) -> np.ndarray:
        """Time steps [start, end) of the clip's map as an array in memory, (D, end - start, h, w) float16: only
        these steps are read from disk (through a memory map)."""
        return np.array(self.load(clip_id, stream, mmap=True)[:, start:end])

    def require(self, clip_ids: Sequence[str], stream: str) -> None:
        """Raise KeyError naming the clips (of ``clip_ids``) that have no ``stream`` features."""
        missing = sorted({i for i in clip_ids if not self.has(i, stream)})
        if missing:
            raise KeyError(f"{self.root}: {len(missing)} of {len(clip_ids)} clips have no {stream!r} features, "
                           f"e.g. {missing[:5]}; extract them first (actx.features.ensure_features) or see "
                           f"{self.failures_path(stream).name} for clips that failed to decode")

    def hash(self, stream: str) -> str | None:
        return self._index["streams"].get(stream, {}).get("hash")

    def size_on_disk(self, stream: str | None = None) -> int:
        """Bytes taken by the stored arrays (of one stream, or all)."""
        dirs = [self.root / stream] if stream else [self.root / s for s in self._index["streams"]]
        return sum(p.stat().st_size for d in dirs if d.exists() for p in d.glob("*.npy"))

    def failures(self, stream: str) -> list[dict[str, str]]:
        """Rows of failures_<stream>.csv (id, path, reason) from the last extraction; empty when none failed."""
        path = self.failures_path(stream)
        if not path.exists():
            return []
        with open(path, newline="") as fh:
            return list(csv.DictReader(fh))

    def failures_path(self, stream: str) -> Path:
        return self.root / f"failures_{stream}.csv"

    def __len__(self) -> int:
        return len(self.ids())

    def __repr__(self) -> str:
        counts = ", ".join(f"{s}: {len(self.ids(s))}" for s in self.streams) or "empty"
        return f"FeatureStore({str(self.root)!r}, {counts})"

    # --- writing (used by actx.features.extract) ------------------------------------------------------------------
    def begin(self, stream: str, config: Mapping[str, Any], write: bool = True) -> None:
        """Claim ``stream`` for an extraction with ``config``; refuse to mix configurations in one stream.

        Re-reads the store first; ``write`` records the config in index.json (one process only: rank 0)."""
        self.refresh()
        config = json.loads(json.dumps(dict(config), default=str))  # as it will read back from JSON
        h = config_hash(config)
        current = self._stream(stream)
        if current["entries"] and current["hash"] not in (None, h):
            raise ValueError(f"{self.root}: stream {stream!r} holds features extracted with another configuration "
                             f"(hash {current['hash']}, {current['config']}); this run has {h} ({config}). "
                             "Use another store directory, or delete this one to re-extract")
        current["config"], current["hash"] = config, h
        if write:
            self.root.mkdir(parents=True, exist_ok=True)
            self._write_index()

    def _write_index(self) -> None:
        for stream in self._index["streams"].values():
            stream["entries"] = dict(sorted(stream["entries"].items()))
        text = json.dumps(self._index, sort_keys=True, separators=(",", ":"))
        _atomic_write_text(self.root / INDEX_NAME, text + "\n")

    def put(self, clip_id: str, stream: str, array: np.ndarray, frames: int, rank: int = 0) -> None:
        """Write one clip's map (float16 (D, T', h, w)) atomically, then journal its entry."""
        array = np.ascontiguousarray(array, dtype=np.float16)
        if array.ndim != 4:
            raise ValueError(f"{clip_id}: a feature map must be (D, T', h, w), got shape {array.shape}")
        rel = f"{stream}/{safe_name(clip_id)}.npy"
        path = self.root / rel
        def save(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.save(fh, array)

        atomic_write(path, save)
        entry = {"file": rel, "shape": list(array.shape), "frames": int(frames)}
        journal = self.root / "journal" / f"{stream}-r{rank}-{os.getpid()}.jsonl"
        journal.parent.mkdir(parents=True, exist_ok=True)
        with open(journal, "a") as fh:
            fh.write(json.dumps({"stream": stream, "id": clip_id, "entry": entry}) + "\n")
        self._stream(stream)["entries"][clip_id] = entry

    def consolidate(self, verify: bool = True) -> None:
        """Fold journals into index.json (atomically), drop entries whose file is missing or unreadable
        (``verify``), and delete stray temporary files. Call from one process only (rank 0)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.refresh()
        for stream in self._index["streams"].values():
            if verify:
                stream["entries"] = {k: e for k, e in stream["entries"].items()
                                     if _npy_shape(self.root / e["file"]) == tuple(e["shape"])}
        for tmp in list(self.root.glob("*/*.tmp*")) + list(self.root.glob("*.tmp*")):
            tmp.unlink(missing_ok=True)
        self._write_index()
        for path in self._journal_paths():
            path.unlink()

    def write_failures(self, stream: str, rows: Iterable[Mapping[str, str]]) -> Path | None:
        """Write failures_<stream>.csv (sorted by id); remove a stale one when nothing failed."""
        rows = sorted(rows, key=lambda r: r["id"])
        path = self.failures_path(stream)
        if not rows:
            path.unlink(missing_ok=True)
            return None
        return write_csv(path, ({k: r[k] for k in FAILURE_FIELDS} for r in rows), FAILURE_FIELDS)
