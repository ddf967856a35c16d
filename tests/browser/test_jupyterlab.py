"""The course in a real browser: what a student does in JupyterLab, driven in Chromium with Playwright.

- The launcher offers the "Python (actx)" kernel.
- The ActX chapter (notebook 06), parameterised for the `ci` profile, runs top to bottom with Run All
  Cells: the kernel goes idle, every code cell has run, no cell shows an error. Moving the rho slider redraws
  the maps: the bytes of the explorer's image differ before and after. Screenshots of the explorer, before
  and after, go to build/browser/.

Runs after the ci notebooks (`make browser`, part of `make test`), so the ci benchmark and features are
cached. Every wait has its own timeout below.
"""

from __future__ import annotations

import base64
import time

import pytest

from .conftest import BUILD, REPO_ROOT, Lab

pytestmark = [pytest.mark.browser, pytest.mark.timeout(1200)]

CHAPTER = REPO_ROOT / "notebooks" / "06_actx.ipynb"
KERNEL_NAME, KERNEL_DISPLAY = "actx", "Python (actx)"
PAGE_TIMEOUT = 120  # s: JupyterLab's page, a menu, a launcher card, the notebook's cells
KERNEL_START_TIMEOUT = 120  # s: the notebook's kernel is up and idle
RUN_ALL_TIMEOUT = 600  # s: notebook 06 under ci, about 20 s with warm caches, a few minutes on an empty data/
REDRAW_TIMEOUT = 90  # s: one redraw of the explorer after a slider moves (about 2 s)
SLIDER = "rho (%)"  # the slider the test moves

# Every code cell's prompt ("[3]:", "[*]:" or "[ ]:"), source text and output texts, in notebook order.
CELLS_JS = """(panel) => {
  const cells = [...panel.querySelectorAll('.jp-Cell.jp-CodeCell')];
  return cells.map(c => ({
    prompt: (c.querySelector('.jp-InputArea-prompt') || {}).textContent || '',
    source: (c.querySelector('.jp-InputArea-editor') || {}).textContent || '',
    outputs: [...c.querySelectorAll('.jp-OutputArea-output')].map(o => o.textContent || ''),
  }));
}"""
# The bytes of an <img> as base64 (the widget's PNG, behind a blob: URL).
IMAGE_BYTES_JS = """async (img) => {
  const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000)
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}"""
TRACEBACK = "Traceback (most recent call last)"


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    context.set_default_timeout(PAGE_TIMEOUT * 1000)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def _open_lab(page, lab: Lab, path: str = "") -> None:
    page.goto(f"{lab.url}/lab{path}?token={lab.token}", timeout=PAGE_TIMEOUT * 1000)
    page.locator("#jp-main-dock-panel").wait_for(state="visible")


def _menu(page, menu: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=menu).first.click()
    page.locator(".lm-Menu-itemLabel").filter(has_text=item).first.click()


def test_launcher_offers_the_course_kernel(lab, page):
    _open_lab(page, lab)
    _menu(page, "File", "New Launcher")
    launcher = page.locator(".jp-Launcher").last
    launcher.wait_for(state="visible")
    section = launcher.locator(".jp-Launcher-section").filter(has_text="Notebook").first
    section.locator(".jp-LauncherCard").first.wait_for(state="visible")
    offered = [c.strip() for c in section.locator(".jp-LauncherCard-label").all_text_contents()]
    assert KERNEL_DISPLAY in offered, (f"the launcher's Notebook section offers {offered}, not "
                                       f"{KERNEL_DISPLAY!r}: is the kernel installed (`make install`)?")


def _prepare_chapter() -> str:
    """A copy of notebook 06 under build/browser/ with the ci profile injected (papermill); its repo path."""
    import papermill as pm

    target = BUILD / CHAPTER.name
    pm.execute_notebook(str(CHAPTER), str(target), parameters={"PROFILE": "ci",
                                                              "DATA_ROOT": str(REPO_ROOT / "data")},
                        kernel_name=KERNEL_NAME, prepare_only=True, progress_bar=False)
    return target.relative_to(REPO_ROOT).as_posix()


def _kernel_states(lab: Lab, path: str) -> list[str]:
    return [s["kernel"]["execution_state"] for s in lab.api("/api/sessions") if s["path"] == path]


def _wait(what: str, timeout: float, probe, lab: Lab, interval: float = 0.5):
    """Call ``probe()`` until it returns something true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; JupyterLab's log "
                                 f"({lab.log}) ends:\n{lab.log_tail(15)}")
        time.sleep(interval)


def _errors(cells) -> list[str]:
    """The error outputs of ``cells`` (CELLS_JS), each with its code cell's number and first characters."""
    return [f"code cell {i} (starts {c['source'][:50]!r}): {o[-800:]}" for i, c in enumerate(cells)
            for o in c["outputs"] if TRACEBACK in o]


def test_actx_chapter_runs_and_its_slider_redraws(lab, page):
    path = _prepare_chapter()
    _open_lab(page, lab, f"/tree/{path}")
    panel = page.locator(".jp-NotebookPanel").filter(has=page.locator(".jp-Notebook")).first
    panel.locator(".jp-Cell.jp-CodeCell").first.wait_for(state="visible")
    _wait(f"the {KERNEL_NAME} kernel of {path} to start and go idle", KERNEL_START_TIMEOUT,
          lambda: _kernel_states(lab, path) == ["idle"], lab)
    handle = panel.element_handle()

    _menu(page, "Run", "Run All Cells")

    def finished():
        cells = page.evaluate(CELLS_JS, handle)
        running = any("*" in c["prompt"] for c in cells)
        if running or _kernel_states(lab, path) != ["idle"]:
            return None
        unrun = [i for i, c in enumerate(cells) if not any(ch.isdigit() for ch in c["prompt"])]
        if unrun and not _errors(cells):  # Run All has not reached them yet
            return None
        return cells

    cells = _wait("Run All Cells to finish with the kernel idle", RUN_ALL_TIMEOUT, finished, lab, interval=1)
    if _errors(cells):
        pytest.fail("cells of notebook 06 (ci) failed in JupyterLab:\n" + "\n".join(_errors(cells)),
                    pytrace=False)
    unrun = [i for i, c in enumerate(cells) if not any(ch.isdigit() for ch in c["prompt"])]
    assert cells and not unrun, f"code cells {unrun} of {len(cells)} did not run"

    explorer = panel.locator(".jupyter-widgets.widget-vbox").filter(has=page.locator(".widget-image")).filter(
        has_text=SLIDER).first
    explorer.evaluate("e => e.scrollIntoView({block: 'start'})")  # sliders at the top, the image below them
    image = explorer.locator("img.widget-image").first
    image.wait_for(state="visible")

    def image_bytes() -> bytes:
        data = base64.b64decode(image.evaluate(IMAGE_BYTES_JS))
        assert data.startswith(b"\x89PNG"), f"the explorer's image is not a PNG ({data[:8]!r})"
        return data

    before = image_bytes()
    explorer.screenshot(path=BUILD / "06_sliders_before.png")
    slider = explorer.locator(".widget-slider").filter(has_text=SLIDER).first
    readout = slider.locator(".widget-readout")
    value_before = readout.inner_text().strip()

    # Drag the handle a third of the track to the right and let go, as a student does.
    slider.scroll_into_view_if_needed()
    track = slider.locator(".noUi-target, .slider").first.bounding_box()
    knob = slider.locator(".noUi-handle").first.bounding_box()
    x, y = knob["x"] + knob["width"] / 2, knob["y"] + knob["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + track["width"] / 3, y, steps=10)
    page.mouse.up()
    value_after = readout.inner_text().strip()
    assert value_after != value_before, f"dragging the {SLIDER} slider left its value at {value_before}"

    try:
        after = _wait(f"the explorer's image to change after {SLIDER} moved from {value_before} to "
                      f"{value_after} (the slider's callback did not redraw it)", REDRAW_TIMEOUT,
                      lambda: (lambda b: b if b != before else None)(image_bytes()), lab)
    finally:  # also when it failed: the picture shows what the student would see
        explorer.screenshot(path=BUILD / "06_sliders_after.png")
    assert after != before
    cells = page.evaluate(CELLS_JS, handle)
    if _errors(cells):
        pytest.fail("moving the slider left an error:\n" + "\n".join(_errors(cells)), pytrace=False)
