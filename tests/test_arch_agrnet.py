"""AGRNet / AGRNet-HR (seed 003): parameter counts vs Table 5, unit structure and formula,
the multi-scale outputs and the multi-scale discriminator."""

import pytest
import torch
import torch.nn.functional as F

import hub_models
from arch_helpers import n_params, on_meta, saved_and_reloaded, tiny
from hub_models import AGRNet, AGRNetHR, AGRNetHRDiscriminator
from hub_models.archs.agrnet import AttentionResidualUnit
from hub_models.archs.blocks import MetaAconC
from train import gan as train_gan  # the GAN losses are training's


@pytest.fixture(autouse=True)
def _no_onednn(monkeypatch):
    """oneDNN compiles a kernel per new conv shape (seconds each on a loaded CPU); these
    tiny-model tests run faster on the plain CPU path."""
    monkeypatch.setattr(torch.backends.mkldnn, "enabled", False)


# Table 5 of the paper: "Influence of ARU number on AGRNet", params (M)
TABLE5 = {7: 10.74, 8: 11.39, 9: 12.03, 10: 12.68, 11: 13.33, 12: 13.97}


def test_default_parameter_count_matches_table5():
    assert abs(n_params(on_meta(AGRNet)) / 12.68e6 - 1) < 0.02


def test_parameters_per_aru_match_table5():
    # Table 5: 12.68 M at 10 ARUs, 13.33 M at 11 -> +0.65 M per ARU (mean slope 7..12: 0.646 M)
    delta = n_params(on_meta(AGRNet, num_units=11)) - n_params(on_meta(AGRNet, num_units=10))
    assert abs(delta / 0.65e6 - 1) < 0.02
    assert abs(delta / ((TABLE5[12] - TABLE5[7]) / 5 * 1e6) - 1) < 0.02


@pytest.mark.parametrize("units,paper_m", sorted(TABLE5.items()))
def test_every_table5_row_within_2_percent(units, paper_m):
    assert abs(n_params(on_meta(AGRNet, num_units=units)) / (paper_m * 1e6) - 1) < 0.02


def test_structure_3_daru_10_aru_3_uaru_and_sizes():
    model = on_meta(AGRNet)
    assert [u.mode for u in model.down] == ["down"] * 3
    assert [u.mode for u in model.body] == ["none"] * 10
    assert [u.mode for u in model.up] == ["up"] * 3
    assert all(isinstance(u, AttentionResidualUnit) for u in [*model.down, *model.body, *model.up])
    sizes = []
    hooks = [u.register_forward_hook(lambda m, i, o: sizes.append(o.shape[-1])) for u in [*model.down, *model.body, *model.up]]
    out = model.eval()(torch.empty(1, 3, 128, 128, device="meta"))
    for h in hooks:
        h.remove()
    assert sizes == [64, 32, 16] + [16] * 10 + [32, 64, 128]
    assert out.shape == (1, 3, 128, 128)
    # x8 on a bicubic pre-upsampled input: 16 px LR -> 128 px
    assert model.scale == 8 and model.pre_upsampled and model.input_multiple == 8


def _force_attention(unit: AttentionResidualUnit, value: float):
    """Make the attention branch's pre-sigmoid output `value` everywhere (sigmoid -> 0 or 1)."""
    return unit.attention.register_forward_hook(lambda m, i, o: torch.full_like(o, value))


@pytest.mark.parametrize("mode,cin,cout", [("none", 8, 8), ("down", 8, 12), ("up", 12, 8)])
def test_unit_formula(mode, cin, cout):
    torch.manual_seed(0)
    unit = AttentionResidualUnit(cin, cout, mode).eval()
    x = torch.randn(2, cin, 16, 16)
    with torch.no_grad():
        handle = _force_attention(unit, -1e4)  # alpha = 0: x_j = skip(x_{j-1}) (eq. 18/19)
        closed = unit(x)
        handle.remove()
        handle = _force_attention(unit, 1e4)  # alpha = 1: x_j = skip(x) + f
        opened = unit(x)
        handle.remove()
        skip, f = unit.skip(x), unit.residual(x)
    if mode == "none":
        assert torch.equal(closed, x)  # attention 0 -> the ARU is the identity
    assert torch.equal(closed, skip)
    torch.testing.assert_close(opened, skip + f)
    side = {"none": 16, "down": 8, "up": 32}[mode]
    assert closed.shape == (2, cout, side, side)


def test_acon_parameters_get_gradients():
    model = tiny(AGRNet).train()
    x = torch.rand(2, 3, 16, 16)
    F.mse_loss(model(x), x).backward()
    acons = [m for m in model.modules() if isinstance(m, MetaAconC)]
    assert len(acons) == 2 * 7  # two per unit: 3 DARU + 1 ARU + 3 UARU (test config)
    for acon in acons:
        for name in ("p1", "p2", "fc1.weight", "fc2.weight"):
            grad = acon.get_parameter(name).grad
            assert grad is not None and grad.abs().sum() > 0, name


def test_hr_emits_three_images_at_the_paper_sizes():
    model = on_meta(AGRNetHR).eval()
    images = model.forward_multiscale(torch.empty(1, 3, 512, 512, device="meta"))
    assert [tuple(im.shape) for im in images] == [(1, 3, 128, 128), (1, 3, 256, 256), (1, 3, 512, 512)]
    assert model.input_multiple == 8 and model.pre_upsampled
    assert model.supported_scales == [4, 8, 16] and model.default_scale == 4


def test_hr_small_output_and_upscale_scale_semantics():
    model = tiny(AGRNetHR).eval()
    x = torch.rand(1, 3, 64, 48)  # any multiple of 8 (HR 128 training: images at 32, 64, 128)
    with torch.no_grad():
        images = model.forward_multiscale(x)
        assert [tuple(im.shape[-2:]) for im in images] == [(16, 12), (32, 24), (64, 48)]
        assert torch.equal(model(x), images[-1])
    lr = torch.rand(1, 3, 8, 8)
    assert model.upscale(lr).shape[-1] == 32  # default x4
    assert model.upscale(lr, scale=16).shape[-1] == 128


def test_hr_final_image_trains_every_head():
    model = tiny(AGRNetHR).train()
    x = torch.rand(2, 3, 16, 16)
    F.l1_loss(model(x), x).backward()
    for head in [*model.to_rgb, model.tail]:
        assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0


def test_discriminator_outputs_per_scale_and_features():
    d = tiny(AGRNetHRDiscriminator).eval()
    images = [torch.rand(2, 3, s, s) for s in (16, 32, 64)]
    logits = d(images)
    assert [tuple(o.shape) for o in logits] == [(2, 1, 4, 4), (2, 1, 8, 8), (2, 1, 16, 16)]
    with_feats = d(images, return_features=True)
    assert len(with_feats) == 3
    for (feats, out), plain in zip(with_feats, logits):
        assert len(feats) == 3  # first conv + n_layers (2) stride-2 layers
        assert torch.equal(out, plain)
    # a single full-size tensor is judged against its own pyramid
    assert [o.shape[-1] for o in d(images[-1])] == [4, 8, 16]
    with pytest.raises(ValueError, match="expected 3 images"):
        d(images[:2])
    assert [im.shape[-1] for im in d.pyramid(torch.rand(1, 3, 64, 64))] == [16, 32, 64]
    full = on_meta(AGRNetHRDiscriminator)
    assert AGRNetHR.discriminator_cls is AGRNetHRDiscriminator
    assert all("parametrizations" in n for n, _ in full.named_parameters() if n.endswith("original"))


def test_discriminator_save_load_round_trip(tmp_path):
    d = tiny(AGRNetHRDiscriminator)
    images = [torch.rand(1, 3, s, s) for s in (16, 32, 64)]
    d.train()
    d(images)  # one power iteration, so the saved u/v are not the initial ones
    loaded, expected, got = saved_and_reloaded(d, images, tmp_path)
    assert loaded.config_dict()["architecture"] == "agrnet_hr_discriminator"
    for a, b in zip(got, expected):
        assert torch.equal(a, b)
    with pytest.raises(hub_models.CheckpointMismatchError):
        AGRNetHRDiscriminator.from_pretrained(tmp_path, n_layers=3)


def test_one_gan_step_with_the_paper_losses():
    torch.manual_seed(0)
    g, d = tiny(AGRNetHR).train(), tiny(AGRNetHRDiscriminator).train()
    hr = torch.rand(2, 3, 32, 32)
    x = F.interpolate(F.avg_pool2d(hr, 4), scale_factor=4, mode="bicubic")
    fakes, reals = g.forward_multiscale(x), d.pyramid(hr)
    loss_d = train_gan.discriminator_loss(d, fakes, reals, "hinge", multiscale=True)
    loss_d.backward()
    assert all(p.grad is not None for p in d.parameters())
    gan = train_gan.generator_gan_terms(d, fakes, reals, "hinge", multiscale=True)
    loss_g = 100 * F.l1_loss(fakes[-1], hr) + gan["adversarial"] + 10 * gan["feature_matching"]
    g.zero_grad()
    loss_g.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in g.parameters())
    # hinge: a perfect discriminator (real >= 1, fake <= -1) has zero loss
    ones = [torch.ones(1, 1, 2, 2)] * 3
    assert train_gan.discriminator_loss(lambda images: [i * 2 - 1 for i in images], [o * 0 for o in ones], ones,
                                        "hinge", multiscale=True).item() == 0
