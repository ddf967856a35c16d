"""The ActX paper's reported mean AP (percent), for showing beside our numbers: real videos, I3D features.

ActX paper (seed 000) Table 1 (ActionThread) and Table 2 (Hollywood2, where ActX used imperfect conjugates), keyed
by our method names and stream names. A method or stream the paper does not report is absent.
"""

from __future__ import annotations

PAPER_MAP: dict[str, dict[str, dict[str, float]]] = {
    "ActionThread": {
        "rgb": {"avgpool": 46.7, "attentional": 53.0, "acf": 52.9, "actx_no_satt": 51.2, "actx": 55.4,
                "posemask": 46.0, "region10": 50.1, "region50": 49.6},
        "rgb+flow": {"avgpool": 55.9, "attentional": 61.8, "acf": 60.4, "actx_no_satt": 58.8, "actx": 63.1,
                     "posemask": 53.2, "region10": 57.6, "region50": 56.3},
    },
    "Hollywood2": {
        "rgb": {"avgpool": 55.3, "attentional": 61.3, "acf": 61.3, "actx": 62.5, "eep_avgpool": 73.5,
                "eep_actx": 76.0, "posemask": 49.4, "region10": 55.6, "region50": 55.9},
        "rgb+flow": {"avgpool": 62.8, "attentional": 69.8, "acf": 71.2, "actx": 73.2, "eep_avgpool": 81.0,
                     "eep_actx": 82.0, "posemask": 60.0, "region10": 64.6, "region50": 64.8},
    },
}
PAPER_PARAMS = {"rgb": 13.4e6, "rgb+flow": 28.8e6}  # Table 1 "#param" (I3D included), the same for every row


def paper_map(dataset: str, method: str, stream: str) -> float:
    """The paper's mAP for (data set, method, stream), NaN where the paper reports none."""
    return PAPER_MAP[dataset].get(stream, {}).get(method, float("nan"))
