"""Behaviour every registered architecture must have, run on its tiny test config."""

import json

import pytest
import torch
from huggingface_hub import ModelCard

import hub_models
from hub_models import MODELS, CheckpointMismatchError

ARCHS = sorted(MODELS)
CASES = [(name, s) for name in ARCHS for s in MODELS[name](**MODELS[name].test_config).supported_scales]


def tiny(name: str, **overrides):
    torch.manual_seed(0)
    return MODELS[name](**{**MODELS[name].test_config, **overrides})


@pytest.mark.parametrize("name,scale", CASES)
@pytest.mark.parametrize("size", [(8, 8), (7, 11)])
def test_upscale_shape_and_range(name, scale, size):
    model = tiny(name).eval()
    lr = torch.rand(2, 3, *size)
    sr = model.upscale(lr, scale=scale)
    assert sr.shape == (2, 3, size[0] * scale, size[1] * scale)
    assert sr.dtype == torch.float32 and sr.min() >= 0 and sr.max() <= 1
    assert torch.isfinite(sr).all()


OTHER_SCALES = [(name, config) for name in ARCHS
                for config in MODELS[name].capabilities.other_scale_configs(tiny(name).supported_scales)]


@pytest.mark.parametrize("name,config", OTHER_SCALES, ids=[f"{n}-{c}" for n, c in OTHER_SCALES])
def test_other_scale_configs_in_the_model_table_build_and_upscale(name, config):
    """Every 'other scales' entry of the README's model table is a config that works."""
    model = tiny(name, **config).eval()
    wanted = config.get("scales") or [config["scale"]]
    assert model.supported_scales == wanted
    for scale in wanted:
        assert model.upscale(torch.rand(1, 3, 8, 8), scale=scale).shape == (1, 3, 8 * scale, 8 * scale)


def test_every_architecture_lists_another_scale():
    assert {name for name, _ in OTHER_SCALES} == set(ARCHS)


@pytest.mark.parametrize("name", ARCHS)
def test_capabilities_are_declared_and_tell_the_truth(name):
    """Each class declares its Capabilities once; they agree with what the network is."""
    import inspect

    cls = MODELS[name]
    caps = hub_models.capabilities(name)
    assert isinstance(cls.__dict__["capabilities"], hub_models.Capabilities)
    model = tiny(name)
    assert hub_models.capabilities(cls) is caps and hub_models.capabilities(model) is caps
    assert caps.display_name and (cls.pre_upsampled, model.input_multiple) == (caps.pre_upsampled, caps.input_multiple)
    assert caps.scale_key in inspect.signature(cls).parameters
    configured = [model.supported_scales] + [tiny(name, **c).supported_scales
                                             for c in caps.other_scale_configs(model.supported_scales)]
    assert set(sum(configured, [])) == set(caps.scales)  # the default and the other configs cover every scale
    assert tiny(name, **caps.scale_kwargs(caps.scales[:1] if caps.scale_key == "scale" else caps.scales)).supported_scales \
        == list(caps.scales[:1] if caps.scale_key == "scale" else caps.scales)
    assert caps.multiscale_outputs == hasattr(cls, "forward_multiscale")
    assert caps.batchnorm == any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert caps.gan == (cls.discriminator_cls is not None)


def test_capabilities_of_an_unknown_thing_are_refused():
    with pytest.raises(KeyError, match="unknown architecture"):
        hub_models.capabilities("no-such-net")
    with pytest.raises(TypeError, match="Capabilities"):
        hub_models.capabilities(torch.nn.Conv2d(3, 3, 1))


@pytest.mark.parametrize("name", ARCHS)
def test_wrong_scale_and_bad_input_are_refused(name):
    model = tiny(name).eval()
    with pytest.raises(ValueError, match="supports scale"):
        model.upscale(torch.rand(1, 3, 8, 8), scale=5)
    with pytest.raises(ValueError, match="RGB"):
        model.upscale(torch.rand(1, 4, 8, 8))
    with pytest.raises(TypeError, match="float"):
        model.upscale(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="NaN"):
        model.upscale(torch.full((1, 3, 8, 8), float("nan")))


@pytest.mark.parametrize("name", ARCHS)
def test_config_is_json_plain_and_names_architecture(name, tmp_path):
    model = tiny(name)
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architecture"] == name
    assert "scale" in config or "scales" in config
    # every __init__ kwarg survives: huggingface_hub silently drops non-JSON values
    init_params = set(type(model)._hub_mixin_init_parameters) - {"self"}
    assert init_params <= set(config), f"kwargs missing from config.json: {init_params - set(config)}"


@pytest.mark.parametrize("name", ARCHS)
def test_save_load_round_trip_is_bit_identical(name, tmp_path):
    model = tiny(name).eval()
    lr = torch.rand(1, 3, 8, 8)
    expected = model.upscale(lr)
    model.save_pretrained(tmp_path / "m")
    for loaded in (hub_models.load(tmp_path / "m"), type(model).from_pretrained(tmp_path / "m")):
        assert type(loaded) is type(model) and not loaded.training
        assert torch.equal(loaded.upscale(lr), expected)


@pytest.mark.parametrize("name", [n for n in ARCHS if n != "bicubic"])
def test_mismatched_checkpoint_fails_loudly(name, tmp_path):
    model = tiny(name)
    model.save_pretrained(tmp_path)
    from safetensors.torch import load_file, save_file

    state = load_file(tmp_path / "model.safetensors")
    first = sorted(state)[0]
    state["not_a_layer.weight"] = state.pop(first)
    save_file(state, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointMismatchError, match="missing keys: .*" + first.replace(".", r"\.")):
        hub_models.load(tmp_path)


def test_folder_of_another_architecture_is_refused(tmp_path):
    tiny("vdsr").save_pretrained(tmp_path)
    with pytest.raises(CheckpointMismatchError, match="holds a 'vdsr' model"):
        hub_models.SRCNN.from_pretrained(tmp_path)


@pytest.mark.parametrize("bad", ["no-such-model", "checkpoints/does-not-exist"])
def test_unknown_name_lists_what_exists(bad):
    with pytest.raises(FileNotFoundError, match="bicubic-xN"):
        hub_models.load(bad)


def test_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        hub_models.load(tmp_path)


@pytest.mark.parametrize("name", ARCHS)
def test_card_is_a_model_card_with_metadata(name, tmp_path):
    model = tiny(name)
    rows = [{"dataset": "CelebA-1000", "scale": model.default_scale, "protocol": "dic", "command": "python -m x",
             "model": {"psnr_y": 27.5, "ssim_y": 0.8, "lpips": 0.2, "psnr_rgb": 26.0},
             "bicubic": {"psnr_y": 24.0, "ssim_y": 0.7, "lpips": 0.4, "psnr_rgb": 23.0}}]
    model.save_pretrained(tmp_path, model_card_kwargs={"eval_results": rows, "training": {"datasets": ["utkface"], "steps": 10}})
    card = ModelCard.load(tmp_path / "README.md")
    data = card.data.to_dict()
    assert data["pipeline_tag"] == "image-to-image"
    assert data["license"] == "other" and data["license_link"] == "LICENSE.md"  # the weights carry UTKFace's terms
    assert "non-commercial" in data["license_name"] and (tmp_path / "LICENSE.md").is_file()
    assert name in data["tags"]
    assert data["model-index"][0]["results"][0]["metrics"][0]["value"] == 27.5
    assert "27.50" in card.text and "24.00" in card.text and "python -m x" in card.text
    assert model.paper.get("title", "") in card.text


def _biases_cancelled_by_batchnorm(model) -> set[str]:
    """Biases of convs fed straight into a train-mode BatchNorm: BN subtracts the batch mean,
    so their gradient is exactly zero in theory (GAM's reference code keeps these biases; in
    floating point the gradient is zero or rounding noise, depending on the CPU)."""
    names = set()
    for prefix, module in model.named_modules():
        if isinstance(module, torch.nn.Sequential):
            layers = list(module.named_children())
            for (i, layer), (_, after) in zip(layers, layers[1:]):
                if isinstance(layer, torch.nn.Conv2d) and layer.bias is not None and isinstance(after, torch.nn.BatchNorm2d):
                    names.add(f"{prefix}.{i}.bias" if prefix else f"{i}.bias")
    return names


def test_batchnorm_exemption_finds_the_gam_biases():
    names = _biases_cancelled_by_batchnorm(tiny("agrnet"))
    assert names and all("spatial" in n or "channel" in n for n in names), names


@pytest.mark.parametrize("name", [n for n in ARCHS if n != "bicubic"])
def test_one_step_lowers_loss_and_gradients_reach_every_parameter(name):
    model = tiny(name).train()
    scale = model.default_scale
    torch.manual_seed(1)
    hr = torch.rand(2, 3, 8 * scale, 8 * scale)
    lr = torch.nn.functional.avg_pool2d(hr, scale)
    x = model.prepare_input(lr, scale)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss_fn():
        return torch.nn.functional.l1_loss(model.network_forward(x, scale), hr)

    losses = []
    for _ in range(3):  # the 2nd step also reaches parameters behind zero-initialised gates (SAGAN gamma)
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        losses.append(loss.item())
        opt.step()
    exempt = _biases_cancelled_by_batchnorm(model)
    without_grad = [n for n, p in model.named_parameters()
                    if n not in exempt and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not without_grad, f"no gradient reached: {without_grad}"
    with torch.no_grad():
        assert loss_fn().item() < losses[0]


def test_one_input_check_for_models_metrics_and_degradations():
    """Models, metrics and degradations reject the same bad tensors with the same error type,
    which is both a ValueError and a TypeError (callers may catch either)."""
    from hub_models import ImageInputError, degradations, metrics

    model = tiny("rafsr")
    bad = {"uint8": torch.zeros(1, 3, 8, 8, dtype=torch.uint8), "nan": torch.full((1, 3, 8, 8), float("nan")),
           "greyscale": torch.zeros(1, 1, 8, 8), "5-d": torch.zeros(1, 1, 3, 8, 8), "list": [[0.0]]}
    for label, x in bad.items():
        for call in (lambda t: model.upscale(t), lambda t: metrics.psnr(t, t),
                     lambda t: degradations.bicubic_degrade(t, 2)):
            with pytest.raises(ImageInputError):
                call(x)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.psnr(torch.full((1, 3, 8, 8), 2.0), torch.zeros(1, 3, 8, 8))


def test_readme_usage_example_runs():
    """The README's 'Using a model' snippet, executed as written (shipped checkpoint, offline)."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Using a model", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert tuple(scope["sr"].shape) == (1, 3, 128, 128)
    assert scope["sr"].min() >= 0 and scope["sr"].max() <= 1


@pytest.mark.parametrize("name", sorted(set(hub_models.MODELS) - {"bicubic"}))
def test_default_init_passes_gradient_to_the_first_layer(name):
    """No architecture starts dead: one backward pass of the default config gives the first
    conv at least 1e-3 of the last conv's gradient norm. (VDSR under PyTorch's default init
    had 1.4e-7 and learned nothing; the others, checked against their papers, which give no
    init, train from PyTorch's default: MFFCN has the smallest ratio, about 0.04.)"""
    torch.manual_seed(0)
    model = hub_models.create(name).train()
    size = 32 if model.pre_upsampled else 8
    size = -(-size // model.input_multiple) * model.input_multiple
    out = model(torch.rand(2, 3, size, size))
    out = out[-1] if isinstance(out, (list, tuple)) else out
    (out - torch.rand_like(out)).pow(2).mean().backward()
    convs = [p for p in model.parameters() if p.dim() == 4 and p.grad is not None]
    assert convs[0].grad.norm() > 1e-3 * convs[-1].grad.norm()


def test_card_of_a_pre_training_stage_says_it_is_not_the_gan():
    """A GAN generator shipped from its L1 stage (train.py drops the discriminator) must not read
    as the GAN-trained model: the card's summary says which it is."""
    model = tiny("crlnet")
    stage = {"recipe sources": {"gan": "dropped: no adversarial term left (pre-training stage)"}}
    assert "pre-training stage without the adversarial" in str(model.generate_model_card(training=stage))
    gan = {"recipe sources": {"gan": "paper: SRGAN discriminator"}}
    assert "pre-training stage without the adversarial" not in str(model.generate_model_card(training=gan))
