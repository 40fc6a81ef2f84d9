"""Noisy labels: per-label noise variances and label noise drawn, seeded, from a noise setting
(:class:`biv.config.noise.NoiseSpec`). Imports :mod:`biv.config` only (and torch)."""
