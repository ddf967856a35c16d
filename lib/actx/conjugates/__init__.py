"""Conjugate mining: samples that share an action sample's context but not its action (ActX sections 3.1, 4).

- thread_conjugates: pre/post-action windows of the same thread (ActionThread)
- imperfect_conjugates: windows right before/after a temporal crop (Hollywood2)
- neighbour_conjugates / nearest_neighbours: top-k nearest negative clips by embedding (HACS-30)
- still_conjugate: actors removed, inpainted and Poisson-blended (VOC 2012 action, supplement section 1)
- the pairs table (COLUMNS, save_pairs, load_pairs) and verify_pairs (its invariants)
"""

from .neighbours import TOP_K, nearest_neighbours, neighbour_conjugates
from .pairs import (COLUMNS, KINDS, ConjugateInvariantError, action_frames, empty_pairs, load_pairs, make_pairs,
                    overlap_fraction, save_pairs, verify_pairs)
from .stills import box_mask, poisson_blend, still_conjugate
from .temporal import STRIDE, action_window, imperfect_conjugates, thread_conjugates

__all__ = ["COLUMNS", "KINDS", "STRIDE", "TOP_K", "ConjugateInvariantError", "action_frames", "action_window",
           "box_mask", "empty_pairs", "imperfect_conjugates", "load_pairs", "make_pairs", "nearest_neighbours",
           "neighbour_conjugates", "overlap_fraction", "poisson_blend", "save_pairs", "still_conjugate",
           "thread_conjugates", "verify_pairs"]
