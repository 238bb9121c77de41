"""RAFSR (seed 000): 8 residual attention modules with CBAM, all fused by a 1x1 conv, plus an
adaptive 1x1 residual from the shallow features."""

import torch
from torch import nn

import hub_models
from arch_helpers import SingleScaleLRChecks, cbam_count, cbam_params, conv_params, n_params
from hub_models import RAFSR


def test_rafsr_registered():
    assert hub_models.MODELS["rafsr"] is RAFSR
    assert not RAFSR.pre_upsampled


def test_rafsr_default_has_8_rams_with_cbam():
    model = RAFSR()
    assert len(model.rams) == 8
    assert cbam_count(model) == 8
    assert all(cbam_count(ram) == 1 for ram in model.rams)


def test_rafsr_fusion_takes_all_ram_outputs():
    model = RAFSR()
    assert model.fusion.in_channels == 8 * 64 and model.fusion.out_channels == 64
    assert model.fusion.kernel_size == (1, 1)
    # behavioural: every RAM's output reaches the fusion (zero the fusion weight slice of one
    # RAM and the output changes only if that RAM contributes)
    torch.manual_seed(0)
    tiny = RAFSR(**RAFSR.test_config).eval()
    x = torch.rand(1, 3, 6, 6)
    captured = {}

    def keep_input(module, inputs, output):
        captured["in"] = inputs[0]

    tiny.fusion.register_forward_hook(keep_input)
    with torch.no_grad():
        tiny(x)
    c = 8
    h = tiny.shallow(x)
    with torch.no_grad():
        for i, ram in enumerate(tiny.rams):
            h = ram(h)
            assert torch.allclose(captured["in"][:, i * c:(i + 1) * c], h)


def test_rafsr_adaptive_residual_is_1x1_conv_from_shallow_features():
    model = RAFSR(**RAFSR.test_config).eval()
    assert isinstance(model.adaptive_residual, nn.Conv2d)
    assert model.adaptive_residual.kernel_size == (1, 1)
    # forward = reconstruction(fusion(...) + adaptive_residual(shallow(x)))
    x = torch.rand(1, 3, 5, 7)
    with torch.no_grad():
        f0 = model.shallow(x)
        feats, h = [], f0
        for ram in model.rams:
            h = ram(h)
            feats.append(h)
        expected = model.reconstruction(model.fusion(torch.cat(feats, 1)) + model.adaptive_residual(f0))
        assert torch.allclose(model(x), expected)
        # with the adaptive path zeroed the output differs: the path is really used
        model.adaptive_residual.weight.zero_()
        model.adaptive_residual.bias.zero_()
        assert not torch.allclose(model(x), expected)


def test_rafsr_ram_has_identity_skip():
    model = RAFSR(**RAFSR.test_config).eval()
    ram = model.rams[0]
    for p in ram.body[-1].parameters():  # last conv of the RAM body -> CBAM input is zero
        nn.init.zeros_(p)
    x = torch.rand(1, 8, 5, 5)
    with torch.no_grad():
        assert torch.equal(ram(x), x)


def test_rafsr_parameter_count():
    c, n, r = 64, 8, 16
    ram = 2 * conv_params(c, c) + cbam_params(c, r)
    expected = (conv_params(3, c) + n * ram + conv_params(n * c, c, 1) + conv_params(c, c, 1)
                + conv_params(c, c) + 2 * conv_params(c, 4 * c) + conv_params(c, 3))
    assert n_params(RAFSR(scale=4)) == expected == 969_147  # ~0.97 M; the paper gives no count


class TestRAFSRCommon(SingleScaleLRChecks):
    arch = RAFSR
