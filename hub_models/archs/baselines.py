"""The baselines the papers compare against: bicubic, SRCNN and VDSR, as the same kind of
hub class as the face models, so every comparison table can be rebuilt side by side."""

from __future__ import annotations

import torch
from torch import nn

from ..base import SRModel
from .blocks import conv
from ..paper import Decision, Paper, adam_recipe
from ..registry import Capabilities, register

# the baselines take any integer scale (they work at HR size); these are the ones listed and tested
BASELINE_SCALES = (2, 3, 4, 8)


@register("bicubic")
class Bicubic(SRModel):
    """Bicubic interpolation (MATLAB-style, a = -0.5): the reference every paper reports.

    It has no weights; it is a class only so that it is selectable wherever a model is.
    """

    capabilities = Capabilities("Bicubic", scales=BASELINE_SCALES, scale_key="scale", pre_upsampled=True)
    tile_size = 512
    paper = Paper("Cubic convolution interpolation for digital image processing", "R. Keys", venue="IEEE TASSP", year=1981)

    def __init__(self, scale: int = 4):
        super().__init__()
        if scale < 1:
            raise ValueError(f"scale must be >= 1, got {scale}")
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x  # the bicubic step already happened in `prepare_input`


@register("srcnn")
class SRCNN(SRModel):
    """SRCNN (Dong et al., ECCV 2014 / TPAMI 2016), the 9-1-5 network: patch extraction
    (9x9, 64), non-linear mapping (1x1, 32), reconstruction (5x5, 3) on the bicubic
    pre-upsampled image.
    """

    capabilities = Capabilities("SRCNN", scales=BASELINE_SCALES, scale_key="scale", pre_upsampled=True)
    paper = Paper("Image Super-Resolution Using Deep Convolutional Networks", "C. Dong, C. C. Loy, K. He, X. Tang",
                  venue="TPAMI", year=2016, url="https://arxiv.org/abs/1501.00092")
    decisions = [
        Decision("valid convolutions, output shrinks by 12 pixels", "'same' padding, output keeps the input size",
                 note="the usual practice of later re-implementations"),
        Decision("Y channel only", "RGB in and out, like the face models it is compared with"),
        adam_recipe("SGD, lr 1e-4 (1e-5 on the last layer)"),
    ]
    test_config = {"channels": [8, 4]}

    def __init__(self, scale: int = 4, channels: list[int] = [64, 32], kernel_sizes: list[int] = [9, 1, 5]):
        super().__init__()
        if len(kernel_sizes) != len(channels) + 1:
            raise ValueError("kernel_sizes needs one entry more than channels")
        self.scale = scale
        widths = [3, *channels, 3]
        layers: list[nn.Module] = []
        for i, k in enumerate(kernel_sizes):
            layers.append(conv(widths[i], widths[i + 1], k))
            if i < len(kernel_sizes) - 1:
                layers.append(nn.ReLU(inplace=True))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@register("vdsr")
class VDSR(SRModel):
    """VDSR (Kim et al., CVPR 2016): 20 3x3 conv layers of width 64 with ReLU on the
    bicubic pre-upsampled image, plus a global residual (the network learns HR - bicubic).

    Initialisation: He et al.'s, as in the paper (kaiming normal, zero biases).
    """

    paper = Paper("Accurate Image Super-Resolution Using Very Deep Convolutional Networks", "J. Kim, J. K. Lee, K. M. Lee",
                  venue="CVPR", year=2016, url="https://arxiv.org/abs/1511.04587")
    decisions = [
        Decision("one model for x2/x3/x4, mixed-scale training", "one checkpoint per scale (`scale` in config)",
                 note="the face benchmarks are x4 and x8"),
        adam_recipe("SGD lr 0.1, adjustable gradient clipping"),
        Decision("Y channel only", "RGB in and out"),
    ]
    capabilities = Capabilities("VDSR", scales=BASELINE_SCALES, scale_key="scale", pre_upsampled=True)
    test_config = {"num_layers": 4, "channels": 8}
    tile_size = 128  # local network: any tile is exact; 128 LR -> 512 px network input per tile

    def __init__(self, scale: int = 4, num_layers: int = 20, channels: int = 64):
        super().__init__()
        if num_layers < 2:
            raise ValueError("VDSR needs at least 2 layers")
        self.scale = scale
        layers: list[nn.Module] = [conv(3, channels), nn.ReLU(inplace=True)]
        for _ in range(num_layers - 2):
            layers += [conv(channels, channels), nn.ReLU(inplace=True)]
        layers.append(conv(channels, 3))
        self.body = nn.Sequential(*layers)
        # paper: He et al.'s initialisation; PyTorch's default (uniform, gain 1/sqrt(3)) shrinks
        # the signal through 20 plain ReLU layers until the residual and its gradients vanish
        for module in self.body:
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)
