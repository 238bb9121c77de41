"""Training losses, by the names the recipes use.

Pixel terms: "l1", "l2" (MSE), "tv" (total variation: squared differences between
vertical and horizontal neighbours, MFFCN eq. 7, averaged instead of summed like the other
terms). Feature terms ("perceptual", "perceptual_mse", "texture") and adversarial
terms ("adversarial", "feature_matching") need a feature network or a discriminator;
they are computed by `Criterion`, which the training script builds from the recipe.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PIXEL_TERMS = {"l1", "l2", "tv"}
FEATURE_TERMS = {"perceptual", "perceptual_mse", "texture"}
GAN_TERMS = {"adversarial", "feature_matching"}


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """MFFCN eq. 7, sum_{i,j} (x_{i,j+1} - x_{i,j})^2 + (x_{i+1,j} - x_{i,j})^2, as means over
    the neighbour pairs (the other terms are means too, so the paper's weights keep their ratio)."""
    return (x[..., 1:, :] - x[..., :-1, :]).pow(2).mean() + (x[..., :, 1:] - x[..., :, :-1]).pow(2).mean()


def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix of (N,C,H,W) features, normalised by C*H*W (Gatys et al. style loss)."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


class Criterion:
    """Weighted sum of the recipe's loss terms for the generator.

    `features` is a callable image -> list of feature maps (the perceptual network,
    `train.perceptual.feature_network`) or None; terms that need it raise a clear error when
    it is missing. "perceptual" is the sum over layers of the mean L1 (MFFCN eq. 4, AGRNet-HR
    eq. 25), "perceptual_mse" the mean squared error (CRLNet eq. 9), "texture" the L1 between
    Gram matrices (MFFCN eq. 5). GAN terms come in computed (`train.gan`).
    """

    def __init__(self, weights: dict[str, float], features=None):
        unknown = set(weights) - PIXEL_TERMS - FEATURE_TERMS - GAN_TERMS
        if unknown:
            raise ValueError(f"unknown loss terms {sorted(unknown)}")
        if set(weights) & FEATURE_TERMS and features is None:
            raise ValueError(f"loss terms {sorted(set(weights) & FEATURE_TERMS)} need a perceptual feature network")
        self.weights = weights
        self.features = features

    def __call__(self, sr: torch.Tensor, hr: torch.Tensor, gan_terms: dict[str, torch.Tensor] | None = None):
        parts: dict[str, torch.Tensor] = {}
        w = self.weights
        sr32, hr32 = sr.float(), hr.float()
        if "l1" in w:
            parts["l1"] = F.l1_loss(sr32, hr32)
        if "l2" in w:
            parts["l2"] = F.mse_loss(sr32, hr32)
        if "tv" in w:
            parts["tv"] = total_variation(sr32)
        if set(w) & FEATURE_TERMS:
            fake = self.features(sr)
            with torch.no_grad():
                real = self.features(hr)
            if "perceptual" in w:
                parts["perceptual"] = sum(F.l1_loss(a.float(), b.float()) for a, b in zip(fake, real))
            if "perceptual_mse" in w:
                parts["perceptual_mse"] = sum(F.mse_loss(a.float(), b.float()) for a, b in zip(fake, real))
            if "texture" in w:
                parts["texture"] = sum(F.l1_loss(gram(a.float()), gram(b.float())) for a, b in zip(fake, real))
        for name, value in (gan_terms or {}).items():
            if name in w:
                parts[name] = value
        total = sum(w[name] * value for name, value in parts.items())
        return total, {k: float(v.detach()) for k, v in parts.items()}
