"""actx.plots.maps_by_clip: the clips x maps grid of notebook 08 (ActX Fig. 4)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from actx import plots  # noqa: E402


def _inputs(n=3, h=2, w=3):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (n, 64, 96, 3), dtype=np.uint8)  # (N, H, W, 3)
    maps = {"S": rng.random((n, h, w)), "C": rng.random((n, h, w))}  # (N, h, w)
    return frames, maps


def test_grid_has_a_row_per_clip_and_the_frame_first():
    frames, maps = _inputs()
    actors = np.zeros((3, 64, 96), bool)
    actors[:, 10:40, 20:50] = True
    fig = plots.maps_by_clip(frames, maps, labels=["a", "b", "c"], actors=actors)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 3 * 3
    assert np.array_equal(panels[0].images[0].get_array(), frames[0])  # column 0: the frame itself
    assert not np.array_equal(panels[1].images[0].get_array(), frames[0])  # column 1: the map over it
    assert [ax.get_title() for ax in panels[:3]] == ["frame", "S", "C"]
    assert panels[3].get_ylabel() == "b"
    plt.close(fig)


def test_fixed_range_colours_a_constant_map_the_same_in_every_clip():
    frames = np.zeros((2, 64, 96, 3), np.uint8)
    maps = {"S": np.full((2, 2, 3), 0.5)}
    fig = plots.maps_by_clip(frames, maps, ranges={"S": (0.0, 1.0)})
    panels = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert np.array_equal(panels[1], panels[3])
    assert (panels[1] == panels[1][0, 0]).all() and panels[1].max() > 0  # one colour everywhere
    plt.close(fig)


def test_mismatched_clip_counts_are_rejected():
    frames, maps = _inputs()
    maps["C"] = maps["C"][:2]
    with pytest.raises(ValueError, match="same N"):
        plots.maps_by_clip(frames, maps)
