"""Architecture-specific checks for RAFSR (seed 000) and RDAN (seed 004)."""

import pytest
import torch
from torch import nn

import hub_models
from hub_models import RAFSR, RDAN
from hub_models.archs.blocks import CBAM


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def cbam_count(model: nn.Module) -> int:
    return sum(isinstance(m, CBAM) for m in model.modules())


def cbam_params(c: int, r: int) -> int:
    h = max(c // r, 1)
    return (c * h + h) + (h * c + c) + (2 * 49 + 1)  # shared MLP + 7x7 spatial conv


def conv_params(cin: int, cout: int, k: int = 3) -> int:
    return cin * cout * k * k + cout


# -- RAFSR ------------------------------------------------------------------------------
def test_rafsr_registered():
    assert hub_models.MODELS["rafsr"] is RAFSR and hub_models.MODELS["rdan"] is RDAN
    assert not RAFSR.pre_upsampled and not RDAN.pre_upsampled


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


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
def test_rafsr_shapes(scale):
    model = RAFSR(**{**RAFSR.test_config, "scale": scale}).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 5, 6)).shape == (1, 3, 5 * scale, 6 * scale)


@pytest.mark.parametrize("cls", [RAFSR, RDAN])
def test_unsupported_scale_refused_at_construction(cls):
    with pytest.raises(ValueError, match="supports scale"):
        cls(**{**cls.test_config, "scale": 5})


# -- RDAN -------------------------------------------------------------------------------
def test_rdan_default_16_blocks_with_cbam_and_prelu():
    model = RDAN()
    assert len(model.blocks) == 16 and cbam_count(model) == 16
    for block in model.blocks:
        assert isinstance(block.body[1], nn.PReLU)
        assert [type(m) for m in block.body] == [nn.Conv2d, nn.PReLU, nn.Conv2d]
    assert not model.global_skip and isinstance(model.body_tail, nn.Identity)


def test_rdan_block_equation():
    """y = x0 + Ms(Mc(xl) xl) (Mc(xl) xl), xl = conv(PReLU(conv(x0))) (Sec. 3.2)."""
    torch.manual_seed(0)
    block = RDAN(**RDAN.test_config).blocks[0].eval()
    x = torch.rand(2, 8, 6, 6)
    with torch.no_grad():
        xl = block.body(x)
        fc = block.cbam.channel(xl)  # Mc(xl) * xl
        expected = x + block.cbam.spatial(fc)
        assert torch.allclose(block(x), expected)


def test_rdan_global_skip_option():
    model = RDAN(**{**RDAN.test_config, "global_skip": True}).eval()
    assert isinstance(model.body_tail, nn.Conv2d)
    x = torch.rand(1, 3, 5, 5)
    with torch.no_grad():
        f0 = model.shallow(x)
        expected = model.to_rgb(model.upsample(model.body_tail(model.blocks(f0)) + f0))
        assert torch.allclose(model(x), expected)


def test_rdan_parameter_count():
    c, n, r = 64, 16, 16
    block = 2 * conv_params(c, c) + c + cbam_params(c, r)  # + PReLU slopes
    expected = (conv_params(3, c) + c + n * block + 2 * (conv_params(c, 4 * c) + c) + conv_params(c, 3))
    assert n_params(RDAN(scale=4)) == expected == 1_492_723  # ~1.49 M; the paper gives no count


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
def test_rdan_shapes(scale):
    model = RDAN(**{**RDAN.test_config, "scale": scale}).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 5, 6)).shape == (1, 3, 5 * scale, 6 * scale)


@pytest.mark.parametrize("cls", [RAFSR, RDAN])
def test_paper_results_and_decisions_present(cls):
    assert cls.paper["seed"] and cls.decisions
    assert all(len(d) == 2 for d in cls.decisions)
    assert all({"dataset", "scale", "method", "psnr_y", "ssim_y"} <= set(row) for row in cls.paper_results)
    assert all(row["scale"] == 4 for row in cls.paper_results)


def test_global_skip_config_round_trip(tmp_path):
    model = RDAN(**{**RDAN.test_config, "global_skip": True})
    model.save_pretrained(tmp_path)
    loaded = hub_models.load(tmp_path)
    assert loaded.global_skip is True
