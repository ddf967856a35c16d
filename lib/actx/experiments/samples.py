"""Training and evaluation samples on the stored feature maps: action windows and their conjugate windows.

The action sample of a thread is its action window (:func:`actx.conjugates.action_window`: every feature step
that overlaps an action frame), cut out of the thread's stored map. Training samples are cropped at random by
the training loop (``cfg.train["crop"]``, :class:`actx.train.TemporalCrop`); evaluation uses whole windows
(ActX 000 section 4.1.2: "at test time, temporal cropping is unnecessary").

With a pairs table (actx.conjugates: one row per (action sample, conjugate sample), windows in frames), each
training sample gets, per epoch, one of its rows, drawn by a generator seeded with (seed, epoch, index): the
choice depends on nothing else, so a resumed run sees exactly the same pairs. The row gives both windows: for
thread conjugates the sample window is the action window and the conjugate the pre- or post-action part of the
thread (ActX 4.1); for "imperfect" conjugates the sample window is the table's temporal crop and the conjugate
the window right before or after it (ActX 4.2). A sample without any row still trains: its conjugate is a
zero-length map, so its ``"cmask"`` row is all False (see
:func:`actx.experiments.methods.optional_conjugates`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from actx.conjugates import action_window
from actx.data.records import multi_hot
from actx.features import FeatureStore, frames_to_steps

from .inputs import INPUTS, check_inputs, on_map

# Pairs-table kinds whose conjugates are windows of stored video maps. "still" conjugates are generated images
# (VOC-style still-image experiment), which have no video feature map.
VIDEO_KINDS = ("thread", "imperfect", "neighbour")
# ... and the kinds WindowSamples reads: "still" rows too, once the still conjugates' maps are in the store (the
# VOC chapter, actx.experiments.stills, stores each as a one-step map under the row's conjugate_id). A still's
# window is its whole one-step map, whatever the frame columns say.
MAP_KINDS = VIDEO_KINDS + ("still",)

Transform = Callable[[torch.Tensor], torch.Tensor]

# Bytes of feature windows a WindowSamples keeps in memory after their first read (per instance, so per DataLoader
# worker process). Opening a stored map costs about 0.4 ms (np.load of a memory map), and training and the
# per-epoch evaluation open every window every epoch: in a default-profile run that took more time than the
# training steps themselves. Windows are kept in the order first read until the budget is spent, and never evicted:
# under the loop's cyclic access an LRU cache smaller than the data would miss every time, while this one
# still serves the windows it holds. 256 MiB holds every window of a default-profile run, twice over
# (measured: 118 MB for the RGB training set with its conjugate windows, 30 MB per test split); 0 turns it off.
WINDOW_CACHE_BYTES = 256 << 20


def action_steps(record: Any, total_steps: int, time_stride: int = 8) -> tuple[int, int]:
    """The record's action window as feature steps [s, e) of its stored map."""
    a0, a1 = action_window(record, time_stride)
    return frames_to_steps(a0, a1, time_stride, total_steps)


def _frame_steps(start: int, end: int, time_stride: int, total: int, what: str) -> tuple[int, int]:
    if start % time_stride or end % time_stride:
        raise ValueError(f"{what}: window [{start}, {end}) is not aligned to the feature stride "
                         f"{time_stride}")
    s, e = frames_to_steps(int(start), int(end), time_stride, total)
    if e - s != (end - start) // time_stride:
        raise ValueError(f"{what}: window [{start}, {end}) reaches past the stored map's {total} steps")
    return s, e


class WindowSamples(Dataset):
    """Action windows of ``records`` as samples ``{"f": (D, T, h, w) float16, "y": (C,), "index"}``, plus
    ``"cf"`` (D, T', h, w) and ``"key"`` (the pair's id, :meth:`pair_key`) when ``pairs`` is given.

    store        the feature store holding every record (and conjugate) for ``stream``
    records      records with ``.id``, ``.labels``, ``.extra["action_frames"]`` and ``.extra["frames"]``
    classes      the class order of ``"y"``
    pairs        a pairs table (actx.conjugates COLUMNS) or None (no conjugates)
    time_stride  frames per feature step (the pairs' windows are in frames aligned to it)
    seed         seeds the per-epoch conjugate choice with (seed, epoch, index)
    transform    applied to every map read (``"f"`` and ``"cf"``), e.g. a fixed feature normalisation
    cache_bytes  windows kept in memory after their first read (see WINDOW_CACHE_BYTES; 0: none)
    inputs       names of extra per-step inputs (actx.experiments.inputs.INPUTS), each added to a sample as a
                 (T, ...) array over the same steps as "f"
    geometry     the maps' cell geometry (actx.experiments.map_cells): the inputs' positions are moved onto it
                 (actx.experiments.inputs.on_map); None keeps them as fractions of the frame
    """

    def __init__(self, store: FeatureStore, records: Sequence[Any], classes: Sequence[str],
                 stream: str = "rgb", pairs: pd.DataFrame | None = None, time_stride: int = 8, seed: int = 0,
                 transform: Transform | None = None, cache_bytes: int = WINDOW_CACHE_BYTES,
                 inputs: Sequence[str] = (), geometry: Any = None):
        self.store, self.stream, self.classes = store, stream, tuple(classes)
        self.time_stride, self.seed, self.epoch, self.transform = int(time_stride), int(seed), 0, transform
        self.cache_bytes, self._cache, self._held = int(cache_bytes), {}, 0  # (clip id, start, end) -> window
        self.ids = [r.id for r in records]
        store.require(self.ids, stream)
        self.labels = multi_hot([r.labels for r in records], self.classes, self.ids)  # (N, C) float32
        self.windows = [action_steps(r, self._steps(r.id), self.time_stride) for r in records]  # steps [s, e)
        frames = [action_window(r, self.time_stride) for r in records]
        self.frames = np.array(frames, dtype=np.int64).reshape(-1, 2)  # (N, 2) action-window frames [a0, a1)
        self.options = None if pairs is None else self._options(pairs)
        check_inputs(tuple(inputs))
        self.inputs = {name: [INPUTS[name](r, self._steps(r.id), self.time_stride) for r in records]
                       for name in inputs}  # name -> per record (T_stored, ...) arrays
        # what every pair key holds besides the two windows (see pair_key); None when the transform cannot say
        # exactly what it does, and then no sample gets a key
        transform_key = None if transform is None else getattr(transform, "key", None)
        self._key_base = (None if transform is not None and transform_key is None
                          else f"{Path(store.root).resolve()}|{stream}|{transform_key}")
        if geometry is not None:
            self.inputs = {name: [on_map(name, a, geometry) for a in arrays] for name, arrays in self.inputs.items()}

    def _steps(self, clip_id: str) -> int:
        return int(self.store.entry(clip_id, self.stream)["shape"][1])

    def _options(self, pairs: pd.DataFrame) -> list[list[tuple[tuple[int, int], str, tuple[int, int]]]]:
        """Per sample, its rows as (sample steps, conjugate id, conjugate steps), in table order."""
        pairs = pairs[pairs["sample_id"].isin(set(self.ids))]  # rows of other samples play no part
        kinds = sorted(set(pairs["kind"]) - set(MAP_KINDS))
        if kinds:
            raise ValueError(f"pairs of kind {kinds} have no stored feature map (only {MAP_KINDS} do)")
        absent = sorted({c for c in pairs["conjugate_id"] if not self.store.has(c, self.stream)})
        if absent:
            raise KeyError(f"{self.store.root}: conjugate clips without {self.stream!r} features, e.g. "
                           f"{absent[:5]}; extract them with actx.features.ensure_features")
        rows: dict[str, list] = {}
        for row in pairs.itertuples(index=False):
            what = f"pair {row.sample_id} -> {row.conjugate_id}"
            if row.kind == "still":  # one-step maps of an image and of its conjugate image
                rows.setdefault(row.sample_id, []).append(
                    (self._one_step(row.sample_id, what), row.conjugate_id, self._one_step(row.conjugate_id, what)))
                continue
            sample = _frame_steps(row.sample_start, row.sample_end, self.time_stride,
                                  self._steps(row.sample_id), what)
            conj = _frame_steps(row.conjugate_start, row.conjugate_end, self.time_stride,
                                self._steps(row.conjugate_id), what)
            rows.setdefault(row.sample_id, []).append((sample, row.conjugate_id, conj))
        return [rows.get(i, []) for i in self.ids]

    def _one_step(self, clip_id: str, what: str) -> tuple[int, int]:
        if self._steps(clip_id) != 1:
            raise ValueError(f"{what}: still pairs need one-step (image) maps, {clip_id!r} has "
                             f"{self._steps(clip_id)} steps in {self.store.root}")
        return 0, 1

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's conjugate choices (the training loop calls it before every epoch)."""
        self.epoch = int(epoch)

    def choice(self, i: int, epoch: int | None = None) -> int | None:
        """Which of sample i's pairs rows it gets in ``epoch`` (default: the current one), or None."""
        if self.options is None or not self.options[i]:
            return None
        rng = np.random.default_rng([self.seed, self.epoch if epoch is None else int(epoch), int(i)])
        return int(rng.integers(len(self.options[i])))

    def conjugate_counts(self) -> np.ndarray:
        """(N,) number of conjugate windows per sample (0 without a pairs table)."""
        return np.array([0 if self.options is None else len(o) for o in self.options])

    def pair_key(self, i: int, j: int | None) -> int:
        """A stable 63-bit id of sample i's pairs row j as this set reads it (the store, stream, transform, both
        clips and their windows), or -1 when there is none (no row, or a transform without a ``key``). The
        ActX objective memoises its backbone cosines by it (actx.models.actx.memo)."""
        if j is None or self._key_base is None:
            return -1
        (s, e), conj_id, (cs, ce) = self.options[i][j]
        text = f"{self._key_base}|{self.ids[i]}|{s}|{e}|{conj_id}|{cs}|{ce}"
        return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 1

    def cached_bytes(self) -> int:
        """Bytes of the windows held in memory (at most ``cache_bytes``)."""
        return self._held

    def _read(self, clip_id: str, start: int, end: int) -> torch.Tensor:
        key = (clip_id, start, end)
        window = self._cache.get(key)
        if window is not None:
            window = window.copy()  # the caller's own copy: changing it cannot change the cache
        else:
            window = self.store.read_window(clip_id, self.stream, start, end)  # (D, T, h, w) float16
            if self._held + window.nbytes <= self.cache_bytes:
                self._cache[key], self._held = window.copy(), self._held + window.nbytes
        f = torch.from_numpy(window)
        return f if self.transform is None else self.transform(f)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        s, e = self.windows[i]
        item: dict[str, Any] = {"y": torch.from_numpy(self.labels[i]), "index": i}
        j = self.choice(i)
        if self.options is not None and j is None:
            d, _, h, w = self.store.entry(self.ids[i], self.stream)["shape"]
            item["cf"] = torch.zeros((d, 0, h, w), dtype=torch.float16)  # (D, 0, h, w): no conjugate
        elif j is not None:
            (s, e), conj_id, (cs, ce) = self.options[i][j]
            item["cf"] = self._read(conj_id, cs, ce)
        if self.options is not None:
            item["key"] = self.pair_key(i, j)
        item["f"] = self._read(self.ids[i], s, e)
        if "cf" in item:
            item["cf"] = item["cf"].to(item["f"].dtype)
        for name, arrays in self.inputs.items():
            item[name] = torch.from_numpy(arrays[i][s:e])  # (T, ...) over the steps of "f"
        return item
