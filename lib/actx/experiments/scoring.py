"""Recognition metrics of one split from softmax probabilities, as the papers report them.

mean AP over classes (ActX Tables 1-2: ActionThread, Hollywood2), top-1 accuracy and mean class accuracy (ActX
Table 3, HACS-30). The embedded benchmark is single-label, so the scores are softmax probabilities (N, C) and
the labels one-hot rows (N, C).
"""

from __future__ import annotations

import numpy as np
import torch

from actx.metrics import (mean_average_precision, mean_class_accuracy, per_class_average_precision,
                          top_k_accuracy)

# The metrics every run stores per split (fractions in [0, 1]; results_table shows them in percent).
METRIC_NAMES = ("mAP", "top1", "mean_class_acc")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, C) logits as float32, computed in float64 (rows sum to 1)."""
    return torch.from_numpy(np.asarray(logits, dtype=np.float64)).softmax(1).numpy().astype(np.float32)


def probabilities(logits: np.ndarray, multi_label: bool = False) -> np.ndarray:
    """Class probabilities of (N, C) logits: row-wise softmax for single-label sets, element-wise sigmoid (each
    class on its own) for multi-label ones; float32, computed in float64."""
    if not multi_label:
        return softmax(logits)
    return torch.from_numpy(np.asarray(logits, dtype=np.float64)).sigmoid().numpy().astype(np.float32)


def split_metrics(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """{"mAP", "top1", "mean_class_acc"} of probabilities (N, C) against one-hot labels (N, C); for multi-hot
    labels (a row with no label or several) only mAP is defined, the accuracies are NaN."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    if probs.shape != labels.shape or probs.ndim != 2:
        raise ValueError(f"probabilities {probs.shape} and labels {labels.shape} must both be (N, C)")
    if not bool((labels.sum(1) == 1).all()):  # multi-label rows (VOC stills): accuracies are undefined
        return {"mAP": mean_average_precision(probs, labels), "top1": float("nan"),
                "mean_class_acc": float("nan")}
    return {"mAP": mean_average_precision(probs, labels), "top1": top_k_accuracy(probs, labels, 1),
            "mean_class_acc": mean_class_accuracy(probs, labels)}


def class_ap(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(C,) average precision of every class (NaN for a class without a positive)."""
    return per_class_average_precision(probs, labels)
