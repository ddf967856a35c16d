"""The course runner times every notebook: CSV rows, summary, budget warning, computed-vs-loaded.

run_chapter is replaced by a fake that writes (or does not write) a file under the profile's cache folder, so the
tests run in milliseconds and exercise everything around papermill.
"""

import csv
import time

import pytest

from actx import course


# The fake chapter 01 sleeps this long, so that it surely overruns a budget of 0.001 s (x 1.5) in any run.
FAKE_SECONDS = 0.01


@pytest.fixture
def fake_course(tmp_path, monkeypatch):
    """Two fake chapters, 00 and 01; chapter 01 writes one cache file per call, 00 writes nothing."""
    monkeypatch.setattr(course, "chapters", lambda: [course.Chapter(tmp_path / "00_a.ipynb"),
                                                    course.Chapter(tmp_path / "01_b.ipynb")])
    calls = []

    def run_chapter(chapter, profile, out_dir, data_root, **params):
        calls.append(chapter.number)
        if chapter.number == "01":
            cache = data_root / "cache" / profile
            cache.mkdir(parents=True, exist_ok=True)
            (cache / f"artefact{len(calls)}.npy").write_bytes(b"x")
            time.sleep(FAKE_SECONDS)
        return out_dir / chapter.path.name

    monkeypatch.setattr(course, "run_chapter", run_chapter)
    return dict(out_dir=tmp_path / "out", data_root=tmp_path / "data", times_csv=tmp_path / "times.csv")


def _rows(path):
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_one_row_per_notebook_appended_across_runs(fake_course, capsys):
    course.run_course("ci", **fake_course)
    course.run_course("ci", **fake_course)
    text = fake_course["times_csv"].read_text()
    assert text.splitlines()[0] == ",".join(course.TIME_COLUMNS) and text.count("timestamp") == 1
    rows = _rows(fake_course["times_csv"])
    assert [r["notebook"] for r in rows] == ["00_a.ipynb", "01_b.ipynb"] * 2
    for r in rows:
        assert r["profile"] == "ci" and r["budget_s"] == ""  # budgets belong to the default profile only
        assert float(r["seconds"]) >= 0 and int(r["cores"]) >= 1
        assert float(r["load_start"]) >= 0 and float(r["load_end"]) >= 0
        assert r["commit"] and r["timestamp"][:2] == "20"
    out = capsys.readouterr().out
    assert "total" in out and "01_b.ipynb" in out and str(fake_course["times_csv"]) in out


def test_computed_when_the_cache_changes_loaded_when_not(fake_course):
    times = course.run_course("ci", **fake_course)
    assert [t.artefacts for t in times] == ["loaded", "computed"]


def test_artefacts_rule():
    before = {"a.npy": (1, 10)}
    assert course.artefacts_status(before, dict(before)) == "loaded"
    assert course.artefacts_status(before, {"a.npy": (2, 10)}) == "computed"  # rewritten
    assert course.artefacts_status(before, {"a.npy": (1, 10), "b.npy": (1, 1)}) == "computed"  # new file
    assert course.artefacts_status({}, {}) == "loaded"


def test_snapshot_sees_new_and_rewritten_files(tmp_path):
    assert course.snapshot(tmp_path / "missing") == {}
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.npy").write_bytes(b"1")
    first = course.snapshot(tmp_path)
    assert list(first) == ["sub/a.npy"]
    (tmp_path / "sub" / "a.npy").write_bytes(b"12")
    assert course.snapshot(tmp_path) != first


def test_overrun_warns_and_is_flagged(fake_course, capsys):
    with pytest.warns(course.CourseOverBudget, match="01_b.ipynb took"):
        times = course.run_course("ci", only=["01"], budgets={"01": 0.001}, **fake_course)
    assert times[0].over_budget and "OVER BUDGET" in capsys.readouterr().out
    assert _rows(fake_course["times_csv"])[0]["budget_s"] == "0.001"


def test_default_profile_uses_the_budget_table(fake_course, monkeypatch):
    monkeypatch.setattr(course, "BUDGETS", {"00": 1e6, "01": 1e6})
    times = course.run_course("default", **fake_course)
    assert [t.budget_s for t in times] == [1e6, 1e6] and not any(t.over_budget for t in times)


def test_budget_table_covers_todays_chapters_within_ten_minutes():
    assert set(course.BUDGETS) >= {f"{i:02d}" for i in range(10)}
    assert sum(course.BUDGETS[f"{i:02d}"] for i in range(10)) <= 600
    assert course.BUDGETS["15"] + course.BUDGETS["16"] <= 600  # issue 16: both settings add at most 10 minutes


def test_a_failed_notebook_keeps_the_rows_before_it(fake_course, monkeypatch):
    fake = course.run_chapter

    def failing(chapter, *args, **kwargs):
        if chapter.number == "01":
            raise course.NotebookFailed("01_b.ipynb failed in cell 3")
        return fake(chapter, *args, **kwargs)

    monkeypatch.setattr(course, "run_chapter", failing)
    with pytest.raises(course.NotebookFailed):
        course.run_course("ci", **fake_course)
    assert [r["notebook"] for r in _rows(fake_course["times_csv"])] == ["00_a.ipynb"]


def test_a_csv_with_other_columns_is_refused(fake_course):
    fake_course["times_csv"].write_text("notebook,seconds\n00_a.ipynb,3\n")
    with pytest.raises(ValueError, match="move the old file aside"):
        course.run_course("ci", **fake_course)


def test_readme_budget_table_matches_the_package():
    readme = (course.REPO_ROOT / "README.md").read_text().splitlines()
    header = next(line for line in readme if line.startswith("| chapter | 00 "))
    values = readme[readme.index(header) + 2]
    chapters = [c.strip() for c in header.strip("|").split("|")][1:-1]
    budgets = [float(v) for v in values.strip("|").split("|")[1:]]
    assert dict(zip(chapters, budgets[:-1])) == course.BUDGETS and budgets[-1] == sum(course.BUDGETS.values())
