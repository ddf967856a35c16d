"""Data sets: the embedded synthetic benchmark and adapters for the papers' real data sets.

``load_dataset(name, root, split)`` returns a :class:`ClipSet` (a sequence of :class:`Record`, with ``.classes``).
Loaders register themselves in ``LOADERS`` by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .records import AnnotationError, ClipSet, Record, multi_hot

LOADERS: dict[str, Callable[..., ClipSet]] = {}


def register(name: str):
    """Decorator: make ``fn(root, split, **kw) -> ClipSet`` available as ``load_dataset(name, ...)``."""

    def wrap(fn):
        LOADERS[name] = fn
        return fn

    return wrap


def load_dataset(name: str, root: str | Path, split: str = "train", **kwargs) -> ClipSet:
    """Load split ``split`` of data set ``name`` stored under ``root`` (see data/README.md for each layout)."""
    _import_loaders()
    if name not in LOADERS:
        raise ValueError(f"unknown data set {name!r}; known: {sorted(LOADERS)}")
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"{name}: data root {root} does not exist (see data/README.md for the layout)")
    return LOADERS[name](root, split, **kwargs)


def _import_loaders() -> None:
    # Importing the modules runs their @register decorators.
    from . import adapters, synthetic  # noqa: F401


__all__ = ["AnnotationError", "ClipSet", "Record", "load_dataset", "multi_hot", "register", "LOADERS"]
