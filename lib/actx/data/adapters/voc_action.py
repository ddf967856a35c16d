"""PASCAL VOC 2012 action classification (still images): 10 actions, per-person boxes and action labels.

ActX supplement (001 section 2.3): action samples are the images; conjugates remove the boxes of the people
doing the action, fill them by image completion and blend. Evaluation: mean AP over the 10 classes on ``val``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from .. import register
from ..records import AnnotationError, ClipSet, Record
from ._common import finish, parse_split, read_lines, require_file, resolve_root, to_float, to_int

# The 10 actions of the VOC 2012 devkit, in its order and spelling (ActX 001 section 2.3 lists the same ten).
VOC_ACTION_CLASSES = ("jumping", "phoning", "playinginstrument", "reading", "ridingbike", "ridinghorse",
                      "running", "takingphoto", "usingcomputer", "walking")

# "other" (none of the ten) is not a class: such a person gets actions=() and "other": True, and adds nothing
# to the image labels. Their box is kept, since an image-completion conjugate must not erase them by mistake.
OTHER = "other"

LAYOUT = """\
  <root>/ImageSets/Action/{train,val,test}.txt   '<image id> <person index>' (1-based object index),
                                                 or '<image id>' (all its people with actions)
  <root>/Annotations/<image id>.xml              objects with <bndbox> and <actions><jumping>0/1...
  <root>/JPEGImages/<image id>.jpg               (root = the VOC2012 folder of VOCdevkit)"""


@register("voc2012_action")
def load_voc2012_action(root: str | Path, split: str = "train", *, check_files: bool = False) -> ClipSet:
    """VOC 2012 action ``train`` / ``val`` / ``test`` (test has boxes but no public action labels).

    One record per image (video = the JPEG path); labels = the union of its listed people's actions in
    :data:`VOC_ACTION_CLASSES` order. ``extra``: "persons" = [{"box": (x1, y1, x2, y2), "actions": (...),
    "other": bool, "index": 1-based object index}], "width", "height", "annotation" (the XML path) and
    "box_units" = "pixels". Boxes are 0-based pixel corners with an exclusive end: the XML's 1-based inclusive
    ``xmin..xmax`` becomes ``(xmin - 1, ymin - 1, xmax, ymax)``. A person without a <bndbox> has box None.
    """
    root = resolve_root(root)
    base, _ = parse_split("voc2012_action", split, ("train", "val", "test"))
    listing = require_file(root / "ImageSets" / "Action" / f"{base}.txt", "voc2012_action", LAYOUT)
    wanted = _read_listing(listing)
    records = []
    for image_id, indices in wanted.items():
        xml = require_file(root / "Annotations" / f"{image_id}.xml", "voc2012_action", LAYOUT)
        size, objects = _read_xml(xml)
        if indices is None:  # an image-only listing: every person of the image with an <actions> element
            indices = [(None, k) for k, o in enumerate(objects, start=1) if o is not None and o[1]]
        persons = []
        for line, k in indices:
            if not 1 <= k <= len(objects) or objects[k - 1] is None:
                raise AnnotationError(listing, f"{image_id} has no annotated person with index {k} "
                                               f"(it has {len(objects)} objects)", line)
            persons.append(dict(objects[k - 1][0], index=k))
        labels = tuple(c for c in VOC_ACTION_CLASSES if any(c in p["actions"] for p in persons))
        records.append(Record(video=str(root / "JPEGImages" / f"{image_id}.jpg"), labels=labels, id=image_id,
                              split=split, extra=dict(persons=persons, width=size[0], height=size[1],
                                                      annotation=str(xml), box_units="pixels")))
    return finish("voc2012_action", root, split, records, VOC_ACTION_CLASSES, check_files)


def _read_listing(path: Path) -> dict[str, list[tuple[int, int]] | None]:
    """``{image id: [(line, person index)] or None}`` in file order, from '<id> <index>' or '<id>' lines."""
    out: dict[str, list[tuple[int, int]] | None] = {}
    for i, line in read_lines(path):
        parts = line.split()
        if len(parts) not in (1, 2):
            raise AnnotationError(path, f"expected '<image id> <person index>', got {line!r}", i)
        image_id = parts[0]
        if len(parts) == 1:
            if out.get(image_id):
                raise AnnotationError(path, f"{image_id} is listed both with and without a person index", i)
            out[image_id] = None
            continue
        if image_id in out and out[image_id] is None:
            raise AnnotationError(path, f"{image_id} is listed both with and without a person index", i)
        out.setdefault(image_id, []).append((i, to_int(parts[1], path, i, "person index")))
    return out


def _read_xml(path: Path) -> tuple[tuple[int | None, int | None], list[tuple[dict, bool] | None]]:
    """Image size and, per <object> in file order, (person dict, has <actions>); None for non-people."""
    try:
        tree = ET.parse(path)
    except ET.ParseError as exc:
        raise AnnotationError(path, f"malformed XML ({exc.msg})", exc.position[0]) from None
    node = tree.getroot()
    size = (_int_or_none(node, "size/width", path), _int_or_none(node, "size/height", path))
    return size, [_read_person(o, path) for o in node.findall("object")]


def _read_person(obj: ET.Element, path: Path) -> tuple[dict, bool] | None:
    """One <object>: None unless a person, else its box (0-based, exclusive end), actions, "other" flag."""
    if (obj.findtext("name") or "").strip().lower() != "person":
        return None
    acts = obj.find("actions")
    flags = {}
    if acts is not None:
        for child in acts:
            value = to_float((child.text or "0").strip(), path, None, child.tag)
            flags[child.tag.strip().lower()] = value > 0.5
    unknown = set(flags) - set(VOC_ACTION_CLASSES) - {OTHER}
    if unknown:
        raise AnnotationError(path, f"unknown action tags {sorted(unknown)}; expected {VOC_ACTION_CLASSES}")
    box = None
    bb = obj.find("bndbox")
    if bb is not None:
        x1, y1, x2, y2 = (to_float((bb.findtext(t) or "").strip(), path, None, t)
                          for t in ("xmin", "ymin", "xmax", "ymax"))
        box = (x1 - 1.0, y1 - 1.0, x2, y2)
    person = {"box": box, "actions": tuple(c for c in VOC_ACTION_CLASSES if flags.get(c)),
              "other": bool(flags.get(OTHER))}
    return person, acts is not None


def _int_or_none(node: ET.Element, tag: str, path: Path) -> int | None:
    text = node.findtext(tag)
    return None if text is None else int(to_float(text.strip(), path, None, tag))
