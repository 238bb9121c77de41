"""RAFSR: residual attention face super-resolution (seed 000, Che et al., JMSI 2024)."""

from __future__ import annotations

import torch
from torch import nn

from ..base import SRModel
from .blocks import CBAM, PixelShuffleUpsampler, conv
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

    Paper says / we do:
    - paper: x4 only; we: `scale` in {2, 3, 4, 8} (one checkpoint per scale), x2 stages of
      pixel shuffle for 2/4/8 and one x3 stage for 3.
    - paper: "8 RAM" (Table 3: 4/8/16 tried, 8 best), width and CBAM reduction not given;
      we: `num_modules`=8, `channels`=64 and `reduction`=16 (the CBAM paper's default and
      the usual EDSR/RCAN width).
    - paper: RAM = Fig. 4b (not reproduced in the text), "the output of RAM convolution is
      the input of CBAM" plus a skip; we: x + CBAM(conv3x3(ReLU(conv3x3(x)))), no BN,
      no residual scaling (the EDSR residual block the figure modifies).
    - paper: the 8 RAM outputs are concatenated ("feature fusion"), the fusion layer after
      the concatenation is not described; we: concat (8*64 channels) -> one 1x1 conv back to
      64 channels, no extra 3x3 conv.
    - paper: adaptive residual = "a 1x1 convolution on the skip connection path", its input
      called both "the shallow feature information extracted from SFEM" (Sec. 2.1) and "the
      input image" (Sec. 2.1.3); we: the shallow features F0 -> 1x1 conv (64 -> 64), added to
      the fused deep features (Fig. 3 order as described in Sec. 2.1).
    - paper: reconstruction = "convolution and sub-pixel convolution", eq. (3), details not
      given; we: conv3x3 -> pixel-shuffle stages (no activation) -> conv3x3 to RGB.
    - paper: no activation named outside the RAM; we: ReLU only inside the RAMs (and CBAM's
      MLP), none after the shallow conv or in the upsampler.
    - paper: PSNR/SSIM on Helen x4 without saying Y or RGB, nor the border crop; we: quote
      them under psnr_y/ssim_y as printed (Table 1), labelled paper.
    - paper: L1 loss, Adam (0.9, 0.99, eps 1e-8), lr 1e-4, 200 epochs, CelebA 13k + Helen 2k;
      we: the training recipe lives in train/, not in the model.
    """

    capabilities = Capabilities("RAFSR", scales=RAFSR_SCALES, scale_key="scale", pre_upsampled=False)
    # CBAM pools over the whole tile: 66.9 dB Y-PSNR tiled vs whole at 128/32 (64/16: 65.6, 96/24: 65.6;
    # bench/results/tiling_tiles.md): all far above visible, so the largest measured tile (fewest tiles)
    tile_size, tile_overlap = 128, 32
    paper = {
        "title": "Face image super-resolution reconstruction algorithm based on residual attention mechanism",
        "authors": "Y. Che, Y. Xu, H. Xue, X. Liu",
        "venue": "Journal of Measurement Science and Instrumentation 15(4):458-465",
        "year": 2024,
        "seed": "000_3caed2a4458d8250.txt",
    }
    paper_results = [
        {"dataset": "Helen (100 random test images)", "scale": 4, "method": "Bicubic", "psnr_y": 25.50, "ssim_y": 0.769,
         "note": "Table 1; channel (Y or RGB) not stated"},
        {"dataset": "Helen (100 random test images)", "scale": 4, "method": "RAFSR", "psnr_y": 32.83, "ssim_y": 0.880,
         "note": "Table 1; channel (Y or RGB) not stated"},
    ]
    decisions = [
        ("x4 only", "`scale` in {2, 3, 4, 8}, one checkpoint per scale (pixel-shuffle x2 stages; one x3 stage)"),
        ("8 RAMs (Table 3: 8 beats 4 and 16); width and CBAM reduction not given",
         "num_modules=8, channels=64, CBAM reduction 16 (CBAM default)"),
        ("RAM = Fig. 4b: conv output feeds CBAM, plus a skip connection",
         "x + CBAM(conv3x3(ReLU(conv3x3(x)))), no BN, no residual scaling"),
        ("outputs of the 8 RAMs concatenated ('feature fusion'); layer after the concat not described",
         "concat (8*channels) -> 1x1 conv back to `channels`"),
        ("adaptive residual: 1x1 conv on the skip path; its input called shallow features (Sec. 2.1) and 'input image' (Sec. 2.1.3)",
         "shallow features F0 -> 1x1 conv, added to the fused deep features, then reconstruction"),
        ("reconstruction = convolution + sub-pixel convolution (eq. 3), layout not given",
         "conv3x3 -> pixel-shuffle stages without activation -> conv3x3 to RGB"),
        ("activations outside the RAM not named", "none after the shallow conv or in the upsampler"),
        ("Helen x4 PSNR/SSIM, channel and border crop not stated", "quoted as printed under psnr_y/ssim_y, labelled paper"),
        ("L1 loss, Adam (0.9, 0.99), lr 1e-4, 200 epochs on CelebA 13k + Helen 2k", "training recipe lives in train/"),
    ]
    # reduction 1: at width 8 a CBAM hidden layer of 1-2 units can start with every ReLU dead
    test_config = {"scale": 4, "channels": 8, "num_modules": 2, "reduction": 1}
    other_scale_configs = [{"scale": s} for s in RAFSR_SCALES if s != 4]

    def __init__(self, scale: int = 4, channels: int = 64, num_modules: int = 8, reduction: int = 16):
        super().__init__()
        if scale not in RAFSR_SCALES:
            raise ValueError(f"RAFSR supports scale 2, 3, 4 or 8, got {scale}")
        if num_modules < 1:
            raise ValueError(f"num_modules must be >= 1, got {num_modules}")
        self.scale = scale
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
