"""RAFSR: residual attention face super-resolution (seed 000, Che et al., JMSI 2024)."""

from __future__ import annotations

import torch
from torch import nn

from ..base import SRModel
from .blocks import CBAM, PixelShuffleUpsampler, conv
from ..paper import Decision, Paper, quoted, quoted_as_printed, recipe_in_train
from ..registry import Capabilities, register

RAFSR_SCALES = (2, 3, 4, 8)


class ResidualAttentionModule(nn.Module):
    """RAM (seed 000, Fig. 4b): y = x + CBAM(conv3x3(ReLU(conv3x3(x)))).

    The output of the RAM's convolutions is the input of CBAM (Sec. 2.1.2 1)); the identity
    skip is added after the attention, as in the residual equation (1) H(x) = F(x) + x.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.body = nn.Sequential(conv(channels, channels), nn.ReLU(inplace=True), conv(channels, channels))
        self.cbam = CBAM(channels, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.cbam(self.body(x))


@register("rafsr")
class RAFSR(SRModel):
    """RAFSR (Che, Xu, Xue, Liu; Journal of Measurement Science and Instrumentation 2024):
    a face SR network on the LR image made of a 3x3 shallow conv, 8 residual attention
    modules (conv-ReLU-conv + CBAM + identity skip) whose outputs are all concatenated and
    fused by a 1x1 conv, an "adaptive residual" (the shallow features through a 1x1 conv,
    added to the fused deep features), and a sub-pixel reconstruction module.
    """

    capabilities = Capabilities("RAFSR", scales=RAFSR_SCALES, scale_key="scale", pre_upsampled=False)
    # CBAM pools over the whole tile: 66.9 dB Y-PSNR tiled vs whole at 128/32 (64/16: 65.6, 96/24: 65.6;
    # bench/results/tiling_tiles.md): all far above visible, so the largest measured tile (fewest tiles)
    tile_size, tile_overlap = 128, 32
    paper = Paper("Face image super-resolution reconstruction algorithm based on residual attention mechanism",
                  "Y. Che, Y. Xu, H. Xue, X. Liu", year=2024, seed="000_3caed2a4458d8250.txt",
                  venue="Journal of Measurement Science and Instrumentation 15(4):458-465")
    paper_results = quoted("Helen (100 random test images)", [(4, "Bicubic", 25.50, 0.769), (4, "RAFSR", 32.83, 0.880)],
                           note="Table 1; channel (Y or RGB) not stated")
    decisions = [
        Decision("x4 only", "`scale` in {2, 3, 4, 8}, one checkpoint per scale (pixel-shuffle x2 stages; one x3 stage)"),
        Decision("8 RAMs (Table 3: 8 beats 4 and 16); width and CBAM reduction not given",
                 "num_modules=8, channels=64, CBAM reduction 16 (CBAM default)",
                 note="16 is the CBAM paper's default, 64 the usual EDSR/RCAN width"),
        Decision("RAM = Fig. 4b: conv output feeds CBAM, plus a skip connection",
                 "x + CBAM(conv3x3(ReLU(conv3x3(x)))), no BN, no residual scaling",
                 note="Fig. 4b is not reproduced in the text; this is the EDSR residual block the figure modifies"),
        Decision("outputs of the 8 RAMs concatenated ('feature fusion'); layer after the concat not described",
                 "concat (8*channels) -> 1x1 conv back to `channels`", note="no extra 3x3 conv"),
        Decision("adaptive residual: 1x1 conv on the skip path; its input called shallow features (Sec. 2.1) and "
                 "'input image' (Sec. 2.1.3)",
                 "shallow features F0 -> 1x1 conv, added to the fused deep features, then reconstruction",
                 note="the 1x1 conv keeps 64 channels; Fig. 3 order as described in Sec. 2.1"),
        Decision("reconstruction = convolution + sub-pixel convolution (eq. 3), layout not given",
                 "conv3x3 -> pixel-shuffle stages without activation -> conv3x3 to RGB"),
        Decision("activations outside the RAM not named", "none after the shallow conv or in the upsampler",
                 note="ReLU only inside the RAMs (and CBAM's MLP)"),
        quoted_as_printed("Helen x4 PSNR/SSIM, channel and border crop not stated", note="Table 1"),
        recipe_in_train("L1 loss, Adam (0.9, 0.99), lr 1e-4, 200 epochs on CelebA 13k + Helen 2k",
                        note="the paper's Adam eps is 1e-8"),
    ]
    # reduction 1: at width 8 a CBAM hidden layer of 1-2 units can start with every ReLU dead
    test_config = {"scale": 4, "channels": 8, "num_modules": 2, "reduction": 1}

    def __init__(self, scale: int = 4, channels: int = 64, num_modules: int = 8, reduction: int = 16):
        super().__init__()
        if num_modules < 1:
            raise ValueError(f"num_modules must be >= 1, got {num_modules}")
        self.scale = self.checked_scale(scale)
        # SFEM, eq. (2): F0 = conv3x3(I_LR)
        self.shallow = conv(3, channels)
        # DFEM: 8 RAMs, all outputs concatenated and fused by a 1x1 conv (Fig. 3)
        self.rams = nn.ModuleList(ResidualAttentionModule(channels, reduction) for _ in range(num_modules))
        self.fusion = conv(num_modules * channels, channels, 1)
        # ARM: the shallow features through a 1x1 conv (Sec. 2.1.3)
        self.adaptive_residual = conv(channels, channels, 1)
        # RM, eq. (3): conv + sub-pixel convolution, then to RGB
        self.reconstruction = nn.Sequential(
            conv(channels, channels), PixelShuffleUpsampler(channels, scale), conv(channels, 3)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """LR (N,3,h,w) -> HR (N,3,h*s,w*s), Fig. 3: SFEM -> DFEM (+ fusion) + ARM -> RM."""
        f0 = self.shallow(x)
        feats = []
        h = f0
        for ram in self.rams:
            h = ram(h)
            feats.append(h)
        deep = self.fusion(torch.cat(feats, dim=1))
        return self.reconstruction(deep + self.adaptive_residual(f0))
