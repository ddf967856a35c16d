"""actx.plots: maps of a head upsampled over the video frames (notebook 06)."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from actx import plots  # noqa: E402


def test_upsample_map_keeps_cells_in_place():
    m = np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])  # (h, w) = (2, 3)
    up = plots.upsample_map(m, (64, 80))  # the last column of cells is partial (80 < 96)
    assert up.shape == (64, 80) and up.dtype == np.float32
    assert up[16, 16] == pytest.approx(0.0, abs=0.1)  # near cell (0, 0)'s centre
    assert up[48, 48] == pytest.approx(4.0, abs=0.1)  # near cell (1, 1)'s centre
    assert m.min() <= up.min() and up.max() <= m.max()  # bilinear: no overshoot
    assert np.allclose(plots.upsample_map(np.full((2, 3), 0.7), (64, 96)), 0.7)


def test_upsample_map_rejects_a_grid_that_does_not_fit_the_frame():
    with pytest.raises(ValueError, match="does not cover"):
        plots.upsample_map(np.zeros((2, 3)), (128, 96))
    with pytest.raises(ValueError, match=r"\(h, w\)"):
        plots.upsample_map(np.zeros((1, 2, 3)), (64, 96))


def test_heat_overlay_blends_the_map_over_the_frame():
    frame = np.full((64, 96, 3), 100, np.uint8)
    m = np.zeros((2, 3))
    assert np.array_equal(plots.heat_overlay(frame, m, 0, 1, alpha=0.0), frame)
    out = plots.heat_overlay(frame, m, 0, 1, alpha=1.0, cmap="gray")
    assert out.shape == frame.shape and out.dtype == np.uint8 and (out == 0).all()  # 0 -> black in "gray"


def test_maps_over_frames_draws_one_row_per_map_and_one_column_per_step():
    import matplotlib.pyplot as plt

    frames = np.zeros((24, 64, 96, 3), np.uint8)
    actor = np.zeros((24, 64, 96), bool)
    actor[:, 10:40, 30:50] = True
    maps = {"S": np.random.default_rng(0).random((3, 2, 3)), "C": np.ones((3, 2, 3))}
    fig = plots.maps_over_frames(frames, maps, 8, actor=actor, ranges={"C": (0, 1)}, title="t")
    panels = [ax for ax in fig.axes if ax.images]  # the colour bars hold no image
    assert len(panels) == 6  # 2 maps x 3 steps
    assert [ax.get_ylabel() for ax in panels[::3]] == ["S", "C"]
    assert [ax.get_title() for ax in panels[:3]] == ["step 0", "step 1", "step 2"]
    assert all(ax.collections for ax in panels)  # the actor's outline is drawn on every panel
    plt.close(fig)
    with pytest.raises(ValueError, match="same number of steps"):
        plots.maps_over_frames(frames, {"a": np.zeros((3, 2, 3)), "b": np.zeros((2, 2, 3))})


def test_figure_explorer_redraws_when_a_control_changes():
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    calls = []

    def render(a):
        calls.append(a)
        fig, ax = plt.subplots(figsize=(2, 1))
        ax.plot([0, a])
        return fig, f"a = {a}"

    slider = widgets.FloatSlider(value=1.0)
    panel = plots.figure_explorer(render, {"a": slider})
    image, caption = panel.children[-1], panel.children[-2]
    first = image.value
    assert calls == [1.0] and caption.value == "a = 1.0" and first[:8] == b"\x89PNG\r\n\x1a\n"
    slider.value = 3.0
    assert calls == [1.0, 3.0] and caption.value == "a = 3.0" and image.value != first
    assert plt.get_fignums() == []  # rendered figures are closed, never shown twice
