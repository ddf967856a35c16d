"""Chapters 13 (paper 003), 15 (HACS-30) and 16 (VOC stills) on real data: small fake archives in the published
formats (HMDB51's split files and AVIs; THUMOS'14's temporal annotations and MP4s; the HACS Clips CSV with
download_videos.py's video layout; VOC 2012's ImageSets/Action lists, XML action annotations and JPEGs), written
to tmp_path and run through the functions the notebooks call, and the errors for missing or malformed files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import actx.config
from actx import localisation as L
from actx.data import Record
from actx.data.records import AnnotationError
from actx.experiments import hacs30, stills
from actx.video import write_video

HACS_HEADER = "classname,youtube_id,subset,start,end,label\n"
FPS = 16


# --- HACS Clips ----------------------------------------------------------------------------------------------
def _video(path: Path, seconds: float, colour: int) -> None:
    """A small moving-square video, ``seconds`` long at FPS."""
    frames = np.full((int(seconds * FPS), 48, 64, 3), 40, np.uint8)  # (T, H, W, 3)
    for t, frame in enumerate(frames):
        x = (2 * t) % 48
        frame[10:30, x:x + 16] = (colour, 255 - colour, 128)
    write_video(path, frames, FPS)


def make_hacs(root: Path) -> None:
    """Three classes; with 2 classes kept, Zumba (the most positives) is left out. Each video holds a positive
    clip [0.5, 2.5] and a negative clip [2, 4] of its class (HACS takes both from the same videos)."""
    rows = []
    plan = {"Archery": (3, 2), "Rock climbing": (3, 2), "Zumba": (5, 1)}  # training, validation videos
    for k, (name, (n_train, n_val)) in enumerate(plan.items()):
        for i in range(n_train + n_val):
            vid = f"{name[:2]}{i:02d}"
            subset = "training" if i < n_train else "validation"
            _video(root / "videos" / name.replace(" ", "_") / f"v_{vid}.mp4", 4.0, 60 * k)
            rows += [f"{name},{vid},{subset},0.5,2.5,1\n", f"{name},{vid},{subset},2.0,4.0,-1\n"]
    (root / "HACS_v1.1.1").mkdir(parents=True, exist_ok=True)
    (root / "HACS_v1.1.1" / "HACS_clips_v1.1.1.csv").write_text(HACS_HEADER + "".join(rows))


def _cfg(tmp_path: Path, dataset: str, setting) -> actx.config.Config:
    return setting(actx.config.make_config("ci", tmp_path), dataset)


@pytest.fixture(scope="module")
def hacs_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    make_hacs(root / "hacs")
    return root


def test_real_hacs_clips_keep_the_classes_with_fewest_positives_and_their_negatives(hacs_root):
    records = hacs30.real_clip_records(hacs_root / "hacs", num_classes=2)
    assert records["train"].classes == ("Archery", "Rock climbing", hacs30.BACKGROUND)
    assert set(records) == {"train", "val", "test"}
    test = records["test"]
    assert sorted(r.labels[0] for r in test) == ["Archery"] * 2 + ["Rock climbing"] * 2 + [hacs30.BACKGROUND] * 4
    train_ids = {r.id for split in ("train", "val") for r in records[split]}
    assert len(train_ids) == 12 and not train_ids & {r.id for r in test}
    assert all(r.split == split for split, rs in records.items() for r in rs)
    clip = records["train"][0]
    assert clip.extra["frames"] == hacs30.CLIP_FRAMES and clip.extra["clip_seconds"] in ((0.5, 2.5), (2.0, 4.0))
    frames = hacs30.decode_clip(clip, hacs30.SIZE["ci"])
    assert frames.shape == (hacs30.CLIP_FRAMES, *hacs30.SIZE["ci"], 3) and frames.dtype == np.uint8
    assert not np.array_equal(frames[0], frames[-1])  # 2 s of a moving square, not one frame repeated


def test_hacs_chapter_runs_on_real_clips(hacs_root, monkeypatch):
    monkeypatch.setattr(hacs30, "REAL_CLASSES", 2)
    cfg = _cfg(hacs_root, "hacs", hacs30.setting)
    assert hacs30.report_splits(cfg) == ("test",)
    records = hacs30.clip_records(cfg)
    backbone = hacs30.run_backbone(cfg, records, progress=False)
    assert backbone.path.parts[-4] == hacs30.REAL_DATASET
    store = hacs30.ensure_finetuned(cfg, records, backbone, progress=False)
    pairs = hacs30.neighbour_pairs(store, records)
    negatives = {r.id for r in records["train"] if hacs30.BACKGROUND in r.labels}
    assert len(pairs) and set(pairs.conjugate_id) <= negatives
    head = hacs30.run_head(cfg, "hacs_actx", records, progress=False)
    assert head.probs["test"].shape == (8, 3) and np.allclose(head.probs["test"].sum(1), 1.0, atol=1e-5)
    assert head.recipe["params"]["negative_weight"] == 0.01
    table = hacs30.table({"hacs_backbone": [backbone], "hacs_actx": [head]},
                         {"hacs_backbone": "Backbone", "hacs_actx": "ActX"}, hacs30.report_splits(cfg))
    assert list(table["Method"]) == ["Backbone", "ActX"] and "test_shifted mAP" not in table


def test_hacs_clip_shorter_than_its_annotation(tmp_path):
    _video(tmp_path / "short.mp4", 1.5, 0)
    record = hacs30.hacs_clip(Record(video=str(tmp_path / "short.mp4"), labels=("a",), id="c", start=0.5,
                                            end=2.5), ("a",), "train")
    frames = hacs30.decode_clip(record, (32, 64))  # 1 s of the 2 decodes: padded with its last frame
    assert len(frames) == hacs30.CLIP_FRAMES and np.array_equal(frames[-1], frames[-10])
    late = hacs30.hacs_clip(Record(video=str(tmp_path / "short.mp4"), labels=("a",), id="d", start=1.2,
                                          end=3.2), ("a",), "train")
    with pytest.raises(ValueError, match="short.mp4.*only"):
        hacs30.decode_clip(late, (32, 64))


def test_hacs_errors_name_the_file(tmp_path):
    cfg = _cfg(tmp_path, "hacs", hacs30.setting)
    with pytest.raises(FileNotFoundError, match="hacs does not exist"):
        hacs30.clip_records(cfg)
    (tmp_path / "hacs").mkdir()
    with pytest.raises(FileNotFoundError, match="HACS_clips_v1.1.1.csv"):
        hacs30.clip_records(cfg)
    make_hacs(tmp_path / "hacs")
    (tmp_path / "hacs" / "videos" / "Archery" / "v_Ar01.mp4").unlink()
    with pytest.raises(FileNotFoundError, match="v_Ar01.mp4"):
        hacs30.clip_records(cfg)
    csv = tmp_path / "hacs" / "HACS_v1.1.1" / "HACS_clips_v1.1.1.csv"
    csv.write_text(HACS_HEADER + "Archery,Ar00,training,0.5,2.5,1\nArchery,Ar00,training,2.0,x,-1\n")
    with pytest.raises(AnnotationError, match=r"HACS_clips_v1.1.1.csv:3: .*end"):
        hacs30.clip_records(cfg)
    csv.write_text(HACS_HEADER + "Archery,Ar00,training,0.5,2.5,1\n")
    with pytest.raises(ValueError, match="no negative clip"):
        hacs30.clip_records(cfg)
    with pytest.raises(ValueError, match="DATASET must be"):
        hacs30.setting(cfg, "hacs30")


# --- VOC 2012 action ---------------------------------------------------------------------------------------
VOC_XML = ("<annotation><filename>{id}.jpg</filename><size><width>128</width><height>96</height><depth>3</depth>"
           "</size>{objects}</annotation>")


def _person(actions: tuple[str, ...], box: tuple[int, int, int, int] | None) -> str:
    from actx.data.adapters.voc_action import VOC_ACTION_CLASSES

    flags = "".join(f"<{a}>{int(a in actions)}</{a}>" for a in (*VOC_ACTION_CLASSES, "other"))
    bndbox = "" if box is None else "<bndbox>" + "".join(
        f"<{t}>{v}</{t}>" for t, v in zip(("xmin", "ymin", "xmax", "ymax"), box)) + "</bndbox>"
    return f"<object><name>person</name>{bndbox}<actions>{flags}</actions></object>"


def make_voc(root: Path) -> None:
    """8 training and 4 validation images, 1-2 people each, one of them 'other' in some images."""
    rng = np.random.default_rng(0)
    acts = ("jumping", "phoning", "reading")
    lists = {"train": [], "val": []}
    for i in range(12):
        image_id = f"2012_{i:06d}"
        split = "train" if i < 8 else "val"
        image = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
        people = [((acts[i % 3],), (10 + i, 20, 50 + i, 90))]
        if i % 2:
            people.append((("other",), (70, 10, 120, 80)))
        for x1, y1, x2, y2 in (b for _, b in people):
            image[y1:y2, x1:x2] = (200, 40 * (i % 3), 30)
        (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "JPEGImages" / f"{image_id}.jpg"), image)
        objects = "".join(_person(a, b) for a, b in people)
        (root / "Annotations").mkdir(exist_ok=True)
        (root / "Annotations" / f"{image_id}.xml").write_text(VOC_XML.format(id=image_id, objects=objects))
        lists[split] += [f"{image_id} {k}\n" for k in range(1, len(people) + 1)]
    (root / "ImageSets" / "Action").mkdir(parents=True, exist_ok=True)
    for split, lines in lists.items():
        (root / "ImageSets" / "Action" / f"{split}.txt").write_text("".join(lines))


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    make_voc(root / "voc2012_action")
    return root


@pytest.mark.filterwarnings("ignore:mean_average_precision")  # the fake VOC has 3 of the 10 actions
def test_voc_chapter_runs_on_real_stills(voc_root):
    cfg = _cfg(voc_root, "voc2012_action", stills.setting)
    records = stills.still_records(cfg)
    assert {s: len(r) for s, r in records.items()} == {"train": 5, "val": 3, "test": 4}  # one per class held out
    assert records["test"].classes[0] == "jumping" and len(records["test"].classes) == 10
    assert all(r.split == split and r.extra["frames"] == 1 for split, rs in records.items() for r in rs)
    pairs = stills.still_pairs(cfg, records, progress=False)
    assert len(pairs) == 5 and "conjugates-voc2012_action" in pairs.conjugate_path.iloc[0]
    store = stills.ensure_still_features(cfg, records, pairs, progress=False)
    assert store.entry(records["test"][0].id, "rgb")["shape"][1:] == [1, 8, 11]  # short side 256 -> 8 cells
    results = {m: stills.run_still(cfg, m, records, progress=False) for m in stills.METHODS}
    for result in results.values():
        assert result.path.parts[-4] == stills.REAL and result.probs["test"].shape == (4, 10)
    share = stills.actor_share(results["still_actx"], records["test"])
    assert len(share) == 4 and share["actor area"].between(0.05, 0.6).all()


def test_voc_errors_name_the_file(tmp_path):
    cfg = _cfg(tmp_path, "voc2012_action", stills.setting)
    root = tmp_path / "voc2012_action"
    root.mkdir()
    with pytest.raises(FileNotFoundError, match="ImageSets/Action/train.txt"):
        stills.still_records(cfg)
    make_voc(root)
    (root / "JPEGImages" / "2012_000003.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="2012_000003.jpg"):
        stills.still_records(cfg)
    make_voc(root)
    xml = root / "Annotations" / "2012_000002.xml"
    xml.write_text(VOC_XML.format(id="2012_000002", objects=_person(("reading",), None)))
    with pytest.raises(AnnotationError, match="2012_000002.xml.*person 1 does \\['reading'\\].*no <bndbox>"):
        stills.still_records(cfg)
    xml.write_text("<annotation><object>\n</annotation>")
    with pytest.raises(AnnotationError, match="2012_000002.xml:2: malformed XML"):
        stills.still_records(cfg)
    with pytest.raises(ValueError, match="DATASET must be"):
        stills.setting(cfg, "voc")


# --- Chapter 13 (paper 003): HMDB51 and THUMOS'14 ------------------------------------------------------------
# Tiny where_when heads (the method's sizes scaled down; two epochs): the path is under test, not the accuracy.
SMALL_WW = {"hidden": 8, "mask_widths": (8, 4), "in_dim": 8, "epochs": 2, "batch_size": 4, "frames": 3}


def make_hmdb51(root: Path) -> None:
    """Two classes, split 1: 5 training and 2 test clips each (1 s), one more clip flagged 0 (unused); splits 2-3
    list the same clips the other way round, so that reading split 1 is checked."""
    plan = {"brush_hair": 0, "climb_stairs": 1}
    folder = root / "testTrainMulti_7030_splits"
    folder.mkdir(parents=True, exist_ok=True)
    for cls, k in plan.items():
        names = [f"{cls}_{i}.avi" for i in range(8)]
        for i, name in enumerate(names[:7]):
            _video(root / cls / name, 1.0, 120 * k + 10 * i)
        flags = ["1"] * 5 + ["2"] * 2 + ["0"]
        for split in (1, 2, 3):
            fl = flags if split == 1 else [{"1": "2", "2": "1"}.get(f, f) for f in flags]
            (folder / f"{cls}_test_split{split}.txt").write_text(
                "".join(f"{n} {f}\n" for n, f in zip(names, fl)))


def make_thumos14(root: Path) -> None:
    """Two of the 20 classes with segments: 5 single-class validation videos each and one with both classes
    (left out of training, 003 B.1); 2 test videos each and one with both (localised, not classified). 3 s each
    at FPS, the action in [1, 2] s (the both-classes videos: one class in each half)."""
    from actx.data.adapters import THUMOS14_CLASSES

    plan = {"val": ("validation", "TH14_Temporal_annotations_validation/annotation", 5),
            "test": ("TH14_test_set_mp4", "TH14_Temporal_Annotations_Test/annotations/annotation", 2)}
    for split, (videos, annotations, n) in plan.items():
        lines = {c: [] for c in THUMOS14_CLASSES}
        for k, cls in enumerate(("Diving", "HighJump")):
            for i in range(n):
                vid = f"video_{split}_{k}{i:03d}"
                _video(root / videos / f"{vid}.mp4", 3.0, 120 * k + 10 * i)
                lines[cls].append(f"{vid} 1.0 2.0\n")
        both = f"video_{split}_9000"
        _video(root / videos / f"{both}.mp4", 3.0, 200)
        lines["Diving"].append(f"{both} 0.2 1.2\n")
        lines["HighJump"].append(f"{both} 1.8 2.8\n")
        (root / annotations).mkdir(parents=True, exist_ok=True)
        for cls, rows in lines.items():
            (root / annotations / f"{cls}_{split}.txt").write_text("".join(rows))


@pytest.fixture(scope="module")
def paper003_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    make_hmdb51(root / "hmdb51")
    make_thumos14(root / "thumos14")
    return root


def test_where_when_setting_names_every_real_set_and_keeps_the_others():
    from actx.experiments import where_when as WW

    cfg = actx.config.make_config("ci", "/tmp/nowhere")
    assert WW.setting(cfg, "synthetic") is cfg and WW.not_applicable(cfg) == {}
    with pytest.raises(ValueError, match=r"DATASET must be 'synthetic' or 'hmdb51' \(HMDB51.*'ucf101'.*'thumos14'"
                                         r".*'moments_in_time'.*got 'hmdb'"):
        WW.setting(cfg, "hmdb")
    mit = WW.setting(cfg, "moments_in_time").dataset
    assert mit["root"] == "/tmp/nowhere/moments_in_time" and mit["train_split"] == "train"
    assert mit["eval_splits"] == ("test",) and mit["multi_label"] is False
    assert WW.REAL_SETS["moments_in_time"].test_split == "val" and WW.REAL_SETS["hmdb51"].test_split == "test1"
    assert set(WW.not_applicable(WW.setting(cfg, "ucf101"))) == {"spatial", "grounding", "temporal"}
    assert set(WW.not_applicable(WW.setting(cfg, "thumos14"))) == {"spatial", "grounding"}
    assert all(s.endswith("skipped.") for s in WW.not_applicable(WW.setting(cfg, "hmdb51")).values())
    # the chapters with one real set still read theirs, and name it in their error
    assert hacs30.setting(cfg, "hacs").dataset["root"] == "/tmp/nowhere/hacs"
    assert stills.setting(cfg, "voc2012_action").dataset["multi_label"] is True
    with pytest.raises(ValueError, match=r"DATASET must be 'synthetic' or 'hacs' \(HACS Clips under DATA_ROOT/hacs\)"):
        hacs30.setting(cfg, "hmdb51")


def test_where_when_on_hmdb51_split1(paper003_root):
    import actx.experiments as E
    from actx.experiments import where_when as WW

    cfg = _cfg(paper003_root, "hmdb51", WW.setting)
    records = WW.clip_records(cfg)
    assert set(records) == {"train", "val", "test"}  # trimmed clips: no "untrimmed"
    assert {s: len(r) for s, r in records.items()} == {"train": 8, "val": 2, "test": 4}  # split 1's flags
    assert records["test"].classes == ("brush_hair", "climb_stairs")
    clip = records["test"][0]
    assert clip.split == "test" and clip.extra["frames"] == FPS and clip.extra["fps"] == pytest.approx(FPS)
    assert clip.extra["action_frames"] == (0, FPS)
    assert (cfg.cache / WW.PROBES / "hmdb51.json").is_file()
    runs = {name: [E.run(cfg, name, "rgb", 0, records=records, params=SMALL_WW, progress=False)]
            for name in ("where_when", "where_when_no_spatial")}
    result = runs["where_when"][0]
    assert result.path.parts[-4] == "hmdb51" and result.recipe["dataset"]["name"] == "hmdb51"
    assert result.probs["test"].shape == (4, 2) and set(result.metrics) == {"val", "test"}
    table = WW.top1_table(runs, splits=("val", *E.eval_splits(cfg)))
    assert list(table.index) == ["Where and when (ours)", "Ours w/o spatial attention"]
    assert {"val top-1", "test top-1"} <= set(table.columns) and "test_shifted top-1" not in table
    assert table.loc["Where and when (ours)", "Paper: HMDB51"] == 53.07
    assert WW.mask_stats(result, "test")["mean"] > 0


@pytest.mark.filterwarnings("ignore:mean_average_precision")  # 2 of THUMOS'14's 20 classes have clips
def test_where_when_on_thumos14_localises_the_annotated_segments(paper003_root):
    import actx.experiments as E
    from actx.experiments import where_when as WW
    from actx.features import ensure_features

    cfg = _cfg(paper003_root, "thumos14", WW.setting)
    records = WW.clip_records(cfg)
    assert {s: len(r) for s, r in records.items()} == {"train": 8, "val": 2, "test": 4, "untrimmed": 5}
    assert not any(r.id.endswith("9000") for s in ("train", "val", "test") for r in records[s])  # 003 B.1
    assert all(len(r.labels) == 1 for s in ("train", "val", "test") for r in records[s])
    result = E.run(cfg, "where_when", "rgb", 0, records=records, params=SMALL_WW, progress=False)
    assert result.probs["test"].shape == (4, 20)  # THUMOS'14's 20 classes
    untrimmed = records["untrimmed"]
    store = ensure_features(E.method_config(cfg, E.get_method("where_when")), list(untrimmed), "rgb",
                            progress=False)
    both = next(r for r in untrimmed if r.id.endswith("9000"))
    assert WW.truth_segments(both) == [(3, 19, "Diving"), (29, 45, "HighJump")]  # seconds x 16 fps
    temporal = WW.temporal_localisation(cfg, result, untrimmed, store)
    assert len(temporal["truth"]) == 6 and set(temporal["mAP"]) == set(L.TEMPORAL_IOUS)
    assert all(0.0 <= v <= 1.0 for v in temporal["mAP"].values())
    flat = WW.temporal_localisation(cfg, result, untrimmed, store, uniform=True, curves=temporal["curves"])
    # uniform attention: one segment, the whole 48-frame video, against [16, 32): IoU 1/3 per frame
    assert flat["frames"]["iou"] == pytest.approx((4 * 16 / 48 + 32 / 48) / 5)


def test_where_when_missing_archive_names_the_folder(tmp_path):
    from actx.experiments import where_when as WW

    cfg = _cfg(tmp_path, "ucf101", WW.setting)
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'ucf101'} does not exist"):
        WW.clip_records(cfg)
    make_hmdb51(tmp_path / "hmdb51")
    (tmp_path / "hmdb51" / "climb_stairs" / "climb_stairs_6.avi").unlink()
    with pytest.raises(FileNotFoundError, match="climb_stairs_6.avi"):
        WW.clip_records(_cfg(tmp_path, "hmdb51", WW.setting))
