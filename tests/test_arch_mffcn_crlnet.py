"""Architecture-specific tests for MFFCN (seed 001) and CRLNet + its discriminator (seed 002)."""

import json

import pytest
import torch
from torch import nn

from hub_models import CheckpointMismatchError, CRLNet, CRLNetDiscriminator, MFFCN
from hub_models.base import Discriminator
from hub_models.archs.blocks import SelfAttention
from hub_models.archs.crlnet import AttentionResidualBlock
from hub_models.archs.mffcn import MFFModule


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------------------------------
# MFFCN
# ---------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------
# CRLNet generator
# ---------------------------------------------------------------------------------------
def test_crlnet_has_16_srgan_residual_blocks_and_srgan_parameter_count():
    model = CRLNet()
    assert model.scale == 4 and not model.pre_upsampled
    assert len(model.blocks) == 16 and all(isinstance(b, AttentionResidualBlock) for b in model.blocks)
    kinds = [type(m) for m in model.blocks[0].body]
    assert kinds == [nn.Conv2d, nn.BatchNorm2d, nn.PReLU, nn.Conv2d, nn.BatchNorm2d]
    plain = CRLNet(attention_blocks=[])
    x8 = CRLNet(scale=8)
    print(f"\nCRLNet x4: {n_params(model):,} parameters ({n_params(plain):,} without attention; "
          f"SRGAN generator ~1.5 M); x8: {n_params(x8):,}")
    assert n_params(plain) == 1_550_659  # SRResNet/SRGAN generator at x4
    assert 1.5e6 < n_params(model) < 1.6e6
    shuffles = [m for m in x8.upsample if isinstance(m, nn.PixelShuffle)]
    assert len(shuffles) == 3 and all(s.upscale_factor == 2 for s in shuffles)
    with pytest.raises(ValueError, match="scale"):
        CRLNet(scale=3)


def test_crlnet_attention_sits_in_the_chosen_blocks():
    model = CRLNet()
    with_attention = [i for i, b in enumerate(model.blocks) if isinstance(b.attention, SelfAttention)]
    assert with_attention == [8, 10, 12, 14] == model.attention_blocks
    custom = CRLNet(num_blocks=4, channels=8, attention_blocks=[0, 3])
    assert [i for i, b in enumerate(custom.blocks) if isinstance(b.attention, SelfAttention)] == [0, 3]
    with pytest.raises(ValueError, match="out of range"):
        CRLNet(num_blocks=4, attention_blocks=[4])


def test_fresh_crlnet_equals_itself_without_attention():
    torch.manual_seed(0)
    model = CRLNet().eval()
    attentions = [b.attention for b in model.blocks if isinstance(b.attention, SelfAttention)]
    assert attentions and all(a.gamma.item() == 0 for a in attentions)
    lr = torch.rand(2, 3, 12, 12)
    with torch.no_grad():
        with_attention = model(lr)
        for block in model.blocks:
            block.attention = nn.Identity()
        without = model(lr)
    assert with_attention.shape == (2, 3, 48, 48)
    assert torch.equal(with_attention, without)


def test_crlnet_attention_acts_once_gamma_moves_and_chunking_is_exact():
    torch.manual_seed(0)
    model = CRLNet(num_blocks=3, channels=16, attention_blocks=[1, 2]).eval()
    lr = torch.rand(2, 3, 10, 10)
    with torch.no_grad():
        plain = model(lr)
        for block in model.blocks:
            if isinstance(block.attention, SelfAttention):
                block.attention.gamma.fill_(0.5)
        full = model(lr)
        for block in model.blocks:
            if isinstance(block.attention, SelfAttention):
                block.attention.max_scores = 2 * 100 * 30  # 30 queries per chunk at 10x10, batch 2
        chunked = model(lr)
    assert not torch.allclose(plain, full)
    torch.testing.assert_close(chunked, full, rtol=1e-5, atol=1e-5)


def test_crlnet_x8_and_attention_pool_option():
    torch.manual_seed(0)
    model = CRLNet(scale=8, num_blocks=2, channels=8, attention_blocks=[0], attention_pool=2).eval()
    assert model.blocks[0].attention.pool == 2
    assert model.upscale(torch.rand(1, 3, 8, 8)).shape == (1, 3, 64, 64)


# ---------------------------------------------------------------------------------------
# CRLNet discriminator
# ---------------------------------------------------------------------------------------
def test_discriminator_is_the_srgan_discriminator():
    assert CRLNet.discriminator_cls is CRLNetDiscriminator and issubclass(CRLNetDiscriminator, Discriminator)
    disc = CRLNetDiscriminator()
    convs = [m for m in disc.features if isinstance(m, nn.Conv2d)]
    assert len(convs) == 8
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2, 1, 2, 1, 2, 1, 2]
    assert all(c.kernel_size == (3, 3) for c in convs)
    # BN after every conv but the first; LeakyReLU(0.2) after every one
    layers = list(disc.features)
    assert not isinstance(layers[1], nn.BatchNorm2d)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in layers) == 7
    assert [m.negative_slope for m in layers if isinstance(m, nn.LeakyReLU)] == [0.2] * 8
    dense = [m for m in disc.head if isinstance(m, nn.Linear)]
    assert [d.out_features for d in dense] == [1024, 1]
    print(f"\nCRLNet discriminator: {n_params(disc):,} parameters (SRGAN's at 96x96: ~23.6 M; "
          f"ours pools to 4x4 before the dense layer)")


@pytest.mark.parametrize("size", [64, 128, 256])
def test_discriminator_gives_one_logit_per_image_at_every_hr_size(size):
    torch.manual_seed(0)
    disc = CRLNetDiscriminator(channels=8, dense=16).train()  # default pool_size 4, as shipped
    out = disc(torch.rand(2, 3, size, size))
    assert out.shape == (2, 1) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in disc.parameters())


def test_default_discriminator_runs_at_64():
    out = CRLNetDiscriminator().eval()(torch.rand(1, 3, 64, 64))
    assert out.shape == (1, 1)


def test_discriminator_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    disc = CRLNetDiscriminator(**CRLNetDiscriminator.test_config).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        expected = disc(x)
    disc.save_pretrained(tmp_path / "d")
    config = json.loads((tmp_path / "d" / "config.json").read_text())
    assert config["architecture"] == "crlnet_discriminator"
    assert config["channels"] == CRLNetDiscriminator.test_config["channels"]
    loaded = CRLNetDiscriminator.from_pretrained(tmp_path / "d")
    assert not loaded.training
    with torch.no_grad():
        assert torch.equal(loaded(x), expected)
    # same weights under another config fail loudly
    config["dense"] = 12
    (tmp_path / "d" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointMismatchError, match="shape mismatches"):
        CRLNetDiscriminator.from_pretrained(tmp_path / "d")
