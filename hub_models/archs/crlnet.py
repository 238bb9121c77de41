"""CRLNet (seed 002): SRGAN-family face SR generator with SAGAN attention residual blocks,
and its SRGAN discriminator.

Chen et al., "The face image super-resolution algorithm based on combined representation
learning", Multimedia Tools and Applications 80 (2021). Generator: Sec. 3.1 and Fig. 1a;
attention residual block: Sec. 3.4, eq. 13-16 and Fig. 1b; discriminator: Sec. 3.2, Fig. 2.
"""

from __future__ import annotations

import torch
from torch import nn

from ..base import Discriminator, SRModel
from .blocks import PixelShuffleUpsampler, SelfAttention, activation, conv
from ..paper import CHANNEL_NOT_STATED, Decision, Paper, quoted
from ..registry import Capabilities, register


class AttentionResidualBlock(nn.Module):
    """SRGAN residual block conv-BN-PReLU-conv-BN + identity skip (Ledig et al. Fig. 4; seed
    002 Fig. 1a). With `attention`, a SAGAN self-attention layer (seed 002 eq. 13-16, Fig. 1b)
    takes the output of the second conv (after its BN) before the skip is added; its gamma
    starts at 0, so a fresh attention block computes exactly the plain block."""

    def __init__(self, channels: int, attention: bool = False, pool: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            conv(channels, channels, 3),
            nn.BatchNorm2d(channels),
            activation("prelu", channels),
            conv(channels, channels, 3),
            nn.BatchNorm2d(channels),
        )
        self.attention = SelfAttention(channels, pool=pool) if attention else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.attention(self.body(x))


class CRLNetDiscriminator(Discriminator):
    """SRGAN discriminator (Ledig et al. Fig. 4; seed 002 Sec. 3.2, Fig. 2): 8 3x3 conv
    layers, 64 -> 512 channels doubling every two layers, stride 1 and 2 alternating,
    LeakyReLU(0.2), BN on all but the first; then dense 1024 -> LeakyReLU -> dense 1.

    Returns one logit per image, shape (N, 1) (no sigmoid: the loss applies it). SRGAN's
    first dense layer was sized for 96x96 inputs (6x6x512); here an adaptive average pool
    to `pool_size` x `pool_size` sits before it, so the same weights take HR sizes 64..256
    (64 -> 4x4 feature map, pooled to 4x4 unchanged; 128 -> 8x8; 256 -> 16x16).
    """

    architecture = "crlnet_discriminator"
    test_config = {"channels": 4, "dense": 8, "pool_size": 2}

    def __init__(self, channels: int = 64, num_layers: int = 8, dense: int = 1024, pool_size: int = 4):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        layers: list[nn.Module] = []
        in_channels = 3
        for k in range(num_layers):
            out_channels = channels * 2 ** (k // 2)
            stride = 2 if k % 2 else 1
            if k == 0:
                layers += [conv(in_channels, out_channels, 3, stride=stride), activation("lrelu")]
            else:
                layers += [conv(in_channels, out_channels, 3, stride=stride, bias=False), nn.BatchNorm2d(out_channels), activation("lrelu")]
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(in_channels * pool_size * pool_size, dense), activation("lrelu"), nn.Linear(dense, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """HR or SR image batch (N,3,H,W) -> realness logits (N,1)."""
        return self.head(self.pool(self.features(x)))


@register("crlnet")
class CRLNet(SRModel):
    """CRLNet generator (Chen et al.): an SRGAN-style residual network on the LR image, 16
    residual blocks of which some carry a SAGAN self-attention layer after their second
    conv ("attention residual blocks"), pixel-shuffle upsampling to x4 or x8, trained as a
    GAN against the SRGAN discriminator (`CRLNetDiscriminator`).

    Layout (Sec. 3.1, eq. 4-7): conv 9x9 + PReLU (shallow features F0) -> 16 residual
    blocks conv-BN-PReLU-conv-BN + skip -> conv-BN, plus the long skip from F0 -> log2(s)
    stages of conv + PixelShuffle(2) + PReLU -> conv 9x9 to RGB. Attention (eq. 13-16):
    f, g, h 1x1 convs, beta = softmax over positions of f(x)^T g(x), y = gamma O + x,
    gamma initialised to 0 (`blocks.SelfAttention`).

    Training objective in the paper (Sec. 3.3; done by the trainer, not here):
    l = alpha * VGG19 feature MSE (eq. 9) + beta * adversarial + (1 - alpha - beta) * L1
    (eq. 11-12), alpha, beta > 0, alpha + beta < 1, values not given. The adversarial term
    is written twice and inconsistently: eq. 8 is the WGAN critic form
    min_G max_D E[D(HR)] - E[D(G(LR))], eq. 10 the standard generator loss -log D(G(LR)).
    """

    capabilities = Capabilities("CRLNet", scales=(2, 4, 8), scale_key="scale", pre_upsampled=False,
                                batchnorm=True, gan=True)
    # self-attention runs per tile: 96/24 agreed best with whole-image inference (69.0 dB Y-PSNR at a
    # 160 px LR input; 48: 62.4, 64: 63.1, 128: 56.6; bench/results/tiling_tiles.md), and is faster (attention per tile)
    tile_size, tile_overlap = 96, 24
    discriminator_cls = CRLNetDiscriminator
    paper = Paper("The face image super-resolution algorithm based on combined representation learning",
                  "Y. Chen, V. Phonevilay, J. Tao, X. Chen, R. Xia, Q. Zhang, K. Yang, J. Xiong, J. Xie",
                  venue="Multimedia Tools and Applications 80", year=2021, seed="002_8271b75107d67026.txt",
                  url="https://doi.org/10.1007/s11042-020-09969-1")
    paper_results = quoted("CelebA (paper's 1000-image test split)", [
        (4, "CRLNet", 30.65, 0.813, "Table 2; channel not stated"), (8, "CRLNet", 27.51, 0.793, "Table 2; channel not stated"),
        (4, "bicubic", 25.96, 0.669, "Table 2"), (8, "bicubic", 23.75, 0.642, "Table 2")])
    decisions = [
        Decision("attention residual blocks in the 'upper and middle layers', which ones not given",
                 "blocks 8, 10, 12, 14 of 16 (0-based, attention_blocks): every other block of the middle-to-deep half",
                 note="SAGAN places attention in the higher-level layers; four layers cost about one extra residual "
                 "block each at 32x32 LR"),
        Decision("attention after the second conv of the residual block",
                 "after the second conv's BN, before the skip addition; gamma starts at 0, so a fresh block is the SRGAN block"),
        Decision("full self-attention, quadratic in positions",
                 "exact full attention (attention_pool=1), computed in query chunks so large inputs fit in memory; "
                 "attention_pool > 1 pools keys/values (SAGAN code) for speed",
                 note="chunks above a 2^26-element score matrix; time stays quadratic: one attention layer at a "
                 "128x128 LR input takes ~8 s on 2 CPU cores; pooling (max) trades exactness for speed"),
        Decision("shallow and reconstruction conv kernels not given",
                 "SRGAN's: 9x9 head + PReLU, 9x9 output conv, width 64, conv + PixelShuffle(2) + PReLU per x2 stage",
                 note="three stages for x8; 1.55 M parameters plus 5.2 k per attention layer, i.e. SRGAN's ~1.5 M "
                 "generator"),
        Decision("abstract: symmetric cross-layer connections, deconvolution decoder, a 'fusion network' (Sec. 4.1)",
                 "the generator of the method section (Sec. 3.1, Fig. 1a), the only one described layer by layer"),
        Decision("multi-task auxiliary heads: 68 landmarks (dlib), gender, expression",
                 "not implemented: our data has no such labels", note="we do not fabricate them"),
        Decision("SRGAN discriminator, dense layer sized for 96x96 inputs",
                 "adaptive average pool to 4x4 before dense 1024, so HR 64..256 all work; outputs logits"),
        Decision("loss alpha VGG19-MSE + beta adversarial + (1-alpha-beta) L1, alpha/beta not given; "
                 "adversarial in WGAN form (eq. 8) and as -log D (eq. 10)",
                 "the trainer chooses and records weights and form (train/recipes.py)"),
        Decision("training settings contradictory (41x41 patches, batch 64, lr 1e-4 or 0.1)",
                 "the trainer's recipe, recorded in the card",
                 note="lr 1e-4 x0.1 every 100 iterations in one place, lr 0.1 and 80 periods in another"),
        CHANNEL_NOT_STATED,
    ]
    test_config = {"num_blocks": 2, "channels": 8, "attention_blocks": [1]}

    def __init__(self, scale: int = 4, num_blocks: int = 16, channels: int = 64,
                 attention_blocks: list[int] = [8, 10, 12, 14], attention_pool: int = 1):
        super().__init__()
        if scale < 2 or scale & (scale - 1):
            raise ValueError(f"CRLNet upsamples by pixel-shuffle x2 stages: scale must be 2, 4, 8, ...; got {scale}")
        attention_blocks = sorted({int(i) for i in attention_blocks})
        bad = [i for i in attention_blocks if not 0 <= i < num_blocks]
        if bad:
            raise ValueError(f"attention_blocks {bad} out of range for {num_blocks} residual blocks (0-based)")
        if attention_pool < 1:
            raise ValueError(f"attention_pool must be >= 1, got {attention_pool}")
        self.scale = scale
        self.attention_blocks = attention_blocks
        self.head = nn.Sequential(conv(3, channels, 9), activation("prelu", channels))
        self.blocks = nn.Sequential(
            *(AttentionResidualBlock(channels, i in attention_blocks, attention_pool) for i in range(num_blocks))
        )
        self.body_tail = nn.Sequential(conv(channels, channels, 3), nn.BatchNorm2d(channels))
        self.upsample = PixelShuffleUpsampler(channels, scale, act="prelu")
        self.tail = conv(channels, 3, 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """LR image -> HR estimate (eq. 4-7): F0 = head(x); F_DF = F0 + tail(blocks(F0));
        upsample; conv to RGB."""
        shallow = self.head(x)
        deep = shallow + self.body_tail(self.blocks(shallow))
        return self.tail(self.upsample(deep))
