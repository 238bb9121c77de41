"""Shared helpers of the per-architecture tests (`tests/test_arch_<name>.py`).

The contract every registered model must meet is in `tests/test_models.py`; these helpers serve
the checks that are specific to one paper (structure, equations, parameter counts), so that each
architecture's test file holds only what its paper says.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from hub_models.archs.blocks import CBAM


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def conv_params(cin: int, cout: int, k: int = 3) -> int:
    """Weights + biases of a k x k convolution."""
    return cin * cout * k * k + cout


def cbam_params(c: int, r: int) -> int:
    """CBAM (Woo et al. 2018): the channel MLP shared by both poolings + the 7x7 spatial conv."""
    h = max(c // r, 1)
    return (c * h + h) + (h * c + c) + (2 * 49 + 1)


def cbam_count(model: nn.Module) -> int:
    return sum(isinstance(m, CBAM) for m in model.modules())


def on_meta(cls, **kwargs):
    """Build a full-size model without allocating its weights."""
    with torch.device("meta"):
        return cls(**kwargs)


def tiny(cls, **overrides):
    """The architecture's tiny test config (seeded), with `overrides`."""
    torch.manual_seed(0)
    return cls(**{**cls.test_config, **overrides})


class SingleScaleLRChecks:
    """Checks of a single-scale network on the LR image that serves x2, x3, x4 and x8 with a
    paper quoting x4 results (RAFSR, RDAN). Run them for an architecture with
    `class TestRAFSRCommon(SingleScaleLRChecks): arch = RAFSR` in its test file."""

    arch: type

    @pytest.mark.parametrize("scale", [2, 3, 4, 8])
    def test_shapes(self, scale):
        model = tiny(self.arch, scale=scale).eval()
        with torch.no_grad():
            assert model(torch.rand(1, 3, 5, 6)).shape == (1, 3, 5 * scale, 6 * scale)

    def test_unsupported_scale_refused_at_construction(self):
        with pytest.raises(ValueError, match="supports scale"):
            self.arch(**{**self.arch.test_config, "scale": 5})

    def test_paper_results_and_decisions_present(self):
        cls = self.arch
        assert cls.paper["seed"] and cls.decisions
        assert all(len(d) == 2 for d in cls.decisions)
        assert all({"dataset", "scale", "method", "psnr_y", "ssim_y"} <= set(row) for row in cls.paper_results)
        assert all(row["scale"] == 4 for row in cls.paper_results)


def saved_and_reloaded(module: nn.Module, inputs, folder: Path):
    """Save `module` (in eval mode) and load it back from `folder`: returns the loaded module and
    the outputs on `inputs` before and after."""
    module.eval()
    with torch.no_grad():
        before = module(inputs)
    module.save_pretrained(folder)
    loaded = type(module).from_pretrained(folder)
    assert not loaded.training  # loading gives an eval-mode module
    with torch.no_grad():
        after = loaded(inputs)
    return loaded, before, after
