"""Committed notebooks are clean: no outputs, no execution counts, exactly one parameters cell."""

import json

import nbformat
import pytest

from actx.course import chapters, check_notebook


def _notebook(tmp_path, cells, name="99_fixture.ipynb"):
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    path = tmp_path / name
    nbformat.write(nb, path)
    return path


def _parameters(source='PROFILE = "default"\nDATA_ROOT = "../data"\nDEVICE = "auto"\n'):
    return nbformat.v4.new_code_cell(source, metadata={"tags": ["parameters"]})


def test_the_course_has_notebooks():
    assert [c.number for c in chapters()][:1] == ["00"]


@pytest.mark.parametrize("chapter", chapters(), ids=lambda c: c.path.name)
def test_committed_notebook_is_clean(chapter):
    assert check_notebook(chapter.path) == []


def test_clean_fixture_passes(tmp_path):
    path = _notebook(tmp_path, [nbformat.v4.new_markdown_cell("# t"), _parameters(),
                                nbformat.v4.new_code_cell("x = 1")])
    assert check_notebook(path) == []


def test_notebook_with_output_is_rejected(tmp_path):
    cell = nbformat.v4.new_code_cell("print(1)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    path = _notebook(tmp_path, [_parameters(), cell])
    problems = check_notebook(path)
    assert len(problems) == 1 and "outputs" in problems[0] and str(path) in problems[0]


def test_execution_count_is_rejected(tmp_path):
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.execution_count = 3
    assert any("execution count" in p for p in check_notebook(_notebook(tmp_path, [_parameters(), cell])))


@pytest.mark.parametrize("cells, expected", [
    ([], "0 cells are tagged"),
    ([_parameters(), _parameters()], "2 cells are tagged"),
    ([_parameters('PROFILE = "ci"\nDATA_ROOT = "../data"\n')], "missing DEVICE"),
    ([_parameters('PROFILE = "ci"\nDATA_ROOT = str(1)\nDEVICE = "auto"\n')], "not a plain literal"),
    ([_parameters('import os\nPROFILE = "ci"\nDATA_ROOT = "."\nDEVICE = "auto"\n')], "plain assignments"),
])
def test_parameters_cell_rules(tmp_path, cells, expected):
    problems = check_notebook(_notebook(tmp_path, cells))
    assert any(expected in p for p in problems), problems


def test_unreadable_notebook(tmp_path):
    path = tmp_path / "broken.ipynb"
    path.write_text("{not json")
    assert "not a readable notebook" in check_notebook(path)[0]
