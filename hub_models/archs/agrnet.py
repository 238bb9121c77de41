"""AGRNet and AGRNet-HR (seed 003: Li & Zhang, "Face Super-resolution Reconstruction based
on Adaptive Global Residual Network").

Both are one encoder-body-decoder of attention residual units (ARU, Sec. 3.2, eq. 16-19)
on the bicubic pre-upsampled LR image: 3x3 conv -> 3 down units (DARU) -> `num_units`
ARUs -> 3 up units (UARU) -> 3x3 conv (Fig. 7). AGRNet is trained with L2 at x8
(16 -> 128 px); AGRNet-HR (Sec. 3.3) has more channels, emits an image from each up unit
and is trained as a GAN against `AGRNetHRDiscriminator`, one PatchGAN per image scale.

The paper's unit equations (16-19) and its HR recipe (3 discriminators, hinge loss,
100 L1 + 1 adversarial + 10 feature matching + 1 VGG19, Adam 1e-4 / 4e-4, betas
(0.5, 0.99)) are those of SPARNet / SPARNet-HD (Chen et al., TIP 2021, the paper's ref. [9]),
with SPARNet's hourglass attention replaced by GAM and its LeakyReLU by meta-ACON-C; where
the paper is silent we follow SPARNet's released code and say so in `decisions`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..base import Discriminator, SRModel
from .blocks import GAM, MetaAconC, ScaledConv, conv
from ..paper import Decision, Paper, quoted
from ..registry import Capabilities, register

PAPER = Paper("Face Super-resolution Reconstruction based on Adaptive Global Residual Network", "J. Li, Y. Zhang",
              seed="003_b41b434daadd14b3.txt")

NUM_LEVELS = 3  # DSM and USM each hold 3 units (Sec. 3.1): 128 -> 16 px and back


# ----------------------------------------------------------------------------------------
# Attention residual unit (Sec. 3.2, Fig. 8-9)
# ----------------------------------------------------------------------------------------
class AttentionResidualUnit(nn.Module):
    """ARU / DARU / UARU (Fig. 8-9), eq. (16)-(19):

        f_j = F_res(x_{j-1}),  alpha_j = sigmoid(F_att(f_j)),
        x_j = skip(x_{j-1}) + alpha_j * f_j,

    skip = identity for an ARU (eq. 18) and the scaled conv F_sc for a DARU/UARU (eq. 19).
    F_res: two full pre-activation stages BN -> meta-ACON-C -> 3x3 conv (Sec. 2.1, Fig. 2);
    in a DARU the second conv has stride 2, in a UARU the first is nearest x2 + conv
    (SPARNet's placement). F_att: GAM -> 3x3 conv (C -> C, a 3-D map as GAM's is).
    """

    def __init__(self, in_channels: int, out_channels: int, mode: str = "none",
                 gam_reduction: int = 8, acon_reduction: int = 16):
        super().__init__()
        if mode not in ("none", "down", "up"):
            raise ValueError(f"mode must be 'none', 'down' or 'up', got {mode!r}")
        if mode == "none" and in_channels != out_channels:
            raise ValueError("a plain ARU keeps the channel count (its skip is the identity)")
        self.mode = mode
        self.skip = nn.Identity() if mode == "none" else ScaledConv(in_channels, out_channels, mode)
        # the first conv feeds a BN, so it carries no bias
        conv1 = ScaledConv(in_channels, out_channels, "up", bias=False) if mode == "up" else conv(in_channels, out_channels, bias=False)
        conv2 = ScaledConv(out_channels, out_channels, "down") if mode == "down" else conv(out_channels, out_channels)
        self.residual = nn.Sequential(
            nn.BatchNorm2d(in_channels), MetaAconC(in_channels, acon_reduction), conv1,
            nn.BatchNorm2d(out_channels), MetaAconC(out_channels, acon_reduction), conv2,
        )
        self.attention = nn.Sequential(GAM(out_channels, gam_reduction), conv(out_channels, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.residual(x)  # eq. (16)
        alpha = torch.sigmoid(self.attention(f))  # eq. (17)
        return self.skip(x) + alpha * f  # eq. (18) / (19)


def _check_widths(widths: list[int]) -> list[int]:
    widths = [int(w) for w in widths]
    if len(widths) != NUM_LEVELS + 1 or min(widths) < 1:
        raise ValueError(
            f"widths needs {NUM_LEVELS + 1} positive channel counts (full resolution, 1/2, 1/4, 1/8 = the "
            f"FEM width), got {widths}"
        )
    return widths


def _build_generator(model: nn.Module, widths: list[int], num_units: int, gam_reduction: int, acon_reduction: int) -> None:
    """Fig. 7: head conv, DSM (3 DARU), FEM (`num_units` ARU), USM (3 UARU), tail conv."""
    if num_units < 0:
        raise ValueError(f"num_units must be >= 0, got {num_units}")
    unit = dict(gam_reduction=gam_reduction, acon_reduction=acon_reduction)
    model.head = conv(3, widths[0])
    model.down = nn.Sequential(*[AttentionResidualUnit(widths[i], widths[i + 1], "down", **unit) for i in range(NUM_LEVELS)])
    model.body = nn.Sequential(*[AttentionResidualUnit(widths[-1], widths[-1], "none", **unit) for _ in range(num_units)])
    model.up = nn.Sequential(*[AttentionResidualUnit(widths[i + 1], widths[i], "up", **unit) for i in reversed(range(NUM_LEVELS))])
    model.tail = conv(widths[0], 3)


_COMMON_DECISIONS = [
    Decision("residual branch: BN, meta-ACON-C and a conv in the full pre-activation order (Sec. 3.2.2, Fig. 2); "
             "number of stages not stated",
             "two stages BN -> meta-ACON-C -> 3x3 conv, as He et al.'s full pre-activation block and SPARNet's unit; "
             "no BN after the last conv"),
    Decision("attention branch: GAM, then 'an additional convolutional layer' and sigmoid (Sec. 3.2.1); "
             "kernel and output channels not stated",
             "GAM -> 3x3 conv C -> C -> sigmoid: a per-element map, multiplied element-wise with f (eq. 18)"),
    Decision("GAM reduction r not given (the GAM paper uses 4)",
             "r = 8 (`gam_reduction`), fixed by Table 5's +0.65 M per ARU (see widths)"),
    Decision("meta-ACON-C with channel-wise beta, W1 W2 of reduction 16 (Sec. 2.2.3)",
             "the same (`acon_reduction` 16); 1x1 convs with bias instead of BN after W1/W2 (blocks.MetaAconC)"),
    Decision("DARU/UARU: the residual branch uses a scaled conv (stride 2 / conv plus nearest upsampling) and "
             "the skip is a scaled conv F_sc (eq. 19, Fig. 9); where in the branch is not stated",
             "DARU: stride 2 on the second conv; UARU: nearest x2 then conv on the first (SPARNet's placement); "
             "skip: the same kind of 3x3 scaled conv"),
    Decision("USConv: 'a normal convolution layer plus an upsampling layer' (order not stated)",
             "nearest x2 first, then the 3x3 conv (blocks.ScaledConv, as SPARNet)"),
    Decision("Fig. 7 / Sec. 3.1 describe a plain chain head conv -> DSM -> FEM -> USM -> tail conv",
             "no global residual and no skips from the down to the up path (none is described)"),
]


# ----------------------------------------------------------------------------------------
# AGRNet (Sec. 3.1)
# ----------------------------------------------------------------------------------------
@register("agrnet")
class AGRNet(SRModel):
    """AGRNet (Li & Zhang): x8 face super-resolution (16 -> 128 px) by an encoder-body-decoder
    of attention residual units on the bicubic pre-upsampled LR: 3x3 conv, 3 down units
    (128 -> 16 px), 10 attention residual units (x + sigmoid(GAM-attention(f)) * f, f a
    pre-activation residual branch with meta-ACON-C), 3 up units (16 -> 128 px), 3x3 conv.
    """

    capabilities = Capabilities("AGRNet", scales=(4, 8), scale_key="scale", pre_upsampled=True,
                                input_multiple=2 ** NUM_LEVELS, batchnorm=True)
    # meta-ACON pools over the tile; no trained weights to measure a tile size on yet (x8: 256 px network input)
    tile_size, tile_overlap = 32, 8
    paper = PAPER
    paper_results = quoted("Helen test (50)", [(8, "AGRNet", 27.54, 0.8352), (8, "DIC", 26.42, 0.7694),
                                               (8, "SPARNet", 26.59, 0.7716), (8, "SFMNet", 26.86, 0.7987)])
    decisions = [
        Decision("widths not given; Table 5: 12.68 M parameters at 10 ARUs, 13.33 M at 11 (+0.65 M per ARU)",
                 "FEM width 128 with GAM r = 8 gives 0.653 M per ARU; the remaining 6.15 M must sit in the 6 "
                 "scaled units (SPARNet's 32-64-128 widths give 9.30 M, 128 everywhere 11.35 M), so the simplest "
                 "monotone choice: 160 channels at 128 and 64 px, 128 at 32 and 16 px (`widths` [160, 160, 128, 128]) "
                 "= 12,679,679 parameters, +653,392 per ARU"),
        *_COMMON_DECISIONS,
        Decision("L2 loss, Adam lr 2e-4, betas (0.9, 0.99), batch 64 (Sec. 4.1)", "the same (train/recipes.py)"),
    ]
    test_config = {"widths": [8, 8, 8, 8], "num_units": 1}

    def __init__(self, scale: int = 8, widths: list[int] = [160, 160, 128, 128], num_units: int = 10,
                 gam_reduction: int = 8, acon_reduction: int = 16):
        super().__init__()
        self.scale = scale
        _build_generator(self, _check_widths(widths), num_units, gam_reduction, acon_reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Bicubic pre-upsampled LR (N,3,H,W), H and W multiples of 8 -> SR (N,3,H,W)."""
        return self.tail(self.up(self.body(self.down(self.head(x)))))


# ----------------------------------------------------------------------------------------
# AGRNet-HR (Sec. 3.3) and its multi-scale discriminator (Fig. 10)
# ----------------------------------------------------------------------------------------
class _PatchDiscriminator(nn.Module):
    """One D_k: SPARNet-HD's NLayerDiscriminator (pix2pixHD family). 3x3 conv -> LReLU,
    `n_layers` x (3x3 stride-2 conv, channels doubling up to `max_channels` -> LReLU), and a
    3x3 score conv to one channel; no normalisation layers; spectral norm on every conv."""

    def __init__(self, base_channels: int, max_channels: int, n_layers: int, spectral_norm: bool):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm if spectral_norm else (lambda m: m)
        layers = [nn.Sequential(sn(conv(3, base_channels)), nn.LeakyReLU(0.2))]
        cout = base_channels
        for i in range(n_layers):
            cin, cout = min(base_channels * 2 ** i, max_channels), min(base_channels * 2 ** (i + 1), max_channels)
            layers.append(nn.Sequential(sn(conv(cin, cout, stride=2)), nn.LeakyReLU(0.2)))
        self.layers = nn.ModuleList(layers)
        self.score = sn(conv(cout, 1))

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return features, self.score(x)


class AGRNetHRDiscriminator(Discriminator):
    """AGRNet-HR's multi-scale discriminator (Sec. 3.3, Fig. 10): D_1, D_2, D_3, one patch
    discriminator per image the generator emits (1/4, 1/2 and full size: 128, 256, 512 px in
    the paper), each with the same architecture, so D_1 sees the most of the face.

    `forward(images)` takes the list smallest first (as `AGRNetHR.forward_multiscale` returns
    it; a single full-size tensor is turned into that list by `pyramid`) and returns one
    logit map (N,1,h,w) per scale; `return_features=True` returns (features, logits) per scale,
    features being every hidden layer's output, for the feature-matching loss (eq. 24).

    How a trainer uses it (paper, eq. 20-27; the losses are training's, `train.gan`):

        fakes = G.forward_multiscale(x)          # x: LR bicubic-upsampled to the HR size
        reals = D.pyramid(hr)                    # HR resized to the same sizes
        loss_D = gan.discriminator_loss(D, fakes, reals, "hinge", multiscale=True)        # eq. 23
        terms = gan.generator_gan_terms(D, fakes, reals, "hinge", multiscale=True)        # eq. 22, 24
        loss_G = 100 * l1(fakes[-1], hr) + 1 * terms["adversarial"]
                 + 10 * terms["feature_matching"] + 1 * vgg19_perceptual(fakes[-1], hr)  # eq. 26

    with Adam (G 1e-4, D 4e-4, betas (0.5, 0.99)), batch 2. The paper treats D_k's output as
    a scalar; ours is a patch map, averaged over positions in the losses (`AGRNetHR.decisions`).
    Layout (SPARNet-HD's, which the paper's recipe mirrors): 64 base channels, 4
    stride-2 layers, max 512 channels, LeakyReLU 0.2, spectral norm, no norm layers; for HR
    128 training (smallest image 32 px) 3 layers keep the last map at 4x4.
    """

    architecture = "agrnet_hr_discriminator"
    test_config = {"base_channels": 8, "max_channels": 16, "n_layers": 2}

    def __init__(self, num_scales: int = 3, base_channels: int = 64, max_channels: int = 512,
                 n_layers: int = 4, spectral_norm: bool = True):
        super().__init__()
        if num_scales < 1 or n_layers < 0:
            raise ValueError("num_scales must be >= 1 and n_layers >= 0")
        self.num_scales = num_scales
        self.discriminators = nn.ModuleList(
            _PatchDiscriminator(base_channels, max_channels, n_layers, spectral_norm) for _ in range(num_scales)
        )

    def pyramid(self, hr: torch.Tensor) -> list[torch.Tensor]:
        """The HR batch resized to the sizes the generator emits, smallest first (Fig. 10:
        'HR images downsampled to the same size'); antialiased bicubic."""
        from ..degradations import imresize

        h, w = hr.shape[-2:]
        sizes = [(h // 2 ** k, w // 2 ** k) for k in reversed(range(self.num_scales))]
        return [hr if size == (h, w) else imresize(hr, size=size) for size in sizes]

    def forward(self, images: list[torch.Tensor] | torch.Tensor, return_features: bool = False):
        """One logit map per scale (smallest first), or (features, logits) per scale."""
        if isinstance(images, torch.Tensor):
            images = self.pyramid(images)
        if len(images) != self.num_scales:
            raise ValueError(f"expected {self.num_scales} images (smallest first), got {len(images)}")
        outputs = [d(image) for d, image in zip(self.discriminators, images)]
        return outputs if return_features else [logits for _, logits in outputs]


@register("agrnet_hr")
class AGRNetHR(SRModel):
    """AGRNet-HR (Li & Zhang): AGRNet widened for real-world degraded faces at high output
    resolution (512 px in the paper). The LR face (32-128 px, blurred, noisy, JPEG) is
    bicubic-upsampled to the output size; 3 down units, 10 attention residual units and 3 up
    units each emitting an image (1/4, 1/2, full size), trained as a GAN against one patch
    discriminator per image size (`AGRNetHRDiscriminator`).
    """

    capabilities = Capabilities("AGRNet-HR", scales=(2, 4, 8, 16), scale_key="scales", pre_upsampled=True,
                                input_multiple=2 ** NUM_LEVELS, multiscale_outputs=True, batchnorm=True, gan=True)
    # meta-ACON pools over the tile; no trained weights to measure a tile size on yet (x4: 256 px network input)
    tile_size, tile_overlap = 64, 16
    paper = PAPER
    paper_results = quoted("CelebA-HQ test (2824), real-world degradation eq. 28, 512 px", [
        ("4-16", "AGRNet-HR", 0.2633, "FID 26.27 on the paper's real test set; LPIPS backbone not stated"),
        ("4-16", "SwinIR", 0.3125, "FID 27.39"), ("4-16", "MambaIR", 0.2846, "FID 26.94")],
        columns=("scale", "method", "lpips", "note"))
    decisions = [
        Decision("input: the degraded LR (32-128 px) bicubic-upsampled to 512; 3 DARU to 64 px; UARUs emit 128, 256, "
                 "512 px images (Sec. 3.3, 4.2)",
                 "the same network, size-preserving and fully convolutional: inputs of any multiple of 8; images at "
                 "1/4, 1/2, 1 of it. The HR size (512 in the paper) is a training choice: HR 128 or 256 needs no "
                 "change to the model", note="the recipe's `hr_size`, not a weight shape: train on smaller faces"),
        Decision("scale factor random in [4, 16] (32/512 to 128/512, Sec. 4.2)",
                 "`scales` [4, 8, 16] for `upscale` (it only sets the bicubic pre-upsampling), default the first (4)",
                 note="add other factors to `scales` freely: the weights do not depend on it"),
        Decision("each up unit reconstructs an image (Fig. 10); how is not stated",
                 "3x3 to-RGB conv per UARU with output skips: image_k = bilinear_up2(image_{k-1}) + rgb_k(h_k), so "
                 "the pixel loss on the final image trains every head",
                 note="StyleGAN2's skip generator: the 3 images stay consistent; the last head is the paper's tail conv"),
        Decision("'increasing the number of channels' of AGRNet; widths not given",
                 "`widths` [160, 160, 256, 256]: AGRNet's outer widths (at 512 px they already dominate the cost), "
                 "the two inner levels doubled; the shipped CPU-trained weights use [32, 32, 64, 64] (2.4 M)"),
        Decision("generator structure unchanged from AGRNet", "no spectral norm in G (SPARNet-HD has it; not stated here)"),
        *_COMMON_DECISIONS,
        Decision("3 discriminators D_1..D_3 on the 128/256/512 images vs the HR resized to each size; architecture not "
                 "stated; D_k output 'is a scalar'",
                 "AGRNetHRDiscriminator: SPARNet-HD's patch discriminator per scale (3x3 convs, 64 base channels, "
                 "4 stride-2 layers up to 512, LeakyReLU 0.2, spectral norm, no norm layers); patch maps averaged"),
        Decision("L_G = 100 L1 + 1 hinge adv. + 10 feature matching + 1 VGG19 perceptual, summed over the 3 scales; "
                 "L_D = hinge (eq. 20-27)",
                 "the same, via train.gan (hinge discriminator_loss / generator_gan_terms); L1 and perceptual on the "
                 "final image (eq. 20-21)",
                 note="Adam G 1e-4 / D 4e-4, betas (0.5, 0.99), batch 2 (train/recipes.py)"),
    ]
    test_config = {"widths": [8, 8, 8, 8], "num_units": 1}
    discriminator_cls = AGRNetHRDiscriminator

    def __init__(self, scales: list[int] = [4, 8, 16], widths: list[int] = [160, 160, 256, 256],
                 num_units: int = 10, gam_reduction: int = 8, acon_reduction: int = 16):
        super().__init__()
        if not scales or min(scales) < 1:
            raise ValueError(f"scales must be a non-empty list of positive factors, got {scales}")
        self.scales = [int(s) for s in scales]
        widths = _check_widths(widths)
        _build_generator(self, widths, num_units, gam_reduction, acon_reduction)
        # heads of the first two up units (1/4 and 1/2 size); `tail` is the full-size head
        self.to_rgb = nn.ModuleList(conv(widths[i], 3) for i in reversed(range(1, NUM_LEVELS)))

    @property
    def default_scale(self) -> int:
        """The first entry of `scales` (4 by default: a 128 px face -> 512 px)."""
        return self.scales[0]

    def forward_multiscale(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Bicubic pre-upsampled LR (N,3,H,W), H, W multiples of 8 -> the images of the 3 up
        units, smallest first: (N,3,H/4,W/4), (N,3,H/2,W/2), (N,3,H,W) (Fig. 10)."""
        h = self.body(self.down(self.head(x)))
        heads = [*self.to_rgb, self.tail]
        images: list[torch.Tensor] = []
        for unit, to_rgb in zip(self.up, heads):
            h = unit(h)
            image = to_rgb(h)
            if images:
                image = image + F.interpolate(images[-1], scale_factor=2, mode="bilinear", align_corners=False)
            images.append(image)
        return images

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The full-size image of `forward_multiscale` (N,3,H,W)."""
        return self.forward_multiscale(x)[-1]
