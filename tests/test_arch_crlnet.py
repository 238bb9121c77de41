"""CRLNet (seed 002): the SRGAN generator with SAGAN self-attention in chosen residual blocks,
and its SRGAN discriminator."""

import json

import pytest
import torch
from torch import nn

from arch_helpers import n_params, saved_and_reloaded, tiny
from hub_models import CheckpointMismatchError, CRLNet, CRLNetDiscriminator
from hub_models.archs.blocks import SelfAttention
from hub_models.archs.crlnet import AttentionResidualBlock
from hub_models.base import Discriminator


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


# -- discriminator ----------------------------------------------------------------------
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
    loaded, expected, got = saved_and_reloaded(tiny(CRLNetDiscriminator), torch.rand(2, 3, 64, 64), tmp_path / "d")
    config = json.loads((tmp_path / "d" / "config.json").read_text())
    assert config["architecture"] == "crlnet_discriminator"
    assert config["channels"] == CRLNetDiscriminator.test_config["channels"]
    assert not loaded.training
    assert torch.equal(got, expected)
    # same weights under another config fail loudly
    config["dense"] = 12
    (tmp_path / "d" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointMismatchError, match="shape mismatches"):
        CRLNetDiscriminator.from_pretrained(tmp_path / "d")
