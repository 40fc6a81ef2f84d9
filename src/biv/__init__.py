"""Batch Inverse-Variance Weighting: losses, noise models, datasets and training."""

__version__ = "0.1.0"
