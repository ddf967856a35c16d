"""The course: its notebooks in order, their hygiene rules, and a papermill runner.

    python -m actx.course run --profile ci             # every notebook, in order, into build/notebooks/ci/
    python -m actx.course run --profile default --only 01,02
    python -m actx.course check                        # committed notebooks are clean (no outputs, one parameters cell)
    python -m actx.course map                          # one line per notebook

The runner stops at the first failing notebook and says which notebook and which cell failed and where the
executed copy is. Artefacts are load-or-compute inside the notebooks, so a re-run skips finished work.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .config import PROFILE_NAMES, REPO_ROOT, default_data_root

NOTEBOOKS = REPO_ROOT / "notebooks"
BUILD = REPO_ROOT / "build" / "notebooks"
KERNEL = "actx"
REQUIRED_PARAMETERS = ("PROFILE", "DATA_ROOT", "DEVICE")


@dataclass(frozen=True)
class Chapter:
    path: Path

    @property
    def number(self) -> str:
        return self.path.name.split("_", 1)[0]

    @property
    def title(self) -> str:
        """The first markdown heading of the notebook."""
        for cell in json.loads(self.path.read_text())["cells"]:
            if cell["cell_type"] == "markdown":
                for line in "".join(cell["source"]).splitlines():
                    if line.startswith("#"):
                        return line.lstrip("#").strip()
        return self.path.stem


def chapters(folder: Path = NOTEBOOKS) -> list[Chapter]:
    """The course's notebooks, NN_topic.ipynb, in order."""
    return [Chapter(p) for p in sorted(folder.glob("[0-9][0-9]_*.ipynb"))]


# --- hygiene ---------------------------------------------------------------------------------------------------

def check_notebook(path: str | Path) -> list[str]:
    """Problems that keep a notebook from being committed; an empty list means clean.

    Rules: no code cell carries outputs or an execution count; exactly one cell is tagged ``parameters``; that cell
    assigns PROFILE, DATA_ROOT and DEVICE, with plain (literal) values only.
    """
    path = Path(path)
    try:
        nb = json.loads(path.read_text())
        cells = nb["cells"]
    except (OSError, ValueError, KeyError) as exc:
        return [f"{path}: not a readable notebook ({exc})"]
    problems = []
    for i, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs"):
            problems.append(f"{path}: cell {i} carries outputs (clear them before committing)")
        if cell.get("execution_count") is not None:
            problems.append(f"{path}: cell {i} carries an execution count (clear outputs before committing)")
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        problems.append(f"{path}: {len(tagged)} cells are tagged 'parameters'; exactly one must be")
    else:
        problems += [f"{path}: parameters cell: {p}" for p in _check_parameters("".join(tagged[0]["source"]))]
    return problems


def _check_parameters(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [f"does not parse ({exc.msg})"]
    names, problems = set(), []
    for node in tree.body:
        if not isinstance(node, (ast.Assign, ast.AnnAssign)):
            problems.append(f"line {node.lineno}: only plain assignments belong here")
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
        try:
            ast.literal_eval(node.value)
        except (ValueError, TypeError):
            problems.append(f"line {node.lineno}: value is not a plain literal")
    missing = [n for n in REQUIRED_PARAMETERS if n not in names]
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    return problems


# --- running ---------------------------------------------------------------------------------------------------

class NotebookFailed(RuntimeError):
    pass


def run_chapter(chapter: Chapter, profile: str, out_dir: Path, data_root: Path, **params) -> Path:
    """Execute one notebook with papermill; raise NotebookFailed naming the notebook, the cell and the copy."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / chapter.path.name
    parameters = dict(PROFILE=profile, DATA_ROOT=str(data_root), **params)
    try:
        pm.execute_notebook(str(chapter.path), str(target), parameters=parameters, kernel_name=KERNEL,
                            cwd=str(chapter.path.parent), progress_bar=False)
    except PapermillExecutionError as exc:
        raise NotebookFailed(
            f"{chapter.path.name} failed in cell {exc.cell_index} (execution count {exc.exec_count}): "
            f"{exc.ename}: {exc.evalue}\n  executed copy with the traceback: {target}") from None
    return target


def run_course(profile: str = "default", only: list[str] | None = None, out_dir: Path | None = None,
               data_root: Path | None = None, **params) -> list[Path]:
    """Run the notebooks in order (optionally only those numbered in ``only``); stop at the first failure."""
    out_dir = out_dir or BUILD / profile
    data_root = Path(data_root).resolve() if data_root is not None else default_data_root()
    todo = [c for c in chapters() if not only or c.number in only]
    if only and len(todo) != len(set(only)):
        raise SystemExit(f"no notebook numbered {sorted(set(only) - {c.number for c in todo})} in {NOTEBOOKS}")
    done = []
    for chapter in todo:
        start = time.perf_counter()
        print(f"[{profile}] {chapter.path.name} ...", flush=True)
        done.append(run_chapter(chapter, profile, out_dir, data_root, **params))
        print(f"[{profile}] {chapter.path.name} done in {time.perf_counter() - start:.0f} s", flush=True)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m actx.course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute the notebooks in order with papermill")
    run.add_argument("--profile", default="default", choices=PROFILE_NAMES)
    run.add_argument("--only", default="", help="comma-separated notebook numbers, e.g. 01,02")
    run.add_argument("--out", type=Path, default=None, help="folder for executed copies (default build/notebooks/<profile>)")
    run.add_argument("--data-root", type=Path, default=None,
                     help="default: $ACTX_DATA_ROOT, else <repo>/data")
    sub.add_parser("check", help="check that committed notebooks are clean")
    sub.add_parser("map", help="list the notebooks")
    args = parser.parse_args(argv)

    if args.command == "check":
        problems = [p for c in chapters() for p in check_notebook(c.path)]
        print("\n".join(problems) or f"{len(chapters())} notebooks clean")
        return 1 if problems else 0
    if args.command == "map":
        for c in chapters():
            print(f"{c.path.name:32s} {c.title}")
        return 0
    only = [s.strip().zfill(2) for s in args.only.split(",") if s.strip()]
    try:
        done = run_course(args.profile, only, args.out, args.data_root)
    except NotebookFailed as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr)
        return 1
    print(f"{len(done)} notebooks executed; copies in {done[0].parent if done else '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
