"""RDAN (seed 004): 16 residual blocks conv-PReLU-conv with CBAM (the "double attention"),
sub-pixel upsampling, optional global skip."""

import torch
from torch import nn

import hub_models
from arch_helpers import SingleScaleLRChecks, cbam_count, cbam_params, conv_params, n_params
from hub_models import RDAN


def test_rdan_registered():
    assert hub_models.MODELS["rdan"] is RDAN
    assert not RDAN.pre_upsampled


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


class TestRDANCommon(SingleScaleLRChecks):
    arch = RDAN


def test_global_skip_config_round_trip(tmp_path):
    model = RDAN(**{**RDAN.test_config, "global_skip": True})
    model.save_pretrained(tmp_path)
    loaded = hub_models.load(tmp_path)
    assert loaded.global_skip is True
