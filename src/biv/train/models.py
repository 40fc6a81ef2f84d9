"""The paper's regression networks: an MLP (Bike, Wine), the age CNN and ResNet-18 (UTKFace)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from biv.config.model import ModelSpec, check_input

CNN_CHANNELS = (3, 10, 20, 32, 64, 128, 256)


class MLP(nn.Sequential):
    """Linear layers of the given widths, each followed by (BatchNorm1d and) ReLU, then 1 output.

    Bike: ``MLP(19, (100, 50, 20, 10))``; Wine: ``MLP(11, (100, 50, 20, 10), batchnorm=True)``.
    """

    def __init__(self, in_features: int, hidden: Sequence[int], batchnorm: bool = False):
        layers: list[nn.Module] = []
        width = in_features
        for out in hidden:
            layers.append(nn.Linear(width, out))
            if batchnorm:
                layers.append(nn.BatchNorm1d(out))
            layers.append(nn.ReLU())
            width = out
        layers.append(nn.Linear(width, 1))
        super().__init__(*layers)


class AgeCNN(nn.Module):
    """The original age CNN: six blocks Conv3x3, BatchNorm2d, ReLU, MaxPool2, then Linear -> 1.

    The linear layer's input size follows from the image size (200x200 gives 256*3*3).
    """

    def __init__(self, height: int, width: int):
        super().__init__()
        blocks = len(CNN_CHANNELS) - 1
        if min(height, width) < 2**blocks:
            raise ValueError(
                f"model cnn: image size {height}x{width} is too small; "
                f"each side must be at least {2**blocks} pixels"
            )
        self.features = nn.Sequential(
            *(
                nn.Sequential(
                    nn.Conv2d(c_in, c_out, kernel_size=3, stride=1, padding=1),
                    nn.BatchNorm2d(c_out),
                    nn.ReLU(),
                    nn.MaxPool2d(kernel_size=2),
                )
                for c_in, c_out in zip(CNN_CHANNELS[:-1], CNN_CHANNELS[1:], strict=True)
            )
        )
        self.linear = nn.Linear(CNN_CHANNELS[-1] * (height >> blocks) * (width >> blocks), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.features(x).flatten(1))


def resnet18_regressor() -> nn.Module:
    """torchvision's ResNet-18, randomly initialised, with ``fc`` replaced by Linear(512, 1)."""
    import torchvision  # imported here: it takes seconds to import and only this model needs it

    model = torchvision.models.resnet18(weights=None)
    model.fc = nn.Linear(512, 1)
    return model


def build_model(spec: ModelSpec, input_shape: Sequence[int]) -> nn.Module:
    """Build the model of a ``model`` entry for inputs of shape ``input_shape`` (one sample).

    Tabular inputs have shape ``(F,)`` (mlp only); images ``(3, H, W)`` (cnn, resnet18).
    """
    shape = tuple(input_shape)
    check_input("model.name", spec, shape)
    if spec.name == "mlp":
        return MLP(shape[0], spec.hidden, spec.batchnorm)
    if spec.name == "cnn":
        return AgeCNN(shape[1], shape[2])
    return resnet18_regressor()
