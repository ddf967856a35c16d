"""The ACF training objective (Wang and Hoai 2018, the ACF baseline of ActX Table 1) on pooled vectors."""

from __future__ import annotations

import torch.nn.functional as F

from actx.models.acf.head import ACFHead
from actx.models.classify import MULTI_LABEL, classification_loss, time_mask_of

# ACF's hinge margin and loss weights: open, chosen on the validation split with the same grid and budget as
# ActX's (actx.experiments.tuning, notebook 07): xi 0.9 with both conjugate losses weighted 0.1 had the best val
# mAP (71.1, against 69.3 for the unweighted xi = 0.5 it had before; one seed).
XI = 0.9
SIM_WEIGHT = 0.1
DIFF_WEIGHT = 0.1


def acf_objective(model: ACFHead, batch: dict, xi: float = XI, sim_weight: float = SIM_WEIGHT,
                  diff_weight: float = DIFF_WEIGHT, multi_label: bool = MULTI_LABEL,
                  negative_weight: float | None = None) -> dict:
    """ACF (Wang and Hoai 2018) on pooled vectors: L_class + sim_weight * mean max(0, cos(a, a') - xi)
    + diff_weight * mean (1 - cos(c, c')), with (a, c) the sample's and (a', c') the conjugate's features.
    ``negative_weight``: L_class weighs the background class so (001 section 2.4; classify.classification_loss)."""
    out = model(batch["f"], batch.get("mask"))
    cls = classification_loss(out["logits"], batch["y"], multi_label, negative_weight)
    ca, cc = model.embed(batch["cf"], time_mask_of(batch, "cf", "cmask"))
    sim = F.relu(F.cosine_similarity(out["action"], ca, dim=1) - xi).mean()
    diff = (1.0 - F.cosine_similarity(out["context"], cc, dim=1)).mean()
    return {"loss": cls + sim_weight * sim + diff_weight * diff, "class": cls, "sim": sim, "diff": diff}
