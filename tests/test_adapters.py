"""Adapters for the real data sets, on tiny fixture files written in each set's official format."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from actx.data import AnnotationError, load_dataset
from actx.data import adapters


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def touch(path: Path) -> Path:
    return write(path, "")


def assert_error_at(exc: pytest.ExceptionInfo, path: Path, line: int | None) -> None:
    err = exc.value
    assert isinstance(err, AnnotationError)
    assert Path(err.path) == path.resolve() and err.line == line
    assert str(path.resolve()) in str(err) and (line is None or f":{line}:" in str(err))


def assert_load_fails(bad: Path, text: str, match: str, line: int, *load_args, **load_kwargs) -> None:
    """Write ``text`` to ``bad``, then load_dataset(*load_args) must raise an AnnotationError matching
    ``match`` that names ``bad`` and ``line``."""
    write(bad, text)
    with pytest.raises(AnnotationError, match=match) as exc:
        load_dataset(*load_args, **load_kwargs)
    assert_error_at(exc, bad, line)


# --- generic rules ------------------------------------------------------------------------------------------

def test_every_adapter_is_registered():
    from actx.data import LOADERS, _import_loaders

    _import_loaders()
    assert set(adapters.LAYOUTS) <= set(LOADERS)


def test_unknown_split_names_what_exists(tmp_path):
    with pytest.raises(ValueError, match=r"'train' \(train1..train3\)"):
        load_dataset("ucf101", tmp_path, "train4")
    with pytest.raises(ValueError, match="unknown split 'val'"):
        load_dataset("hollywood2", tmp_path, "val")


# --- Hollywood2 ---------------------------------------------------------------------------------------------

def make_hollywood2(root: Path) -> None:
    positives = {"actioncliptrain00001": {"Kiss", "HugPerson"}, "actioncliptrain00002": {"Run"},
                 "actioncliptrain00003": set()}
    for action in adapters.HOLLYWOOD2_CLASSES:
        lines = [f"{clip}  {1 if action in pos else -1}" for clip, pos in positives.items()]
        write(root / "ClipSets" / f"{action}_train.txt", "\n".join(lines) + "\n")
        write(root / "ClipSets" / f"{action}_test.txt", "actioncliptest00001  1\n")
    touch(root / "AVIClips" / "actioncliptrain00001.avi")


def test_hollywood2_multilabel_records(tmp_path):
    make_hollywood2(tmp_path)
    ds = load_dataset("hollywood2", tmp_path, "train")
    assert ds.classes == adapters.HOLLYWOOD2_CLASSES and len(ds.classes) == 12
    assert [r.id for r in ds] == ["actioncliptrain00001", "actioncliptrain00002", "actioncliptrain00003"]
    assert ds[0].labels == ("HugPerson", "Kiss") and ds[1].labels == ("Run",) and ds[2].labels == ()
    assert ds[0].video == str(tmp_path.resolve() / "AVIClips" / "actioncliptrain00001.avi")
    assert ds.label_matrix().sum() == 3
    test = load_dataset("hollywood2", tmp_path, "test")
    assert test[0].labels == adapters.HOLLYWOOD2_CLASSES


def test_hollywood2_errors(tmp_path):
    make_hollywood2(tmp_path)
    bad = write(tmp_path / "ClipSets" / "Eat_train.txt", "actioncliptrain00001 1\nactioncliptrain00002 yes\n")
    with pytest.raises(AnnotationError) as exc:
        load_dataset("hollywood2", tmp_path, "train")
    assert_error_at(exc, bad, 2)
    (tmp_path / "ClipSets" / "Kiss_test.txt").unlink()
    with pytest.raises(FileNotFoundError, match="Kiss_test.txt.*\n.*ClipSets"):
        load_dataset("hollywood2", tmp_path, "test")


def test_missing_videos_are_kept_unless_check_files(tmp_path):
    make_hollywood2(tmp_path)
    assert len(load_dataset("hollywood2", tmp_path, "train")) == 3  # two of three .avi files are absent
    with pytest.raises(FileNotFoundError, match=r"2 of 3 listed videos are missing(.|\n)*train00002"):
        load_dataset("hollywood2", tmp_path, "train", check_files=True)


# --- UCF101 -------------------------------------------------------------------------------------------------

def make_ucf101(root: Path) -> None:
    lists = root / "ucfTrainTestlist"
    write(lists / "classInd.txt", "1 ApplyEyeMakeup\r\n2 HandstandPushups\r\n3 Archery\r\n")
    write(lists / "trainlist01.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\n"
                                     "HandstandPushups/v_HandStandPushups_g08_c01.avi 2\r\n")
    write(lists / "trainlist02.txt", "Archery/v_Archery_g01_c01.avi 3\r\n")
    write(lists / "testlist01.txt", "Archery/v_Archery_g02_c01.avi\r\n")


def test_ucf101_classes_splits_and_suffix(tmp_path):
    make_ucf101(tmp_path)
    ds = load_dataset("ucf101", tmp_path, "train")
    assert ds.classes == ("ApplyEyeMakeup", "HandstandPushups", "Archery")  # classInd order, not sorted
    assert [r.labels for r in ds] == [("ApplyEyeMakeup",), ("HandstandPushups",)]
    assert ds[1].video.endswith("UCF-101/HandstandPushups/v_HandStandPushups_g08_c01.avi")
    assert ds[1].id == "v_HandStandPushups_g08_c01" and ds[1].split == "train"
    train2 = load_dataset("ucf101", tmp_path, "train2")
    assert [r.labels for r in train2] == [("Archery",)] and train2.split == "train2"
    assert load_dataset("ucf101", tmp_path, "test1")[0].labels == ("Archery",)


def test_ucf101_index_mismatch(tmp_path):
    make_ucf101(tmp_path)
    bad = write(tmp_path / "ucfTrainTestlist" / "trainlist01.txt",
                "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nArchery/v_Archery_g01_c01.avi 2\n")
    with pytest.raises(AnnotationError, match="disagrees with classInd") as exc:
        load_dataset("ucf101", tmp_path, "train")
    assert_error_at(exc, bad, 2)


# --- HMDB51 -------------------------------------------------------------------------------------------------

def make_hmdb51(root: Path) -> None:
    d = root / "testTrainMulti_7030_splits"
    for k in (1, 2, 3):
        flag = 2 if k == 1 else 1
        write(d / f"brush_hair_test_split{k}.txt", "April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1 \n"
                                                   f"Blonde_brush_hair_f_nm_np1_fr_goo_0.avi {flag} \n")
        write(d / f"climb_stairs_test_split{k}.txt", f"stairs_0.avi {0 if k == 2 else 2} \n")
    touch(root / "brush_hair" / "April_09_brush_hair_u_nm_np1_ba_goo_0.avi")


def test_hmdb51_flags_and_splits(tmp_path):
    make_hmdb51(tmp_path)
    ds = load_dataset("hmdb51", tmp_path, "train")
    assert ds.classes == ("brush_hair", "climb_stairs")
    assert [r.id for r in ds] == ["April_09_brush_hair_u_nm_np1_ba_goo_0"]
    assert Path(ds[0].video).is_file()
    test1 = load_dataset("hmdb51", tmp_path, "test")
    assert [(r.id, r.labels) for r in test1] == [("Blonde_brush_hair_f_nm_np1_fr_goo_0", ("brush_hair",)),
                                                 ("stairs_0", ("climb_stairs",))]
    assert len(load_dataset("hmdb51", tmp_path, "train2")) == 2  # flag 0 (unused) leaves stairs_0 out
    assert len(load_dataset("hmdb51", tmp_path, "test2")) == 0


def test_hmdb51_bad_flag(tmp_path):
    make_hmdb51(tmp_path)
    bad = write(tmp_path / "testTrainMulti_7030_splits" / "climb_stairs_test_split1.txt",
                "a.avi 1\nb.avi 3\n")
    with pytest.raises(AnnotationError) as exc:
        load_dataset("hmdb51", tmp_path, "train")
    assert_error_at(exc, bad, 2)


# --- VOC 2012 action ----------------------------------------------------------------------------------------

def voc_person(actions: set[str], box=(10, 20, 110, 220)) -> str:
    flags = "".join(f"<{a}>{int(a in actions)}</{a}>" for a in adapters.VOC_ACTION_CLASSES + ("other",))
    x1, y1, x2, y2 = box
    return (f"<object><name>person</name><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax>"
            f"<ymax>{y2}</ymax></bndbox><actions>{flags}</actions></object>")


def make_voc(root: Path) -> None:
    xml = ("<annotation><filename>{id}.jpg</filename><size><width>500</width><height>375</height>"
           "<depth>3</depth></size>{objects}</annotation>")
    write(root / "Annotations" / "2010_000002.xml", xml.format(id="2010_000002", objects=voc_person(
        {"walking", "phoning"}) + voc_person({"other"}, (200, 30, 260, 300)) + voc_person({"reading"})))
    write(root / "Annotations" / "2010_000003.xml",
          xml.format(id="2010_000003", objects=voc_person({"jumping"})))
    write(root / "ImageSets" / "Action" / "train.txt", "2010_000002 1\n2010_000002 2\n2010_000003 1\n")
    write(root / "ImageSets" / "Action" / "val.txt", "2010_000002 3\n")
    touch(root / "JPEGImages" / "2010_000002.jpg")


def test_voc_persons_union_and_other(tmp_path):
    make_voc(tmp_path)
    ds = load_dataset("voc2012_action", tmp_path, "train")
    assert ds.classes == adapters.VOC_ACTION_CLASSES and len(ds.classes) == 10 and "other" not in ds.classes
    assert [r.id for r in ds] == ["2010_000002", "2010_000003"]
    img = ds[0]
    assert img.labels == ("phoning", "walking")  # union over listed people, class order; person 3 not listed
    p1, p2 = img.extra["persons"]
    assert p1 == {"box": (9.0, 19.0, 110.0, 220.0), "actions": ("phoning", "walking"), "other": False,
                  "index": 1}
    assert p2["actions"] == () and p2["other"] is True and p2["index"] == 2
    assert (img.extra["width"], img.extra["height"], img.extra["box_units"]) == (500, 375, "pixels")
    assert img.video.endswith("JPEGImages/2010_000002.jpg") and ds[1].labels == ("jumping",)
    val = load_dataset("voc2012_action", tmp_path, "val")
    assert val[0].labels == ("reading",) and val[0].extra["persons"][0]["index"] == 3
    write(tmp_path / "ImageSets" / "Action" / "test.txt", "2010_000002\n")  # image ids only: every person
    test = load_dataset("voc2012_action", tmp_path, "test")
    assert [p["index"] for p in test[0].extra["persons"]] == [1, 2, 3]
    assert test[0].labels == ("phoning", "reading", "walking")


def test_voc_errors(tmp_path):
    make_voc(tmp_path)
    bad = tmp_path / "ImageSets" / "Action" / "val.txt"
    assert_load_fails(bad, "2010_000002 1\n2010_000003 1\n2010_000002 4\n", "no annotated person with index 4",
                      3, "voc2012_action", tmp_path, "val")
    assert_load_fails(bad, "2010_000002 1\n2010_000002\n", "both with and without", 2, "voc2012_action",
                      tmp_path, "val")
    write(tmp_path / "ImageSets" / "Action" / "val.txt", "2010_000002 one\n")
    with pytest.raises(AnnotationError, match="person index 'one'"):
        load_dataset("voc2012_action", tmp_path, "val")
    broken = write(tmp_path / "Annotations" / "2010_000003.xml", "<annotation>\n<object>\n</annotation>\n")
    write(tmp_path / "ImageSets" / "Action" / "val.txt", "2010_000003 1\n")
    with pytest.raises(AnnotationError, match="malformed XML") as exc:
        load_dataset("voc2012_action", tmp_path, "val")
    assert_error_at(exc, broken, 3)


# --- HACS ---------------------------------------------------------------------------------------------------

HACS_CSV = """classname,youtube_id,subset,start,end,label
Archery,a2X2hz1G6i8,training,15.5,17.5,1
Archery,NUdji_CqvcY,training,77.5,79.5,-1
Brushing teeth,0O_qMHxBfXg,training,24.5,26.5,1
Brushing teeth,0O_qMHxBfXg,validation,30.5,32.5,-1
Zumba,xyz,training,1.0,3.0,1
"""


def test_hacs_positives_negatives_and_pattern(tmp_path):
    write(tmp_path / "HACS_v1.1.1" / "HACS_clips_v1.1.1.csv", HACS_CSV)
    ds = load_dataset("hacs", tmp_path, "train")
    assert ds.classes == ("Archery", "Brushing teeth", "Zumba")  # every classname, sorted
    assert [r.labels for r in ds] == [("Archery",), (), ("Brushing teeth",), ("Zumba",)]
    neg = ds[1]
    assert neg.extra["negative_of"] == "Archery" and "negative_of" not in ds[0].extra
    assert (neg.start, neg.end, neg.thread) == (77.5, 79.5, "NUdji_CqvcY")
    assert ds[2].video == str(tmp_path.resolve() / "videos" / "Brushing_teeth" / "v_0O_qMHxBfXg.mp4")
    val = load_dataset("hacs", tmp_path, "val")
    assert len(val) == 1 and val[0].extra["negative_of"] == "Brushing teeth"
    sub = load_dataset("hacs", tmp_path, "train", classes=["Zumba", "Archery"], negatives=False,
                       video_pattern="clips/{youtube_id}_{start}.mp4")
    assert sub.classes == ("Zumba", "Archery") and [r.labels for r in sub] == [("Archery",), ("Zumba",)]
    assert sub[0].video.endswith("clips/a2X2hz1G6i8_15.5.mp4")


def test_hacs_errors(tmp_path):
    bad = write(tmp_path / "HACS_clips_v1.1.csv", HACS_CSV.replace("77.5,79.5,-1", "77.5,79.5,2"))
    with pytest.raises(AnnotationError, match="label '2'") as exc:
        load_dataset("hacs", tmp_path, "train")
    assert_error_at(exc, bad, 3)
    write(bad, HACS_CSV.replace("24.5,26.5", "26.5,24.5"))
    with pytest.raises(AnnotationError, match="before start") as exc:
        load_dataset("hacs", tmp_path, "train")
    assert_error_at(exc, bad, 4)
    bad.unlink()
    with pytest.raises(FileNotFoundError, match="HACS_clips_v1.1.1.csv"):
        load_dataset("hacs", tmp_path, "train")


HACS_JSON = """{
  "database": {
    "--0edUL8zmA": {
      "annotations": [
        {"label": "Dodgeball", "segment": [12.60, 88.16]},
        {"label": "Dodgeball", "segment": [5.40, 11.60]}
      ],
      "subset": "training", "duration": "92.166667", "url": "https://www.youtube.com/watch?v=--0edUL8zmA"
    },
    "abc": {"annotations": [{"label": "Brushing teeth", "segment": [1, 2]},
                            {"label": "Zumba", "segment": [3, 4]}], "subset": "training", "duration": 10.0},
    "val1": {"annotations": [{"label": "Zumba", "segment": [0.5, 4.0]}], "subset": "validation"},
    "test1": {"annotations": [], "subset": "testing", "duration": 30.0}
  }
}
"""


def test_hacs_segments_json(tmp_path):
    write(tmp_path / "HACS_v1.1.1" / "HACS_segments_v1.1.1.json", HACS_JSON)
    ds = load_dataset("hacs", tmp_path, "train", segments=True)
    assert ds.classes == ("Brushing teeth", "Dodgeball", "Zumba")
    assert [(r.id, r.labels) for r in ds] == [("--0edUL8zmA", ("Dodgeball",)),
                                              ("abc", ("Brushing teeth", "Zumba"))]
    v = ds[0]
    assert v.extra["segments"] == [(5.4, 11.6, "Dodgeball"), (12.6, 88.16, "Dodgeball")]  # sorted by start
    assert v.extra["duration"] == pytest.approx(92.166667)
    assert (v.start, v.end, v.thread) == (None, None, v.id)
    assert v.video == str(tmp_path.resolve() / "videos" / "Dodgeball" / "v_--0edUL8zmA.mp4")
    assert ds[1].video.endswith("videos/Brushing_teeth/v_abc.mp4")  # the first segment's class folder
    # the same file named as annotation_file is recognised by its content; classes= restricts
    zumba = load_dataset("hacs", tmp_path, "train", annotation_file="HACS_v1.1.1/HACS_segments_v1.1.1.json",
                         classes=["Zumba"])
    assert [(r.id, r.extra["segments"]) for r in zumba] == [("abc", [(3.0, 4.0, "Zumba")])]
    test = load_dataset("hacs", tmp_path, "test", segments=True)
    assert test[0].labels == () and test[0].extra["unlabelled"]
    assert test[0].video.endswith("videos/testing/v_test1.mp4")


def test_hacs_format_errors_say_what_was_expected(tmp_path):
    write(tmp_path / "HACS_v1.1.1" / "HACS_clips_v1.1.1.csv", HACS_CSV)
    with pytest.raises(AnnotationError, match="expected the HACS Segments JSON"):
        load_dataset("hacs", tmp_path, "train", segments=True,
                     annotation_file="HACS_v1.1.1/HACS_clips_v1.1.1.csv")
    other = write(tmp_path / "other.csv", "a,b,c\n1,2,3\n")
    expected_both = "expected the HACS Clips CSV.*or the HACS Segments JSON"
    with pytest.raises(AnnotationError, match=expected_both) as exc:
        load_dataset("hacs", tmp_path, "train", annotation_file="other.csv")
    assert_error_at(exc, other, 1)
    activitynet_like = write(tmp_path / "x.json", '{"version": "1.3", "taxonomy": []}')
    with pytest.raises(AnnotationError, match="no 'database' object") as exc:
        load_dataset("hacs", tmp_path, "train", annotation_file="x.json")
    assert_error_at(exc, activitynet_like, None)
    bad = write(tmp_path / "bad.json", HACS_JSON.replace("[3, 4]", "[4, 3]"))
    with pytest.raises(AnnotationError, match="before start") as exc:
        load_dataset("hacs", tmp_path, "train", annotation_file="bad.json")
    assert_error_at(exc, bad, 10)
    broken = write(tmp_path / "broken.json", HACS_JSON.replace('"subset": "validation"', '"subset": '))
    with pytest.raises(AnnotationError, match="not valid JSON") as exc:
        load_dataset("hacs", tmp_path, "train", annotation_file="broken.json")
    assert_error_at(exc, broken, 12)


# --- J-HMDB -------------------------------------------------------------------------------------------------

def make_jhmdb(root: Path) -> np.ndarray:
    import scipy.io

    for k in (1, 2, 3):
        write(root / "splits" / f"brush_hair_test_split{k}.txt",
              f"hair_a.avi {1 if k != 2 else 2}\nhair_b.avi 2\n")
        write(root / "splits" / f"walk_test_split{k}.txt", "walk_a.avi 1\n")
    mask = np.zeros((24, 32, 3), dtype=np.uint8)  # (H, W, T)
    mask[4:10, 6:9, 0] = 1
    mask[0:24, 31:32, 1] = 1  # frame 2 touches the bottom-right border; frame 3 is empty
    pos = np.arange(2 * 15 * 3, dtype=np.float64).reshape(2, 15, 3)  # (2, joints, T)
    for cls, name in (("brush_hair", "hair_a"), ("brush_hair", "hair_b"), ("walk", "walk_a")):
        (root / "joint_positions" / cls / name).mkdir(parents=True)
        scipy.io.savemat(root / "joint_positions" / cls / name / "joint_positions.mat", {"pos_img": pos})
        (root / "puppet_mask" / cls / name).mkdir(parents=True)
        scipy.io.savemat(root / "puppet_mask" / cls / name / "puppet_mask.mat", {"part_mask": mask})
    return pos


def test_jhmdb_keypoints_boxes_and_splits(tmp_path):
    pos = make_jhmdb(tmp_path)
    ds = load_dataset("jhmdb", tmp_path, "train", progress=False)
    assert ds.classes == ("brush_hair", "walk") and [r.id for r in ds] == ["hair_a", "walk_a"]
    r = ds[0]
    assert r.video.endswith("ReCompress_Videos/brush_hair/hair_a.avi")
    assert r.extra["frames_dir"].endswith("Rename_Images/brush_hair/hair_a")
    kp = r.extra["keypoints"]
    assert kp.shape == (3, 15, 2) and kp.dtype == np.float32 and kp[2, 4, 1] == pos[1, 4, 2]
    boxes = r.extra["boxes"]
    assert boxes.shape == (3, 4)
    np.testing.assert_array_equal(boxes[0], [6, 4, 9, 10])
    np.testing.assert_array_equal(boxes[1], [31, 0, 32, 24])
    assert np.isnan(boxes[2]).all()
    assert [x.id for x in load_dataset("jhmdb", tmp_path, "test2", progress=False)] == ["hair_a", "hair_b"]
    light = load_dataset("jhmdb", tmp_path, "test", keypoints=False, boxes=False)
    assert "keypoints" not in light[0].extra and "boxes" not in light[0].extra


def test_jhmdb_missing_and_bad_mat(tmp_path):
    import scipy.io

    make_jhmdb(tmp_path)
    bad = tmp_path / "joint_positions" / "walk" / "walk_a" / "joint_positions.mat"
    scipy.io.savemat(bad, {"pos_world": np.zeros((3, 15, 2))})
    with pytest.raises(AnnotationError, match="no variable 'pos_img'") as exc:
        load_dataset("jhmdb", tmp_path, "train", progress=False)
    assert_error_at(exc, bad, None)
    (tmp_path / "puppet_mask" / "walk" / "walk_a" / "puppet_mask.mat").unlink()
    with pytest.raises(FileNotFoundError, match="boxes=False"):
        load_dataset("jhmdb", tmp_path, "train", keypoints=False, progress=False)


# --- AVA ----------------------------------------------------------------------------------------------------

AVA_MAP_60 = """item {
  name: "bend/bow (at the waist)"
  id: 1
}
item {
  name: "stand"
  id: 12
}
item { name: "talk to (e.g., self, a person, a group)" id: 79 }
"""
AVA_CSV = """-5KQ66BBWC4,0902,0.077,0.151,0.283,0.811,79,1
-5KQ66BBWC4,0902,0.077,0.151,0.283,0.811,12,1
-5KQ66BBWC4,0902,0.332,0.194,0.481,0.891,1,0
-5KQ66BBWC4,0903,0.5,0.5,0.6,0.6,80,2
zlVkeKC6Ha8,1798,0.1,0.1,0.9,0.9,1,0
"""


def test_ava_keyframes_persons_and_label_map(tmp_path):
    ann = tmp_path / "annotations"
    write(ann / adapters.AVA_LABEL_MAP, AVA_MAP_60)
    write(ann / "ava_action_list_v2.1.pbtxt",
          'label {\n  name: "bend/bow (at the waist)"\n  label_id: 1\n  label_type: PERSON_MOVEMENT\n}\n'
          'label { name: "watch (a person)" label_id: 80 label_type: PERSON_INTERACTION }\n')
    write(ann / "ava_train_v2.1.csv", AVA_CSV)
    touch(tmp_path / "videos" / "-5KQ66BBWC4.mkv")
    ds = load_dataset("ava", tmp_path, "train")
    assert ds.classes == ("bend/bow (at the waist)", "stand", "talk to (e.g., self, a person, a group)")
    assert [r.id for r in ds] == ["-5KQ66BBWC4_0902", "zlVkeKC6Ha8_1798"]  # keyframe 903 has only id 80
    kf = ds[0]
    assert kf.labels == ds.classes and (kf.start, kf.end, kf.thread) == (900.5, 903.5, "-5KQ66BBWC4")
    assert kf.video.endswith("videos/-5KQ66BBWC4.mkv") and ds[1].video.endswith("videos/zlVkeKC6Ha8")
    p1, p0 = kf.extra["persons"]
    assert p1 == {"box": (0.077, 0.151, 0.283, 0.811), "person_id": 1,
                  "actions": ("stand", "talk to (e.g., self, a person, a group)")}
    assert p0["actions"] == ("bend/bow (at the waist)",) and kf.extra["timestamp"] == 902
    all80 = load_dataset("ava", tmp_path, "train", label_map="ava_action_list_v2.1.pbtxt")
    assert all80.classes == ("bend/bow (at the waist)", "watch (a person)") and len(all80) == 3


def test_ava_errors(tmp_path):
    ann = tmp_path / "annotations"
    write(ann / adapters.AVA_LABEL_MAP, AVA_MAP_60)
    bad = write(ann / "ava_val_v2.1.csv", AVA_CSV.replace("0903,0.5", "0903,1.5"))
    with pytest.raises(AnnotationError, match="not normalised") as exc:
        load_dataset("ava", tmp_path, "val")
    assert_error_at(exc, bad, 4)
    bad_map = write(ann / adapters.AVA_LABEL_MAP, 'item {\n name: "a"\n id: 1\n}\nitem {\n name: "b"\n}\n')
    with pytest.raises(AnnotationError, match="needs 'name' and 'id'") as exc:
        load_dataset("ava", tmp_path, "val")
    assert_error_at(exc, bad_map, 5)
    with pytest.raises(ValueError, match="'train' / 'val'"):
        load_dataset("ava", tmp_path, "test")


def test_ava_excluded_key_frames_and_frame_map(tmp_path):
    import pandas as pd

    from actx import metrics

    ann = tmp_path / "annotations"
    write(ann / adapters.AVA_LABEL_MAP, AVA_MAP_60)
    write(ann / "ava_val_v2.1.csv", AVA_CSV)
    assert load_dataset("ava", tmp_path, "val").excluded == frozenset()  # no file: nothing excluded
    write(ann / "ava_val_excluded_timestamps_v2.1.csv", "zlVkeKC6Ha8,1798\n-5KQ66BBWC4,0950\n")
    ds = load_dataset("ava", tmp_path, "val")
    assert ds.excluded == {("zlVkeKC6Ha8", 1798), ("-5KQ66BBWC4", 950)}
    assert [r.id for r in ds] == ["-5KQ66BBWC4_0902"]  # 1798 is dropped
    gt = adapters.ava_ground_truth(ds)
    assert len(gt) == 3 and set(gt["frame"]) == {902}
    det = gt.assign(score=[0.9, 0.8, 0.7])
    spurious = det.iloc[:1].assign(video="zlVkeKC6Ha8", frame=1798, score=0.99)  # on an excluded key frame
    det = pd.concat([spurious, det], ignore_index=True)
    assert metrics.ava_frame_map(det, gt, classes=ds.classes)["mAP"] < 1.0
    assert metrics.ava_frame_map(det, gt, classes=ds.classes, excluded=ds.excluded)["mAP"] == 1.0


def test_ava_label_map_and_exclusion_errors(tmp_path):
    ann = tmp_path / "annotations"
    write(ann / "ava_val_v2.1.csv", AVA_CSV)
    dup = write(ann / adapters.AVA_LABEL_MAP, AVA_MAP_60 + 'item {\n  name: "stand"\n  id: 14\n}\n')
    with pytest.raises(AnnotationError, match=r"class name 'stand' appears twice \(first at line 5\)") as exc:
        load_dataset("ava", tmp_path, "val")
    assert_error_at(exc, dup, 10)
    write(dup, AVA_MAP_60)
    bad = write(ann / "ava_val_excluded_timestamps_v2.1.csv", "zlVkeKC6Ha8,1798\nzlVkeKC6Ha8,17x9\n")
    with pytest.raises(AnnotationError, match="timestamp '17x9'") as exc:
        load_dataset("ava", tmp_path, "val")
    assert_error_at(exc, bad, 2)


# --- THUMOS'14 ----------------------------------------------------------------------------------------------

def make_thumos(root: Path) -> Path:
    folder = root / "TH14_Temporal_annotations_validation" / "annotation"
    for cls in adapters.THUMOS14_CLASSES:
        write(folder / f"{cls}_val.txt", "")
    write(folder / "CliffDiving_val.txt", "video_validation_0000051  67.5 75.9\n")
    write(folder / "Diving_val.txt",
          "video_validation_0000051  67.5 75.9\nvideo_validation_0000051 12.0 14.1\n")
    write(folder / "BaseballPitch_val.txt", "video_validation_0000266 1.0 2.0\n")
    write(folder / "Ambiguous_val.txt",
          "video_validation_0000051 30.0 31.0\nvideo_validation_0000999 3.0 4.0\n")
    return folder


def test_thumos14_segments_and_labels(tmp_path):
    make_thumos(tmp_path)
    ds = load_dataset("thumos14", tmp_path, "val")
    assert ds.classes == adapters.THUMOS14_CLASSES and len(ds.classes) == 20
    assert [r.id[-4:] for r in ds] == ["0051", "0266", "0999"]
    v = ds[0]
    assert v.labels == ("CliffDiving", "Diving")
    assert v.extra["segments"] == [(12.0, 14.1, "Diving"), (67.5, 75.9, "CliffDiving"),
                                   (67.5, 75.9, "Diving")]
    assert v.extra["ambiguous"] == [(30.0, 31.0)] and ds[2].labels == ()
    assert v.video.endswith("validation/video_validation_0000051.mp4")
    with pytest.raises(ValueError, match="trains on 'val'"):
        load_dataset("thumos14", tmp_path, "train")


def test_thumos14_errors(tmp_path):
    folder = make_thumos(tmp_path)
    bad = write(folder / "Shotput_val.txt",
                "video_validation_0000001 1.0 2.0\nvideo_validation_0000001 1.0\n")
    with pytest.raises(AnnotationError) as exc:
        load_dataset("thumos14", tmp_path, "val")
    assert_error_at(exc, bad, 2)
    with pytest.raises(FileNotFoundError, match="TH14_Temporal_Annotations_Test"):
        load_dataset("thumos14", tmp_path, "test")


# --- manifest / ActionThread --------------------------------------------------------------------------------

MANIFEST = """video,labels,split,action_start,action_end,thread,scene
threads/0001.mp4,Kiss,train,4.2,7.9,t1,kitchen
threads/0002.mp4,HugPerson;Kiss,test,2.0,5.5,t2,street
threads/0003.mp4,,train,,,t1,kitchen
threads/0004.mp4,HighFive,train2,1,2,,
"""


def test_manifest_and_actionthread(tmp_path):
    write(tmp_path / "manifest.csv", MANIFEST)
    at = load_dataset("actionthread", tmp_path, "train")
    assert at.classes == adapters.ACTIONTHREAD_CLASSES and len(at.classes) == 13
    assert [r.labels for r in at] == [("Kiss",), ()]
    r = at[0]
    assert (r.start, r.end, r.thread, r.id) == (4.2, 7.9, "t1", "threads/0001_4.2-7.9")
    assert r.video == str(tmp_path.resolve() / "threads" / "0001.mp4") and r.extra == {"scene": "kitchen"}
    assert at[1].start is None and at[1].id == "threads/0003"
    assert load_dataset("actionthread", tmp_path, "train2")[0].thread is None
    generic = load_dataset("manifest", tmp_path, "test", file="manifest.csv")
    assert generic.classes == ("HighFive", "HugPerson", "Kiss") and generic[0].labels == ("HugPerson", "Kiss")
    write(tmp_path / "classes.txt", "Kiss\nHugPerson\nHighFive\n")
    assert load_dataset("manifest", tmp_path, "test").classes == ("Kiss", "HugPerson", "HighFive")
    with pytest.raises(ValueError, match=r"splits are \['test', 'train', 'train2'\]"):
        load_dataset("manifest", tmp_path, "val")


def test_manifest_errors(tmp_path):
    bad = tmp_path / "manifest.csv"
    assert_load_fails(bad, MANIFEST.replace("HighFive", "Wave"), r"\['Wave'\] are not in the class list", 5,
                      "actionthread", tmp_path, "train")
    assert_load_fails(bad, MANIFEST.replace("2.0,5.5", "two,5.5"), "action_start 'two'", 3, "manifest",
                      tmp_path, "test")
    assert_load_fails(bad, "video,labels,split\na.mp4,Kiss,train\n", "header lacks columns", 1, "manifest",
                      tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="other.csv(.|\n)*classes.txt"):
        load_dataset("manifest", tmp_path, "train", file="other.csv")


def test_jhmdb_mask_boxes_matches_loop():
    rng = np.random.default_rng(0)
    mask = rng.random((7, 9, 5)) > 0.9  # (H, W, T)
    mask[:, :, 3] = False
    boxes = adapters.mask_boxes(mask)
    for t in range(5):
        ys, xs = np.nonzero(mask[:, :, t])
        expect = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] if len(xs) else [math.nan] * 4
        np.testing.assert_array_equal(boxes[t], np.asarray(expect, dtype=np.float32))


def test_fast_and_line_by_line_parsers_agree(tmp_path, monkeypatch):
    from actx.data.adapters import ava, hacs

    csv_path = write(tmp_path / "ava.csv", AVA_CSV + "vid2,1000,0.1,0.2,0.3,0.4,12,\n")  # no person id
    fast = ava._fast_rows(csv_path)
    assert fast is not None and list(fast) == list(ava._scan_rows(csv_path))
    hacs_path = write(tmp_path / "hacs.csv", HACS_CSV + "Zumba,abc,testing,1.0,3.0,\n")
    slow = list(hacs._scan_rows(hacs_path))
    with monkeypatch.context() as m:  # the fast path must not need the line-by-line pass on a clean file
        m.setattr(hacs, "_scan_rows", None)
        assert hacs._read_rows(hacs_path) == slow
    spaced = write(tmp_path / "spaced.csv", HACS_CSV.replace("training,15.5", "training ,15.5"))
    assert hacs._read_rows(spaced)[0] == ("Archery", "a2X2hz1G6i8", "training", "15.5", "17.5", "1")
