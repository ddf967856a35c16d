"""Late fusion of the two streams: the papers' "RGB + Flow" rows (ActX Tables 1-3).

Each video has two maps, F_rgb and F_flow (ActX 000 section 4.1.2, "Feature extraction"); the paper does not
say how its "RGB + Flow" scores combine them. Here one head is trained per stream and only their scores are
combined: the fused score of a class is the average of the two streams' softmax probabilities,

    p_fused = (p_rgb + p_flow) / 2.

Why probabilities, averaged with equal weights: two-stream I3D (Carreira and Zisserman 2017), whose features
ActX uses, trains its streams separately and averages their predictions at test time, and the ActX papers give
no weights. Softmax probabilities put both heads on one scale whatever each one's logit scale (a head trained
to larger logits would otherwise dominate an average of logits), and the average of two distributions is a
distribution, so top-1, mean class accuracy and mAP apply unchanged.
"""

from __future__ import annotations

import numpy as np

from .runner import RunResult
from .scoring import split_metrics


def late_fusion(rgb: RunResult, flow: RunResult) -> RunResult:
    """The average of two runs' softmax probabilities on every split both have, with its metrics.

    Both runs must score the same clips in the same order with the same labels and classes (e.g. the same
    method and seed on the "rgb" and "flow" streams); the result's stream is "rgb+flow", it has no maps and no
    head.
    """
    if tuple(rgb.classes) != tuple(flow.classes):
        raise ValueError(f"late_fusion: the runs have different classes ({rgb.classes} vs {flow.classes})")
    splits = [s for s in rgb.probs if s in flow.probs]
    if not splits:
        raise ValueError(f"late_fusion: no split in common ({rgb.splits} vs {flow.splits})")
    probs, metrics = {}, {}
    for s in splits:
        if list(rgb.ids[s]) != list(flow.ids[s]) or not np.array_equal(rgb.labels[s], flow.labels[s]):
            raise ValueError(f"late_fusion: split {s!r} holds other clips or labels in the {rgb.stream} run "
                             f"({rgb.path}) than in the {flow.stream} run ({flow.path})")
        probs[s] = ((rgb.probs[s].astype(np.float64) + flow.probs[s]) / 2.0).astype(np.float32)  # (N, C)
        metrics[s] = split_metrics(probs[s], rgb.labels[s])
    method = rgb.method if rgb.method == flow.method else f"{rgb.method}+{flow.method}"
    return RunResult(method=method, stream=f"{rgb.stream}+{flow.stream}", seed=rgb.seed,
                     conjugates=rgb.conjugates, classes=rgb.classes, metrics=metrics, probs=probs,
                     labels={s: rgb.labels[s] for s in splits}, ids={s: list(rgb.ids[s]) for s in splits},
                     windows={s: rgb.windows[s] for s in splits}, maps={}, params=rgb.params + flow.params,
                     path=None, history=None, head=None,
                     recipe={"fusion": "mean of softmax probabilities", "rgb": rgb.recipe,
                             "flow": flow.recipe})
