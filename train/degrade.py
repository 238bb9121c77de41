"""HR batch -> the network's LR input: bicubic (8-bit) at one or several scales, or the
real-world pipeline (AGRNet-HR, seed 003 eq. 28); and the fixed validation inputs."""

from __future__ import annotations

import torch

from hub_models.degradations import (RealWorldParams, bicubic_lr_8bit, imresize, mod_crop, real_world_degrade,
                                    real_world_lr_fixed)


def _bicubic_8bit(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """`bicubic_lr_8bit`; HR sizes that `scale` does not divide (MFFCN's x3 on 128-px crops) keep
    their whole extent (MATLAB imresize: ceil(size / scale) px) instead of being mod-cropped."""
    if hr.shape[-2] % scale == 0 and hr.shape[-1] % scale == 0:
        return bicubic_lr_8bit(hr, scale)
    return (imresize(hr, scale=1 / scale) * 255).round().clamp(0, 255) / 255


def _bicubic_input(hr: torch.Tensor, scale: int, pre_upsampled: bool) -> torch.Tensor:
    """The network's input for a clean bicubic LR: the 8-bit LR, bicubic-upsampled back to the
    HR size for pre-upsampled models."""
    small = _bicubic_8bit(hr, scale)
    return imresize(small, size=hr.shape[-2:]).clamp(0, 1) if pre_upsampled else small


def degrade(hr: torch.Tensor, scales: list[int], kind: str, seed: int, pre_upsampled: bool,
            clean_fraction: float = 0.0):
    """LR input for the network and the scale (None when the batch mixes scales).

    Multi-scale recipes draw a scale per sample (pre-upsampled models only: every sample
    comes back at the HR size); single-scale models use scales[0]. LR images are
    quantised to 8 bits, as a saved LR image would be. "real_world" (AGRNet-HR, seed 003
    eq. 28): blur, downscale, noise, JPEG with per-image parameters drawn from the paper's
    ranges (kernel sizes rescaled to the HR size); pre-upsampled models get the JPEG LR
    bicubic-upsampled back to the HR size (the paper's I_LR-UP, random factor 4-16),
    others a fixed factor scales[0]. `clean_fraction` of the real-world samples (drawn per
    sample from the seed) get the plain bicubic LR at scales[0] instead.
    """
    gen = torch.Generator().manual_seed(seed)
    n = hr.shape[0]
    if kind == "real_world":
        size = int(hr.shape[-1])
        fixed = {"upsample_to": tuple(int(v) for v in hr.shape[-2:])} if pre_upsampled else {"downscale": 1 / scales[0]}
        params = [RealWorldParams.sample(seed * 1009 + i, hr_size=size, **fixed) for i in range(n)]
        lr = real_world_degrade(hr.float(), params)  # JPEG output: already 8-bit values
        clean = torch.rand(n, generator=gen) < clean_fraction
        if clean.any():
            lr[clean] = _bicubic_input(hr[clean].float(), scales[0], pre_upsampled)
        return lr, scales[0]
    if len(scales) > 1 and not pre_upsampled:
        raise ValueError("several training scales need a pre-upsampled model")
    picks = [scales[int(i)] for i in torch.randint(len(scales), (n,), generator=gen)] if len(scales) > 1 else [scales[0]] * n
    outs = []
    for s in sorted(set(picks)):
        idx = [i for i, p in enumerate(picks) if p == s]
        outs.append((idx, _bicubic_input(hr[idx], s, pre_upsampled)))
    if len(outs) == 1:
        return outs[0][1], picks[0]
    lr = torch.empty_like(hr)
    for idx, x in outs:
        lr[idx] = x
    return lr, None


def validation_inputs(hr: torch.Tensor, recipe) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(LR, HR, scale) for validation, fixed for the whole run: the card protocol's LR
    (`bicubic_lr_8bit`) at the largest training scale, or for real-world recipes eq. 28 with
    per-image seeds at scales[0]."""
    if recipe.degradation == "real_world":
        scale = recipe.scales[0]
        return real_world_lr_fixed(hr, scale), hr, scale
    scale = recipe.scales[-1]
    hr = mod_crop(hr, scale)  # sizes the scale does not divide: LR and HR of the same extent
    return torch.cat([bicubic_lr_8bit(chunk, scale) for chunk in hr.split(16)]), hr, scale
