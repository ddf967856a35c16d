"""actx: attentive action and context factorization (ActX), ACRN and ConvLSTM attention, as a small package.

Modules: config, video, data, backbones, features, conjugates, ops, losses, models, train, metrics, plots.
"""

__version__ = "0.1.0"
