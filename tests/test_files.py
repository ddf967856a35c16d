"""actx.files: atomic writes."""

import pytest

from actx.files import atomic_write, write_csv


def test_atomic_write_replaces_whole_files_and_leaves_nothing_behind_on_failure(tmp_path):
    path = tmp_path / "sub" / "table.csv"
    write_csv(path, [{"a": 1, "b": "x"}], ["a", "b"])  # creates the folder
    assert path.read_text().splitlines() == ["a,b", "1,x"]

    def broken(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, broken)
    assert path.read_text().splitlines() == ["a,b", "1,x"]  # the earlier file is untouched
    assert sorted(p.name for p in path.parent.iterdir()) == ["table.csv"]  # no temporary file left
    seen = []
    atomic_write(path, lambda tmp: seen.append(tmp.name) or tmp.write_text("new"))
    assert path.read_text() == "new" and seen[0].startswith(".table.tmp") and seen[0].endswith(".csv")
