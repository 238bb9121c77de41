"""Training losses, by the names the recipes use: a name -> function map per kind of input.

`PIXEL_LOSSES` take (SR, HR): "l1", "l2" (MSE), "tv" (total variation of SR: squared
differences between vertical and horizontal neighbours, MFFCN eq. 7, averaged instead of
summed like the other terms). `FEATURE_LOSSES` take the perceptual network's feature maps of
SR and HR (lists, one map per layer): "perceptual" (sum over layers of the mean L1, MFFCN
eq. 4, AGRNet-HR eq. 25), "perceptual_mse" (mean squared error, CRLNet eq. 9), "texture"
(L1 between Gram matrices, MFFCN eq. 5). The adversarial terms ("adversarial",
"feature_matching") need the discriminator and come in computed (train/gan.py).
`Criterion` is the recipe's weighted sum of them.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """MFFCN eq. 7, sum_{i,j} (x_{i,j+1} - x_{i,j})^2 + (x_{i+1,j} - x_{i,j})^2, as means over
    the neighbour pairs (the other terms are means too, so the paper's weights keep their ratio)."""
    return (x[..., 1:, :] - x[..., :-1, :]).pow(2).mean() + (x[..., :, 1:] - x[..., :, :-1]).pow(2).mean()


def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix of (N,C,H,W) features, normalised by C*H*W (Gatys et al. style loss)."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


#: (SR, HR) in fp32 -> loss
PIXEL_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l1": F.l1_loss,
    "l2": F.mse_loss,
    "tv": lambda sr, hr: total_variation(sr),
}
#: (SR features, HR features), one map per layer -> loss summed over the layers
FEATURE_LOSSES: dict[str, Callable[[list, list], torch.Tensor]] = {
    "perceptual": lambda fake, real: sum(F.l1_loss(a.float(), b.float()) for a, b in zip(fake, real)),
    "perceptual_mse": lambda fake, real: sum(F.mse_loss(a.float(), b.float()) for a, b in zip(fake, real)),
    "texture": lambda fake, real: sum(F.l1_loss(gram(a.float()), gram(b.float())) for a, b in zip(fake, real)),
}
PIXEL_TERMS = set(PIXEL_LOSSES)
FEATURE_TERMS = set(FEATURE_LOSSES)
GAN_TERMS = {"adversarial", "feature_matching"}


class Criterion:
    """Weighted sum of the recipe's loss terms for the generator.

    `features` is a callable image -> list of feature maps (the perceptual network,
    `train.perceptual.feature_network`) or None; terms that need it raise a clear error when
    it is missing. GAN terms come in computed (`train.gan`).
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
        """(total, {term: float value}); terms in the maps' order, then the GAN terms."""
        w = self.weights
        sr32, hr32 = sr.float(), hr.float()
        parts: dict[str, torch.Tensor] = {name: loss(sr32, hr32) for name, loss in PIXEL_LOSSES.items() if name in w}
        if set(w) & FEATURE_TERMS:
            fake = self.features(sr)
            with torch.no_grad():
                real = self.features(hr)
            parts.update({name: loss(fake, real) for name, loss in FEATURE_LOSSES.items() if name in w})
        parts.update({name: value for name, value in (gan_terms or {}).items() if name in w})
        total = sum(w[name] * value for name, value in parts.items())
        return total, {k: float(v.detach()) for k, v in parts.items()}
