"""Where a clip's cues are cached, and the load-or-compute rule.

A cue of kind ``kind`` (e.g. "pose-mediapipe-c1") for a record lives beside its video, in
``<video folder>/actx-<kind>-<settings hash>/<record id>.npz``: for the embedded benchmark that is inside
``DATA_ROOT/cache/<profile>/synthetic/<split>/``, with the rest of the computed artefacts. The folder name holds a
hash of the settings that define the cue, so other settings never read this file. A file is written whole
(actx.files.atomic_write) or not at all, so an interrupted run resumes at the first clip without a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from actx.files import atomic_write

CACHE_PREFIX = "actx-"


def cue_path(record: Any, kind: str, settings: Mapping[str, Any]) -> Path:
    """The cache file of ``record``'s cue ``kind`` made with ``settings`` (see the module docstring)."""
    from actx.config import config_hash

    return Path(record.video).parent / f"{CACHE_PREFIX}{kind}-{config_hash(dict(settings))}" / f"{record.id}.npz"


def _load(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable cue cache ({exc}); delete it to compute it again") from exc


def load_or_compute(path: Path, compute: Callable[[], Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays saved in ``path``, else ``compute()``'s, saved there first (complete files only)."""
    if path.exists():
        return _load(path)
    arrays = {k: np.asarray(v) for k, v in compute().items()}

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    atomic_write(path, write)
    return arrays
