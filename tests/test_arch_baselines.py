"""The baselines the face papers compare against (hub_models/archs/baselines.py): bicubic,
SRCNN (9-1-5) and VDSR (20 layers, global residual, He initialisation)."""

import torch
from torch import nn

import hub_models
from arch_helpers import conv_params, n_params
from hub_models import VDSR, Bicubic, SRCNN
from hub_models.degradations import imresize


def test_bicubic_has_no_weights_and_is_the_matlab_bicubic():
    model = Bicubic(scale=3).eval()
    assert n_params(model) == 0 and model.pre_upsampled
    lr = torch.rand(1, 3, 7, 9)
    assert torch.allclose(model.upscale(lr), imresize(lr, size=(21, 27)).clamp(0, 1), atol=1e-6)


def test_srcnn_is_9_1_5_with_its_parameter_count():
    model = SRCNN()
    convs = [m for m in model.body if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(9, 9), (1, 1), (5, 5)]
    assert [c.out_channels for c in convs] == [64, 32, 3] and model.pre_upsampled
    expected = conv_params(3, 64, 9) + conv_params(64, 32, 1) + conv_params(32, 3, 5)
    assert n_params(model) == expected == 20_099


def test_vdsr_20_layers_global_residual_and_parameter_count():
    model = VDSR().eval()
    assert sum(isinstance(m, nn.Conv2d) for m in model.body) == 20 and model.pre_upsampled
    assert n_params(model) == conv_params(3, 64) + 18 * conv_params(64, 64) + conv_params(64, 3) == 668_227
    nn.init.zeros_(model.body[-1].weight)
    nn.init.zeros_(model.body[-1].bias)
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        assert torch.equal(model(x), x)  # the network learns HR - bicubic


def test_vdsr_uses_he_initialisation_so_its_residual_is_alive():
    """VDSR's paper initialises with He et al.; with PyTorch's default init the signal through
    20 plain ReLU layers shrinks about 20-fold and a CPU run learned nothing (output = bicubic)."""
    torch.manual_seed(0)
    model = hub_models.get_class("vdsr")()
    x = torch.rand(2, 3, 48, 48)
    with torch.no_grad():
        residual = model.body(x)
    assert residual.std() > 0.1 * x.std()
    first = model.body[0]
    assert torch.all(first.bias == 0)
    assert abs(first.weight.std().item() - (2 / (3 * 9)) ** 0.5) < 0.05  # kaiming normal, fan_in 27
