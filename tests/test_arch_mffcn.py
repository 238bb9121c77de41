"""MFFCN (seed 001): a full-resolution U-Net-style stack of multi-scale (1x1/3x3/5x5) fusion
modules on the bicubic-upsampled image, one model for x2/x3/x4."""

import pytest
import torch
from torch import nn

from arch_helpers import n_params
from hub_models import MFFCN
from hub_models.archs.mffcn import MFFModule


def test_mffcn_default_size_and_parameter_count():
    model = MFFCN()
    assert model.scales == [2, 3, 4] and model.default_scale == 4 and model.pre_upsampled
    assert len(model.layers) == 10
    print(f"\nMFFCN default (10 MFF layers, width 64): {n_params(model):,} parameters (paper: not given)")
    assert n_params(model) == 1_984_067


@pytest.mark.parametrize("downsample", [False, True])
def test_mffcn_every_conv_is_inside_an_mff_module_with_1_3_5_branches(downsample):
    model = MFFCN(downsample=downsample)
    mff = [m for m in model.modules() if isinstance(m, MFFModule)]
    assert len(mff) == model.num_layers == 10
    inside = {id(c) for m in mff for c in m.modules() if isinstance(c, nn.Conv2d)}
    all_convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert {id(c) for c in all_convs} == inside, "a conv outside an MFF module"
    for index, module in enumerate(mff, start=1):
        kernels = [branch[0].kernel_size for branch in module.branches]
        assert kernels == [(1, 1), (3, 3), (5, 5)]
        assert len({branch[0].in_channels for branch in module.branches}) == 1  # same input to all three
        assert module.fuse.kernel_size == (1, 1) and module.fuse.in_channels == 3 * 64
        stride = 2 if downsample and index <= 5 else 1
        assert all(branch[0].stride == (stride, stride) for branch in module.branches)


@pytest.mark.parametrize("downsample", [False, True])
def test_mffcn_unet_skips_join_layer_i_and_n_minus_i(downsample):
    torch.manual_seed(0)
    n, c = 6, 4
    model = MFFCN(num_layers=n, channels=c, downsample=downsample).eval()
    assert model.skip_pairs == [(1, 5), (2, 4)]
    # channel plan: layer 1 takes RGB; layers 2..n/2+1 take C; layers after a skip take 2C
    in_channels = [layer.branches[0][0].in_channels for layer in model.layers]
    assert in_channels == [3, c, c, c, 2 * c, 2 * c]
    assert model.layers[-1].fuse.out_channels == 3
    inputs, outputs = {}, {}

    def record(index):
        def hook(module, args, out):
            inputs[index], outputs[index] = args[0], out

        return hook

    for index, layer in enumerate(model.layers, start=1):
        layer.register_forward_hook(record(index))
    with torch.no_grad():
        model(torch.rand(2, 3, 16, 16))
    def up(t):  # decoder layers of the encoder-decoder upsample their input x2 first
        return torch.nn.functional.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False) if downsample else t

    for i, j in model.skip_pairs:  # layer n-i+1 sees [out_{n-i}, out_i]
        assert torch.equal(inputs[j + 1], up(torch.cat([outputs[j], outputs[i]], dim=1)))
    # the innermost layer's output goes on alone (no skip into layer n/2+1)
    assert torch.equal(inputs[n // 2 + 1], up(outputs[n // 2]))
    if downsample:  # encoder-decoder: layer i and n-i live at the same (reduced) resolution
        assert [outputs[i].shape[-1] for i in range(1, n + 1)] == [8, 4, 2, 4, 8, 16]


@pytest.mark.parametrize("downsample", [False, True])
def test_mffcn_global_residual_zero_last_layer_gives_the_input(downsample):
    torch.manual_seed(0)
    model = MFFCN(num_layers=4, channels=8, downsample=downsample).eval()
    with torch.no_grad():
        model.layers[-1].fuse.weight.zero_()
        model.layers[-1].fuse.bias.zero_()
        x = torch.rand(2, 3, 13, 17)  # odd sizes: the encoder-decoder pads and crops inside
        assert torch.equal(model(x), x)


def test_mffcn_one_model_serves_x2_x3_x4():
    torch.manual_seed(0)
    model = MFFCN(**MFFCN.test_config).eval()
    assert model.supported_scales == [2, 3, 4]
    lr = torch.rand(1, 3, 10, 10)
    for s in (2, 3, 4):
        assert model.upscale(lr, scale=s).shape == (1, 3, 10 * s, 10 * s)
    # the network itself does not depend on the factor: same input, same output at every scale
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        assert torch.equal(model.network_forward(x, 2), model.network_forward(x, 4))
    with pytest.raises(ValueError, match="supports scale"):
        model.upscale(lr, scale=8)
    with pytest.raises(ValueError, match="even"):
        MFFCN(num_layers=5)
    with pytest.raises(ValueError, match="scales"):
        MFFCN(scales=[1, 2])
