"""MFFCN (seed 001): multi-scale feature fusion face SR, one model for x2/x3/x4.

Wu and Chen, "Face Super-resolution Reconstruction Based on Multi-scale Feature Fusion".
The network works on the bicubic pre-upsampled image; every layer is an MFF module
(parallel 1x1, 3x3, 5x5 convs, concatenated, mixed by a 1x1 conv; Sec. 3.2, Fig. 1b);
U-Net-shaped skips join layer i and layer n-i; the input is added to the output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..base import SRModel
from .blocks import activation, conv
from ..paper import CHANNEL_NOT_STATED, Decision, Paper, quoted
from ..registry import Capabilities, register


class MFFModule(nn.Module):
    """Multi-scale feature fusion module (seed 001, Sec. 3.2 and Fig. 1b).

    Three parallel convs with 1x1, 3x3 and 5x5 kernels see the same input; their outputs
    are concatenated and a 1x1 conv maps them to `out_channels`. Each branch is followed by
    the activation (without one, branches + 1x1 mix would collapse into a single linear
    5x5 conv); the 1x1 mix is followed by it too unless `last` (the layer that emits the
    residual image). `stride` 2 (encoder-decoder option) strides all three branches.
    """

    kernel_sizes = (1, 3, 5)

    def __init__(self, in_channels: int, branch_channels: int, out_channels: int, act: str = "relu",
                 last: bool = False, stride: int = 1):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(conv(in_channels, branch_channels, k, stride=stride), activation(act, branch_channels))
            for k in self.kernel_sizes
        )
        self.fuse = conv(len(self.kernel_sizes) * branch_channels, out_channels, 1)
        self.act = nn.Identity() if last else activation(act, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fuse(torch.cat([branch(x) for branch in self.branches], dim=1)))


@register("mffcn")
class MFFCN(SRModel):
    """MFFCN (Wu and Chen): a pre-upsampled face SR network in which every layer is a
    multi-scale feature fusion (MFF) module of parallel 1x1/3x3/5x5 convs mixed by a 1x1
    conv, with U-Net-shaped skip connections (layer i concatenated with layer n-i) and a
    global residual; one checkpoint serves x2, x3 and x4.

    Layers 1..n are MFF modules. The output of layer i (1 <= i < n/2) is concatenated with
    the output of layer n-i and the pair is the input of layer n-i+1, as in the U-Net
    generator of pix2pix whose wording Sec. 3.2 follows; layer n emits 3 channels and the
    bicubic input is added to it ("the input images are directly superimposed with the
    output"). The scale only matters to the bicubic pre-upsampling, so `network_forward`
    ignores it; the trainer draws a random factor from `scales` per sample (Algorithm 1).

    Training objective in the paper (eq. 2-7, Algorithm 1; done by the trainer, not here):
    10 * L2 + 1 * (perceptual + texture) + 1e-4 * total variation, where perceptual is the
    L1 distance between VGG19 features of the last conv before the 5th pooling layer taken
    before its activation, texture the distance between the Gram matrices of those
    features, TV the squared neighbour differences (eq. 7); Adam lr 1e-4, betas
    (0.5, 0.999), batch 10, FERET frontal faces at 128x128.
    """

    capabilities = Capabilities("MFFCN", scales=(2, 3, 4, 8), scale_key="scales", pre_upsampled=True)
    tile_size = 96  # local network: any tile is exact; 96 LR -> 384 px network input per tile
    paper = Paper("Face Super-resolution Reconstruction Based on Multi-scale Feature Fusion", "S. Wu, X. Chen",
                  seed="001_fa836bb982ac9edb.txt")
    paper_results = quoted("FERET 128x128 (paper's 8:2 split)", [
        (2, "MFFCN", 39.13, 0.9736, "Tables 1-2; channel used for PSNR/SSIM not stated"),
        (3, "MFFCN", 36.37, 0.9484, "Tables 1-2"), (4, "MFFCN", 34.45, 0.9234, "Tables 1-2"),
        (4, "bicubic", 26.41, 0.7860, "Tables 1-2")])
    decisions = [
        Decision("U-Net-shaped skips between layer i and n-i; whether the U-Net downsamples is not said",
                 "full-resolution stack (no pooling/strides named; MFF replaces the convs of an SRCNN-style "
                 "pre-upsampled net; pixel-exact detail at x2); pix2pix-style stride-2 encoder-decoder available as "
                 "downsample=True",
                 note="(a) the paper names no pooling, strided conv or deconvolution and says MFF modules \"replace the "
                 "original convolutional layer\" of the SRCNN-style design it builds on, where every layer keeps the "
                 "HR size; (b) its 39 dB at x2 needs pixel-exact detail that a stride-2 bottleneck has to carry through "
                 "the skips alone; (c) it takes any input size. downsample=True: layers 1..n/2 stride 2, layers "
                 "n/2+1..n bilinear x2 upsampling before the MFF module, inputs padded to a multiple of 2^(n/2) "
                 "inside `forward` and cropped back"),
        Decision("number of layers and width not given (Fig. 1 only)",
                 "10 MFF layers, width 64, each branch 64 wide: 41x41 receptive field like VDSR; 1.98 M parameters",
                 note="VDSR's 20 3x3 layers: the pre-upsampled family the paper compares with"),
        Decision("no activation or normalisation named",
                 "ReLU after each branch and after the 1x1 mix (not after the last layer's), no normalisation",
                 note="the last layer's mix emits the residual image"),
        Decision("one model, random down-sampling factor per training sample",
                 "same: scales=[2, 3, 4], the trainer draws the factor per sample; one checkpoint for x2/x3/x4"),
        Decision("loss 10 L2 + (VGG19 perceptual + Gram texture) + 1e-4 TV, Adam 1e-4 betas (0.5, 0.999), batch 10",
                 "the trainer's business (train/recipes.py); the model holds no loss",
                 note="train/recipes.py records what it uses"),
        CHANNEL_NOT_STATED,
    ]
    test_config = {"num_layers": 4, "channels": 8}

    def __init__(self, scales: list[int] = [2, 3, 4], num_layers: int = 10, channels: int = 64,
                 act: str = "relu", downsample: bool = False):
        super().__init__()
        scales = [int(s) for s in scales]
        if not scales or min(scales) < 2:
            raise ValueError(f"scales must be a non-empty list of factors >= 2, got {scales}")
        if num_layers < 2 or num_layers % 2:
            raise ValueError(f"num_layers must be even and >= 2 (U-Net halves), got {num_layers}")
        self.scales = scales
        self.num_layers = num_layers
        self.downsample = downsample
        half = num_layers // 2
        layers = []
        for index in range(1, num_layers + 1):
            in_channels = 3 if index == 1 else channels * (2 if index > half + 1 else 1)
            out_channels = 3 if index == num_layers else channels
            stride = 2 if downsample and index <= half else 1
            layers.append(MFFModule(in_channels, channels, out_channels, act, last=index == num_layers, stride=stride))
        self.layers = nn.ModuleList(layers)

    @property
    def skip_pairs(self) -> list[tuple[int, int]]:
        """(i, n-i) pairs (1-based layer numbers) whose outputs are concatenated and fed to
        layer n-i+1 (seed 001, Sec. 3.2)."""
        n = self.num_layers
        return [(i, n - i) for i in range(1, n // 2)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Bicubic-upsampled image -> HR estimate: input + MFF U-Net(input) (Sec. 3.2)."""
        height, width = x.shape[-2:]
        if self.downsample:
            m = 2 ** (self.num_layers // 2)
            pad_h, pad_w = (-height) % m, (-width) % m
            if pad_h or pad_w:
                mode = "reflect" if pad_h < height and pad_w < width else "replicate"
                x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        n, half = self.num_layers, self.num_layers // 2
        outputs: list[torch.Tensor] = []
        h = x
        for index, layer in enumerate(self.layers, start=1):
            if index > half and self.downsample:
                h = F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False)
            h = layer(h)
            outputs.append(h)
            if half < index < n:  # layer n-i+1 takes [out_{n-i}, out_i]; here index = n-i
                h = torch.cat([h, outputs[n - index - 1]], dim=1)
        return (x + h)[..., :height, :width]
