"""Adapters for the papers' real data sets, one module per set; importing this package registers them all.

======================  ===========================================  =====================================
``load_dataset`` name   data set (paper that uses it)                splits
======================  ===========================================  =====================================
``hollywood2``          Hollywood2 actions (ActX)                    train, test
``actionthread``        ActionThread via a manifest (ActX)           as listed in the manifest
``manifest``            any set written as a clip manifest           as listed in the manifest
``hacs``                HACS Clips / HACS-30 (ActX), HACS Segments   train, val, test
``voc2012_action``      PASCAL VOC 2012 action (ActX supplement)     train, val, test
``jhmdb``               J-HMDB (ACRN)                                train1..3, test1..3
``ava``                 AVA v2.1 (ACRN)                              train, val
``hmdb51``              HMDB51 (spatio-temporal attention)           train1..3, test1..3
``ucf101``              UCF101 (spatio-temporal attention)           train1..3, test1..3
``thumos14``            THUMOS'14 detection (spatio-temporal att.)   val, test
``moments_in_time``     Moments in Time (spatio-temporal attention)  train, val
======================  ===========================================  =====================================

Each module documents its folder layout (``LAYOUT``), which is also printed when an annotation file is
missing; data/README.md repeats them with where the official files come from.
"""

from . import ava, hacs, hmdb51, hollywood2, jhmdb, manifest, moments, thumos14, ucf101, voc_action
from .ava import AVA_LABEL_MAP, ava_ground_truth, load_ava, read_label_map
from .hacs import HACS_VIDEO_PATTERN, load_hacs
from .hmdb51 import load_hmdb51
from .hollywood2 import HOLLYWOOD2_CLASSES, load_hollywood2
from .jhmdb import JHMDB_JOINTS, load_jhmdb, mask_boxes
from .manifest import ACTIONTHREAD_CLASSES, load_actionthread, load_manifest
from .moments import load_moments
from .thumos14 import THUMOS14_CLASSES, load_thumos14
from .ucf101 import load_ucf101
from .voc_action import VOC_ACTION_CLASSES, load_voc2012_action

LAYOUTS = {"hollywood2": hollywood2.LAYOUT, "ucf101": ucf101.LAYOUT, "hmdb51": hmdb51.LAYOUT,
           "voc2012_action": voc_action.LAYOUT, "hacs": hacs.LAYOUT, "jhmdb": jhmdb.LAYOUT, "ava": ava.LAYOUT,
           "thumos14": thumos14.LAYOUT, "manifest": manifest.LAYOUT, "actionthread": manifest.LAYOUT,
           "moments_in_time": moments.LAYOUT}

__all__ = [
    "ACTIONTHREAD_CLASSES", "AVA_LABEL_MAP", "HACS_VIDEO_PATTERN", "HOLLYWOOD2_CLASSES", "JHMDB_JOINTS",
    "LAYOUTS", "THUMOS14_CLASSES", "VOC_ACTION_CLASSES", "ava_ground_truth", "load_actionthread", "load_ava",
    "load_hacs", "load_hmdb51", "load_hollywood2", "load_jhmdb", "load_manifest", "load_moments", "load_thumos14",
    "load_ucf101", "load_voc2012_action", "mask_boxes", "read_label_map",
]
