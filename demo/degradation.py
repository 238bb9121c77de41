"""The demo's low-resolution modes: how the input the model sees is made from the upload.

    deg = Degradation("real-world", 4, blur_kind="motion", blur_size=5, noise=10)
    lr = deg.apply(hr)            # (1,3,H/4,W/4), 8-bit levels
    deg.describe()                # "real-world ×4 (motion blur 5px, noise σ=10, ...)"

The degradations themselves are the library's (`hub_models.degradations`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hub_models import degradations

from .catalogue import SCALES, DemoError

#: mode -> what the radio button says
DEGRADATIONS = {
    "none": "None: my image is already low-resolution",
    "bicubic": "Bicubic downscaling (the papers' benchmark)",
    "real-world": "Real-world: blur → downscale → noise → JPEG",
}
#: the blur dropdown: the library's blur kinds, plus no blur at all
BLUR_CHOICES = (*degradations.BLUR_KINDS, "none")


@dataclass(frozen=True)
class Degradation:
    """How the low-resolution input is made from the (framed) image.

    mode "bicubic": MATLAB bicubic downscaling by `scale`, 8-bit (the papers' protocol);
    "real-world": blur -> downscale by `scale` -> Gaussian noise -> JPEG (AGRNet eq. 28);
    "none": the image already is the low-resolution input (no ground truth, no scores).
    """

    mode: str = "bicubic"
    scale: int = 4
    blur_kind: str = "gaussian"
    blur_size: int = 3
    noise: float = 5.0
    jpeg_quality: int = 75
    seed: int = 0

    def __post_init__(self):
        if self.mode not in DEGRADATIONS:
            raise DemoError(f"Unknown degradation {self.mode!r}; choose one of: {', '.join(DEGRADATIONS)}.")
        if int(self.scale) not in SCALES:
            raise DemoError(f"Scale ×{self.scale} is not offered; choose one of {', '.join(map(str, SCALES))}.")
        if self.mode == "real-world":
            self._check_real_world()

    def _check_real_world(self) -> None:
        if self.blur_kind not in BLUR_CHOICES:
            raise DemoError(f"Unknown blur {self.blur_kind!r}; choose one of: {', '.join(BLUR_CHOICES)}.")
        if self.blur_kind != "none" and (int(self.blur_size) != self.blur_size or self.blur_size < 1
                                         or self.blur_size % 2 == 0 or self.blur_size > 31):
            raise DemoError(f"Blur size must be an odd number of pixels from 1 to 31, got {self.blur_size}.")
        if self.blur_kind == "motion" and self.blur_size < 3:
            raise DemoError("Motion blur needs a size of at least 3 pixels.")
        if not 0 <= float(self.noise) <= 50:
            raise DemoError(f"Noise must be between 0 and 50 (on the 0-255 scale), got {self.noise}.")
        if not 1 <= int(self.jpeg_quality) <= 100:
            raise DemoError(f"JPEG quality must be between 1 and 100, got {self.jpeg_quality}.")
        if int(self.seed) < 0:
            raise DemoError("The seed must be a non-negative integer.")

    @property
    def has_ground_truth(self) -> bool:
        return self.mode != "none"

    def apply(self, hr: torch.Tensor) -> torch.Tensor:
        """LR (1,3,H/s,W/s) in 8-bit levels from an HR (1,3,H,W) whose sides are multiples of s."""
        s = int(self.scale)
        if self.mode == "bicubic":
            return degradations.bicubic_lr_8bit(hr, s)  # the card protocol's LR
        if self.mode == "real-world":
            params = degradations.RealWorldParams(
                blur_kind=self.blur_kind, blur_size=int(self.blur_size) if self.blur_kind != "none" else 1,
                downscale=1.0 / s, noise_sigma=float(self.noise), jpeg_quality=int(self.jpeg_quality),
                seed=int(self.seed))
            return degradations.real_world_degrade(hr, params)
        raise AssertionError("no degradation in mode 'none'")

    def describe(self) -> str:
        s = self.scale
        if self.mode == "bicubic":
            return f"bicubic ×{s}"
        if self.mode == "real-world":
            blur = "no blur" if self.blur_kind == "none" else f"{self.blur_kind} blur {self.blur_size}px"
            return f"real-world ×{s} ({blur}, noise σ={self.noise:g}, JPEG q={self.jpeg_quality}, seed {self.seed})"
        return f"none (input is low-resolution), ×{s}"

    def as_dict(self) -> dict:
        d = {"mode": self.mode, "scale": int(self.scale)}
        if self.mode == "real-world":
            d.update(blur_kind=self.blur_kind, blur_size=int(self.blur_size), noise=float(self.noise),
                     jpeg_quality=int(self.jpeg_quality), seed=int(self.seed))
        return d
