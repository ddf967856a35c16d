"""Still-image conjugates (ActX supplement section 1, VOC 2012 action): remove the actors, fill, blend.

For the action under consideration: take the boxes of every person performing it, remove those pixels, fill the
hole with an image-completion method and blend the fill with the surrounding pixels. The supplement used a learnt
completion network and Poisson blending; offline we use Telea's fast-marching inpainting (cv2.inpaint) for the fill
and Poisson image editing (cv2.seamlessClone) for the blend, both of which the supplement cites.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

DILATE = 5         # px the hole grows before Poisson blending: its boundary must lie on background, not on the actor
INPAINT_RADIUS = 5  # px neighbourhood of Telea's method; larger blurs more, smaller leaves streaks at this size


def box_mask(shape: tuple[int, int], boxes: Sequence[Sequence[float]]) -> np.ndarray:
    """uint8 (H, W) mask, 255 inside any of the (x1, y1, x2, y2) boxes (pixel coordinates, clipped)."""
    h, w = shape
    mask = np.zeros((h, w), np.uint8)
    for x1, y1, x2, y2 in boxes:
        x1, y1 = max(0, int(np.floor(x1))), max(0, int(np.floor(y1)))
        x2, y2 = min(w, int(np.ceil(x2))), min(h, int(np.ceil(y2)))
        mask[y1:y2, x1:x2] = 255
    return mask


def still_conjugate(image: np.ndarray, boxes: Sequence[Sequence[float]], dilate: int = DILATE,
                    radius: int = INPAINT_RADIUS) -> np.ndarray:
    """The conjugate of a still image: the boxes removed, filled (Telea) and blended (Poisson). uint8 (H, W, 3)."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    hole = box_mask(image.shape[:2], boxes)
    if not hole.any():
        raise ValueError("no box pixels inside the image: nothing to remove")
    filled = cv2.inpaint(image, hole, radius, cv2.INPAINT_TELEA)
    grown = cv2.dilate(hole, np.ones((2 * dilate + 1, 2 * dilate + 1), np.uint8))
    return poisson_blend(filled, image, grown)


def poisson_blend(src: np.ndarray, dst: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Poisson image editing: inside ``mask`` take src's gradients with dst's values on the mask's boundary.

    cv2.seamlessClone centres src's mask box at the given point and misbehaves when the mask touches the border,
    so both images are padded (reflected) by a margin, the centre is chosen so the mask lands where it was, and the
    margin is cropped off again.
    """
    pad = 8
    src_p, dst_p = (cv2.copyMakeBorder(x, pad, pad, pad, pad, cv2.BORDER_REFLECT) for x in (src, dst))
    mask_p = cv2.copyMakeBorder(mask, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    x, y, w, h = cv2.boundingRect(mask_p)
    out = cv2.seamlessClone(src_p, dst_p, mask_p, (x + w // 2, y + h // 2), cv2.NORMAL_CLONE)
    return out[pad:-pad, pad:-pad]
