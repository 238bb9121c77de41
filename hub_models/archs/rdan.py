"""RDAN: residual dual attention network for general SR (seed 004, Huang, He, Luo)."""

from __future__ import annotations

import torch
from torch import nn

from ..base import SRModel
from .blocks import CBAM, PixelShuffleUpsampler, activation, conv
from ..paper import Decision, Paper, quoted, quoted_as_printed, recipe_in_train
from ..registry import Capabilities, register

RDAN_SCALES = (2, 3, 4, 8)
TABLES_1_2 = "Tables 1-2; channel not stated"


class ResidualDualAttentionBlock(nn.Module):
    """Residual dual attention module (seed 004, Sec. 3.2, Fig. 5):

        x_l = conv3x3(PReLU(conv3x3(x_0))),
        y   = x_0 + M_s(M_c(x_l) * x_l) * (M_c(x_l) * x_l)   (CBAM, channel then spatial).
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.body = nn.Sequential(conv(channels, channels), activation("prelu", channels), conv(channels, channels))
        self.cbam = CBAM(channels, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.cbam(self.body(x))


@register("rdan")
class RDAN(SRModel):
    """RDAN (Huang, He, Luo: "Image super-resolution reconstruction based on residual
    convolution and double attention mechanism"): a general-purpose SR network made of a
    shallow 3x3 conv + PReLU, a cascade of residual dual-attention blocks (conv-PReLU-conv,
    then CBAM channel-then-spatial attention, plus a local skip), sub-pixel upsampling and
    a conv to RGB.
    """

    capabilities = Capabilities("RDAN", scales=RDAN_SCALES, scale_key="scale", pre_upsampled=False)
    # CBAM pools over the whole tile: 65.7 dB Y-PSNR tiled vs whole at 128/32 (64/16: 64.5, 96/24: 65.8;
    # bench/results/tiling_tiles.md): all far above visible, so the largest measured tile (fewest tiles)
    tile_size, tile_overlap = 128, 32
    paper = Paper("Image Super-Resolution Reconstruction Based on Residual Convolution and Double Attention Mechanism",
                  "Q. Huang, C. He, J. Luo", seed="004_19798794903ab4a9.txt")
    paper_results = [*quoted("Set5 (paper: trained on DIV2K)", [(4, "RDAN", 31.24, 0.8894)], note=TABLES_1_2),
                     *quoted("Set14 (paper: trained on DIV2K)", [(4, "RDAN", 28.01, 0.7832)], note=TABLES_1_2)]
    decisions = [
        Decision("input is the bicubic-interpolated LR image, yet a sub-pixel layer upsamples at the end (contradiction)",
                 "LR image as input, sub-pixel upsampling at the end (ESPCN/SRResNet style)",
                 note="so `pre_upsampled` is False"),
        Decision("number of residual blocks and width not given", "num_blocks=16, channels=64 (SRResNet family)",
                 note="the family the design follows: PReLU, residual blocks, sub-pixel upsampling"),
        Decision("CBAM reduction ratio r not given", "reduction=16 (CBAM default)"),
        Decision("only local residual blocks; no global skip in the text (Fig. 4 not available)",
                 "no global skip by default; global_skip=True adds SRResNet's conv + long skip",
                 note="conv3x3 after the blocks plus the shallow features"),
        Decision("shallow features: 'a conv with smaller kernel', mapped nonlinearly", "conv3x3 + PReLU"),
        Decision("'a sub-pixel convolutional layer', no activation named",
                 "conv C->4C + PixelShuffle(2) + PReLU per x2 stage (one x3 stage for scale 3), then conv3x3 to RGB"),
        Decision("x2, x3, x4", "`scale` in {2, 3, 4, 8}, one checkpoint per scale", note="x8 for the face benchmarks"),
        quoted_as_printed("Set5/Set14 PSNR/SSIM; channel and border crop not stated", note="Tables 1-2"),
        recipe_in_train("MSE loss, Adam lr 1e-4 halved every 200 epochs, batch 64, 96x96 patches, DIV2K"),
    ]
    # reduction 1: at width 8 a CBAM hidden layer of 1-2 units can start with every ReLU dead
    test_config = {"scale": 4, "channels": 8, "num_blocks": 2, "reduction": 1}

    def __init__(self, scale: int = 4, channels: int = 64, num_blocks: int = 16, reduction: int = 16,
                 global_skip: bool = False):
        super().__init__()
        if num_blocks < 1:
            raise ValueError(f"num_blocks must be >= 1, got {num_blocks}")
        self.scale = self.checked_scale(scale)
        self.global_skip = global_skip
        self.shallow = nn.Sequential(conv(3, channels), activation("prelu", channels))
        self.blocks = nn.Sequential(*(ResidualDualAttentionBlock(channels, reduction) for _ in range(num_blocks)))
        self.body_tail = conv(channels, channels) if global_skip else nn.Identity()
        self.upsample = PixelShuffleUpsampler(channels, scale, act="prelu")
        self.to_rgb = conv(channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """LR (N,3,h,w) -> HR (N,3,h*s,w*s), Fig. 4: shallow conv -> blocks -> sub-pixel -> RGB."""
        f0 = self.shallow(x)
        h = self.body_tail(self.blocks(f0))
        if self.global_skip:
            h = h + f0
        return self.to_rgb(self.upsample(h))
