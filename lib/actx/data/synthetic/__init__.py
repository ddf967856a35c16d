"""The embedded, procedurally rendered benchmark: articulated people acting in real and procedural scenes.

Why it exists: the papers' data sets cannot be downloaded here, and they lack the ground truth that shows *where*
a method looks. This benchmark has both, and a deliberate context confound: in ``train`` and ``test`` each action
usually happens in its own scene type (probability ``scene_bias``), in ``test_shifted`` the scene is independent of
the action, so a classifier that leans on the background is caught.

Modules, one concept each:

- :mod:`.skeleton`  the articulated figure (keypoints, kinematics, clothing) and its drawing, objects
- :mod:`.actions`   the 12 action classes as motion programs; idle and walking motions
- :mod:`.scenes`    the 12 scene types (scikit-image photographs, procedural rooms) and the camera
- :mod:`.layout`    who is where doing what when, for threads, negatives, stills and untrimmed videos
- :mod:`.render`    one sample to frames and ground truth
- :mod:`.dataset`   splits, parallel rendering to disk, manifest, the ``load_dataset("synthetic", ...)`` loader

Typical use::

    root = ensure_benchmark(cfg)                      # renders cfg.data's knobs once, then just finds them
    train = actx.data.load_dataset("synthetic", root, "train")
    gt = load_annotation(train[0])                    # boxes, masks, keypoints, action frames
"""

from .actions import CLASSES, PAIR_CLASSES
from .dataset import (FORMAT_VERSION, SPLITS, Spec, cooccurrence, ensure_benchmark, load_annotation,
                      load_synthetic, make_knobs, plan, render_benchmark, render_sample, split_pairs)
from .scenes import SCENES
from .skeleton import BONES, KEYPOINTS

__all__ = ["CLASSES", "PAIR_CLASSES", "SCENES", "KEYPOINTS", "BONES", "SPLITS", "FORMAT_VERSION", "Spec",
           "render_benchmark", "ensure_benchmark", "load_annotation", "load_synthetic", "make_knobs", "plan",
           "render_sample", "cooccurrence", "split_pairs"]
