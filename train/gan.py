"""Adversarial losses for the GAN recipes (CRLNet: standard -log D; AGRNet-HR: hinge, 3 scales).

`fakes` and `reals` are lists of image batches. A single-scale discriminator
(`multiscale=False`, e.g. `CRLNetDiscriminator`) judges the last entry and returns logits;
a multi-scale one (`multiscale=True`, `AGRNetHRDiscriminator`) takes the whole list,
smallest first, one image per scale judged by its own discriminator D_k against the HR
resized to that size, and returns one logit map per scale, or (features, logits) per scale
with ``return_features=True``. Logit maps are averaged over positions ("the output of D_k
is a scalar" in the paper; ours is a patch map).

- "bce" (CRLNet, seed 002 eq. 10): D minimises -log D(HR) - log(1 - D(SR)), G minimises
  -log D(SR) (the non-saturating form; SRGAN's), with logits and BCE-with-logits.
- "hinge" (AGRNet-HR, seed 003 eq. 22-23): D minimises sum_k mean(relu(1 - D_k(HR))) +
  mean(relu(1 + D_k(SR))), G minimises sum_k -mean(D_k(SR)).
- feature matching (seed 003 eq. 24): sum_k sum_l mean |f_l(D_k(SR)) - f_l(D_k(HR))|, every
  hidden layer of every D_k, the real features taken without gradient.

The training loop calls `generator_gan_terms` with the *unwrapped* discriminator whose
parameters are frozen (``requires_grad_(False)``): no discriminator gradient is computed
for the generator's loss and DDP's gradient hooks of the discriminator never fire outside
its own forward/backward. `discriminator_loss` goes through the DDP-wrapped one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

KINDS = ("bce", "hinge")


def _check(kind: str, fakes, reals) -> None:
    if kind not in KINDS:
        raise ValueError(f"adversarial kind must be one of {KINDS}, got {kind!r}")
    if not isinstance(fakes, (list, tuple)) or not isinstance(reals, (list, tuple)) or len(fakes) != len(reals):
        raise ValueError("fakes and reals must be lists of image batches of the same length")


def _judge(disc, images: list[torch.Tensor], multiscale: bool, features: bool = False):
    """Per-scale outputs: a list of logits, or of (features, logits) pairs."""
    if multiscale:
        return disc(list(images), return_features=True) if features else disc(list(images))
    out = disc(images[-1])
    return [([], out)] if features else [out]


def discriminator_loss(disc, fakes: list[torch.Tensor], reals: list[torch.Tensor], kind: str, multiscale: bool) -> torch.Tensor:
    """The discriminator's loss on detached fakes and reals (sum over scales). Real and fake
    batches go through separate forwards, so BatchNorm statistics are never mixed."""
    _check(kind, fakes, reals)
    real_logits = _judge(disc, reals, multiscale)
    fake_logits = _judge(disc, [f.detach() for f in fakes], multiscale)
    total = 0.0
    for r, f in zip(real_logits, fake_logits):
        r, f = r.float(), f.float()
        if kind == "hinge":
            total = total + F.relu(1 - r).mean() + F.relu(1 + f).mean()
        else:
            total = total + F.binary_cross_entropy_with_logits(r, torch.ones_like(r)) \
                + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f))
    return total


def generator_gan_terms(disc, fakes: list[torch.Tensor], reals: list[torch.Tensor], kind: str,
                        multiscale: bool) -> dict[str, torch.Tensor]:
    """{"adversarial": ..., "feature_matching": ...} for the generator (feature matching
    only where the discriminator exposes features: the multi-scale one)."""
    _check(kind, fakes, reals)
    fake_out = _judge(disc, fakes, multiscale, features=multiscale)
    terms: dict[str, torch.Tensor] = {}
    logits = [out[1] for out in fake_out] if multiscale else fake_out
    if kind == "hinge":
        terms["adversarial"] = sum(-lg.float().mean() for lg in logits)
    else:
        terms["adversarial"] = sum(F.binary_cross_entropy_with_logits(lg.float(), torch.ones_like(lg, dtype=torch.float32))
                                   for lg in logits)
    if multiscale:
        with torch.no_grad():
            real_out = _judge(disc, reals, multiscale, features=True)
        terms["feature_matching"] = sum(
            F.l1_loss(ff.float(), rf.detach().float())
            for (fake_feats, _), (real_feats, _) in zip(fake_out, real_out)
            for ff, rf in zip(fake_feats, real_feats)
        )
    return terms


def real_pyramid(disc, hr: torch.Tensor, fakes: list[torch.Tensor]) -> list[torch.Tensor]:
    """The HR batch at the size of each fake: the discriminator's own `pyramid` where it has
    one (AGRNet-HR: antialiased bicubic, Fig. 10), else area resizing; no gradient."""
    with torch.no_grad():
        pyramid = getattr(disc, "pyramid", None)
        if pyramid is not None and len(fakes) > 1:
            reals = pyramid(hr)
            if [r.shape for r in reals] == [f.shape for f in fakes]:
                return reals
        return [hr if f.shape[-2:] == hr.shape[-2:] else F.interpolate(hr, size=f.shape[-2:], mode="area") for f in fakes]
