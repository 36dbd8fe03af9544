"""A convolutional family in the LeNet/AlexNet/VGG lineage, with channel width and depth as knobs.

Simonyan & Zisserman 2015 (VGG): 3x3 convolutions, channels doubling as 2x2 max-pools halve the
map; sized down for 28x28 inputs, as in the Keras MNIST CNN example's conv-pool-dense shape.
"""

from __future__ import annotations

import torch
from torch import nn

from scalelab.models.mlp import activation_layer


def cnn(input_shape: list[int], num_classes: int, width: int, depth: int, activation: str = "relu") -> CNN:
    """The family `model=cnn` names (`model._target_`): a rung is a channel width and a depth."""
    return CNN(input_shape, width, depth, num_classes, activation)


def channels(width: int, depth: int) -> list[int]:
    """Channels of each conv block: `width`, doubling per block as the map halves (VGG)."""
    return [width * 2**i for i in range(depth)]


class CNN(nn.Module):
    """`depth` blocks of [(3x3 conv -> batch norm -> activation) x 2 -> 2x2 max-pool], then a
    global-average-pool head: mean over the map -> dropout -> Linear(classes).

    The head is the ResNet / Network-in-Network one (Lin et al. 2014; He et al. 2016): its
    parameters are the last block's channels x classes, so nearly all of N sits in the
    convolutions and a bigger rung means more convolutional capacity, not a wider dense layer
    on a flattened map (the flatten head held 1.6 M of the old 1.87 M-parameter top rung). It also
    makes N independent of the input's size: 28x28 images and 32x64 spectrograms give the same
    counts. Batch norm (Ioffe & Szegedy 2015) after every conv; dropout 0.25 before the readout.

    Works on any (C, H, W) input with H, W >= 2**depth: 28x28 images, or log-mel spectrograms
    (1, mels, frames) seen as images.
    """

    def __init__(
        self,
        input_shape: list[int],
        width: int,
        depth: int,
        num_classes: int,
        activation: str = "relu",
        convs_per_block: int = 2,
        batch_norm: bool = True,
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        in_channels = input_shape[0]
        blocks: list[nn.Module] = []
        for fan_in, fan_out in zip(
            [in_channels, *channels(width, depth)], channels(width, depth), strict=False
        ):
            for i in range(convs_per_block):
                conv = nn.Conv2d(fan_in if i == 0 else fan_out, fan_out, 3, padding=1, bias=not batch_norm)
                norm = [nn.BatchNorm2d(fan_out)] if batch_norm else []
                blocks += [conv, *norm, activation_layer(activation)]
            blocks.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(channels(width, depth)[-1], num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, C, H, W) -> (batch, num_classes) logits."""
        return self.classifier(self.features(x))  # features: (batch, width*2**(depth-1), H/2**d, W/2**d)
