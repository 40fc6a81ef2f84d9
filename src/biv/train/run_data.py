"""A pack's training and test tensors: the prepared dataset (shared by its runs) and each run's
noisy labels, its seed's draw in the noise-draw file (``biv.noise.files``; or a table's own noisy
labels and variances), checked, normalized and moved to the device once."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from biv.config import RunSpec
from biv.config.errors import fail
from biv.data import load_prepared
from biv.noise.files import draw_digest, read_draw_file, seed_draw


@dataclass
class RunData:
    """Training and test tensors on the device, in model units (see module docstring); the
    noisy labels and their variances have a leading dimension of P, one row per run."""

    x_train: torch.Tensor  # normalized float (N, F) or uint8 images (N, 3, H, W)
    y_train: torch.Tensor  # (P, N) noisy labels
    var_train: torch.Tensor  # (P, N) the label variances the loss sees
    x_test: torch.Tensor
    y_test: torch.Tensor  # (M,) float32, clean labels (noisy ones when var_test is given)
    y_test_raw: torch.Tensor  # (M,) float32 on the CPU
    y_mean: float
    y_std: float
    pixel_mean: torch.Tensor | None  # (1, 3, 1, 1) for images
    pixel_std: torch.Tensor | None
    meta: dict
    noise_meta: list[dict | None]  # per run
    var_test: torch.Tensor | None = None  # (M,) float64 on the CPU, raw units: noisy test labels

    @property
    def clean_test_labels(self) -> bool:
        return self.var_test is None

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Model inputs of a batch already on the device: uint8 -> /255 -> per-channel normalize,
        channels_last (the convolutions' faster layout on the CPU, about 1.4x for the age CNN,
        and on CUDA)."""
        if self.pixel_mean is None:
            return x
        x = x.to(self.pixel_mean.dtype, memory_format=torch.channels_last).div_(255.0)
        return x.sub_(self.pixel_mean).div_(self.pixel_std)


def _existing(key: str, path: str) -> Path:
    resolved = Path(path)
    if not resolved.is_file():
        raise FileNotFoundError(f"{key}: file {path!r} does not exist")
    return resolved


def _check_finite(key: str, name: str, tensor: torch.Tensor) -> None:
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{key}: {name} contains NaN or infinite values")


def load_run_data(
    runs: list[RunSpec], device: torch.device, dtype: torch.dtype = torch.float32
) -> RunData:
    """Load the prepared dataset of ``runs`` (one file, shared), draw each run's noisy labels,
    check them and move them to ``device``; float tensors in ``dtype``."""
    data_file = runs[0].dataset.file

    def bad_data(allowed: str) -> ValueError:
        return fail("dataset.file", data_file, allowed)

    try:
        data = load_prepared(_existing("dataset.file", data_file))
    except ValueError as err:
        raise bad_data(f"a prepared dataset ({err})") from None
    x_train, x_test = data["x_train"], data["x_test"]
    y_train, y_test = data["y_train"].float(), data["y_test"].float()
    images = x_train.dtype == torch.uint8
    if images and (x_train.ndim != 4 or x_train.shape[1] != 3):
        raise bad_data(f"uint8 images (N, 3, H, W), got {tuple(x_train.shape)}")
    if not images and (x_train.ndim != 2 or not x_train.is_floating_point()):
        raise bad_data(f"float features (N, F), got {tuple(x_train.shape)}")
    if x_test.dtype != x_train.dtype or x_test.shape[1:] != x_train.shape[1:]:
        raise bad_data("x_test of the same dtype and sample shape as x_train")
    if len(x_train) != len(y_train) or len(x_test) != len(y_test) or not len(y_test):
        raise bad_data("matching, non-empty x/y train and test lengths")
    stats_shape = (3,) if images else tuple(x_train.shape[1:])
    if data["x_mean"].shape != stats_shape or data["x_std"].shape != stats_shape:
        raise bad_data(f"x_mean and x_std of shape {stats_shape}")
    y_mean, y_std = float(data["y_mean"]), float(data["y_std"])
    if not math.isfinite(y_mean) or not math.isfinite(y_std) or y_std <= 0:
        raise bad_data(f"finite y_mean and y_std > 0, got {y_mean}, {y_std}")
    _check_finite("dataset.file", "y_train/y_test", torch.cat([y_train, y_test]))
    draw_files: dict[str, dict] = {}  # the pack's runs share one draw file
    noisy = [_noisy_labels(run, data, y_train, draw_files) for run in runs]
    var_test = data["var_test"].double() if "var_test" in data else None

    normalize = runs[0].training.normalize

    def labels(y: torch.Tensor) -> torch.Tensor:
        y = y.to(device, torch.float64)
        return ((y - y_mean) / y_std).to(dtype) if normalize else y.to(dtype)

    x_mean = data["x_mean"].to(device, torch.float32)
    x_std = data["x_std"].to(device, torch.float32)
    if images:
        pixel_mean = x_mean.reshape(1, 3, 1, 1).to(dtype)
        pixel_std = x_std.reshape(1, 3, 1, 1).to(dtype)
        x_train_dev, x_test_dev = x_train.to(device), x_test.to(device)
    else:
        pixel_mean = pixel_std = None
        x_train_dev = ((x_train.to(device, torch.float32) - x_mean) / x_std).to(dtype)
        x_test_dev = ((x_test.to(device, torch.float32) - x_mean) / x_std).to(dtype)
    var_dev = torch.stack([var for _, var, _ in noisy]).to(device, torch.float64)
    return RunData(
        x_train=x_train_dev,
        y_train=labels(torch.stack([y for y, _, _ in noisy])),
        var_train=(var_dev / y_std**2 if normalize else var_dev).to(dtype),
        x_test=x_test_dev,
        y_test=labels(y_test),
        y_test_raw=y_test.clone(),
        y_mean=y_mean,
        y_std=y_std,
        pixel_mean=pixel_mean,
        pixel_std=pixel_std,
        meta=data["meta"],
        noise_meta=[meta for _, _, meta in noisy],
        var_test=var_test,
    )


def _noisy_labels(run: RunSpec, data: dict, y_train: torch.Tensor, draw_files: dict):
    """The run's training labels, their variances (float32, CPU) and its noise record: its seed's
    draw in its noise-draw file (read once per pack into ``draw_files``); a table's own noisy
    labels; or the clean labels with variance 0."""
    if run.noise is not None:
        file = run.noise.file
        try:
            if file not in draw_files:
                draw_files[file] = read_draw_file(_existing("noise.file", file))
            draw = seed_draw(draw_files[file], run.seed)
        except ValueError as err:
            raise fail("noise.file", file, f"a noise-draw file of draw_noise ({err})") from None
        arrays = draw_files[file]
        if len(draw.y_noisy) != len(y_train):
            allowed = f"draws of the dataset's {len(y_train)} training labels"
            raise fail("noise.file", file, f"{allowed}, got {len(draw.y_noisy)}")
        labels, variances = (torch.from_numpy(a).float() for a in (draw.y_noisy, draw.var_seen))
        meta = {"dataset": run.dataset.name, "noise": run.noise.name, "seed": run.seed}
        meta["draw_sha256"] = draw_digest(labels.numpy(), variances.numpy())
        return labels, variances, meta | {"params": arrays["setting"]}
    if "var_train" in data:  # a table's own noisy labels and their variances
        return data["y_noisy_train"].float(), data["var_train"].float(), None
    return y_train, torch.zeros_like(y_train), None
