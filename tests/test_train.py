"""Training runs: DDP on two CPU processes, bit-identical resume, signals, overfitting every
family, the two optimisers under a GradScaler, the NaN stop, corrupt images and the exported
folder, the loop's pieces (degradation, states, schedule, GAN terms) and the device script.

Tiny configs (`--tiny`: each class's test_config) on a synthetic image folder made in
tmp_path (`image_dir`, tests/conftest.py); in-process runs use a shallow stand-in for the VGG
features (random conv1_2, the loop does not care what the features mean) so the file stays
fast; the real VGG16 weights have tests of their own (tests/test_train_tools.py). The record,
the command line's overrides and shipping: tests/test_train_record.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import hub_models
import train.train as train_script
from train import gan, perceptual
from hub_models.degradations import bicubic_lr_8bit as _bicubic_lr_8bit
from train.degrade import degrade
from train.losses import Criterion
from train.recipes import RECIPES, get_recipe
from train.state import find_state
from train.trainer import Trainer
from tests.train_helpers import raw_record
from train_helpers import card_record, raw_record, smooth_face_like

pytestmark = pytest.mark.usefixtures("one_thread", "fresh_accelerator_state")  # tests/conftest.py


#: configs for classes without a tiny test_config
TINY = {"vdsr": {"num_layers": 4, "channels": 8}}


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
    record = card_record(out / "last")
    assert record["hardware"].startswith("2 x CPU") and record["steps"] == 3
    assert record["batch"].startswith("2 x 2 process(es)")
    assert raw_record(out / "last")["batch"] == {"per_process": 2, "processes": 2, "grad_accum": 1, "hr_size": 32}
    assert len((out / "train_log.jsonl").read_text().splitlines()) == 1  # only the main process logs (step 3)


# -- resume ------------------------------------------------------------------------------------
def test_stop_and_resume_is_bit_identical(image_dir, tmp_path, shallow_vgg, monkeypatch, capsys):
    """A GAN run (two optimisers, BatchNorm, EMA, perceptual term) stopped by SIGTERM after 2
    steps and resumed to 5 ends with exactly the weights of an uninterrupted 5-step run."""
    extra = ["--ema", "0.9", "--save-every", "100"]
    full, cut = tmp_path / "full", tmp_path / "cut"
    assert train_script.main(_args("crlnet", image_dir, full, 5, *extra)) == 0

    original = Trainer.losses
    calls = {"n": 0}

    def sigterm_during_second_step(self, hr, degrade_seed):
        calls["n"] += 1
        if calls["n"] == 2:  # the handler sets a flag; the loop stops after this step with the state saved
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, hr, degrade_seed)

    monkeypatch.setattr(Trainer, "losses", sigterm_during_second_step)
    assert train_script.main(_args("crlnet", image_dir, cut, 5, *extra)) == 128 + signal.SIGTERM  # not "finished"
    monkeypatch.setattr(Trainer, "losses", original)
    out = capsys.readouterr().out
    assert "stopped by SIGTERM at step 2" in out
    assert json.loads((cut / "state" / "train_state.json").read_text())["step"] == 2
    assert (cut / "state" / "ema.safetensors").is_file() and not (cut / "state.tmp").exists()
    assert card_record(cut / "last")["status"].startswith("interrupted by SIGTERM at step 2 of 5")
    assert raw_record(cut / "last")["status"] == {"ended": "signal", "signal": "SIGTERM", "step": 2, "steps": 5}

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
    trainer = Trainer(recipe, Accelerator(cpu=True, mixed_precision="no"))
    rng = np.random.default_rng(1)
    hr = torch.stack([torch.from_numpy(smooth_face_like(rng, 32)).permute(2, 0, 1) for _ in range(2)]).float() / 255

    def l1() -> float:
        lr_in, _ = degrade(hr, recipe.scales, "bicubic", 0, trainer.net.pre_upsampled)
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
        trainer = Trainer(recipe, acc)
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
    real_call = Criterion.__call__
    calls = {"n": 0}

    def poisoned(self, sr, hr, gan_terms=None):
        total, parts = real_call(self, sr, hr, gan_terms)
        calls["n"] += 1
        return (total * float("nan"), parts) if calls["n"] > 3 else (total, parts)

    monkeypatch.setattr(Criterion, "__call__", poisoned)
    code = train_script.main(_args("srcnn", image_dir, out, 10, "--save-every", "2"))
    assert code == train_script.EXIT_NONFINITE
    text = capsys.readouterr().out
    assert "non-finite loss at step 3" in text and "The last good state is in" in text and "(step 2)" in text
    state = json.loads((out / "state" / "train_state.json").read_text())
    assert state["step"] == 2
    weights = _weights(out / "state")
    assert all(torch.isfinite(v).all() for v in weights.values())
    assert not (out / "last").exists()  # nothing exported from a failed run
    monkeypatch.setattr(Criterion, "__call__", real_call)
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
    record = card_record(out / "last")
    assert "1 unreadable image(s) skipped" in record["data"] and raw_record(out / "last")["data sources"][0]["unreadable"] == 1
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
    record2 = card_record(out2 / "last")
    assert "load(s) of unreadable images replaced" in record2["data"]


# -- pieces ------------------------------------------------------------------------------------
def test_degrade_real_world_and_multiscale():
    hr = torch.rand(3, 3, 32, 32)
    lr, scale = degrade(hr, [4], "real_world", seed=5, pre_upsampled=True)
    assert lr.shape == hr.shape and scale == 4 and 0 <= lr.min() and lr.max() <= 1
    again, _ = degrade(hr, [4], "real_world", seed=5, pre_upsampled=True)
    assert torch.equal(lr, again)
    small, _ = degrade(hr, [4], "real_world", seed=5, pre_upsampled=False)
    assert small.shape == (3, 3, 8, 8)
    mixed, scale = degrade(hr, [2, 3, 4], "bicubic", seed=1, pre_upsampled=True)
    assert mixed.shape == hr.shape


def test_clean_fraction_gives_some_real_world_samples_the_plain_bicubic_lr():
    """--clean-fraction: 0 is the paper's real-world-only LR, 1 the bicubic LR for every sample,
    in between a per-sample draw fixed by the seed."""
    from hub_models.degradations import imresize

    hr = torch.rand(16, 3, 32, 32)
    bicubic = imresize(_bicubic_lr_8bit(hr, 4), size=(32, 32)).clamp(0, 1)
    paper, _ = degrade(hr, [4], "real_world", seed=3, pre_upsampled=True)
    assert torch.equal(degrade(hr, [4], "real_world", seed=3, pre_upsampled=True, clean_fraction=0.0)[0], paper)
    assert torch.allclose(degrade(hr, [4], "real_world", seed=3, pre_upsampled=True, clean_fraction=1.0)[0], bicubic)
    half, _ = degrade(hr, [4], "real_world", seed=3, pre_upsampled=True, clean_fraction=0.5)
    clean = [torch.allclose(half[i], bicubic[i]) for i in range(16)]
    assert 0 < sum(clean) < 16
    assert all(torch.equal(half[i], paper[i]) for i in range(16) if not clean[i])
    small, _ = degrade(hr, [4], "real_world", seed=3, pre_upsampled=False, clean_fraction=1.0)
    assert torch.equal(small, _bicubic_lr_8bit(hr, 4))


def test_clean_fraction_is_an_override_the_card_says(image_dir, tmp_path):
    from tests.train_helpers import card_record

    out = tmp_path / "rw"
    pre = '{"adversarial": 0, "feature_matching": 0, "perceptual": 0, "l1": 1}'
    assert train_script.main(_args("agrnet_hr", image_dir, out, 1, "--loss-weights", pre, "--clean-fraction", "0.3")) == 0
    said = card_record(out / "last")["recipe sources"]["degradation"]
    assert said.startswith("ours, on the command line: 30% of the samples get the plain bicubic LR")
    with pytest.raises(SystemExit, match="real-world recipes"):
        train_script.main(_args("srcnn", image_dir, tmp_path / "s", 1, "--clean-fraction", "0.3"))
    with pytest.raises(SystemExit, match="0 <= F <= 1"):
        train_script.main(_args("agrnet_hr", image_dir, tmp_path / "h", 1, "--clean-fraction", "1.5"))


def test_find_state_survives_a_kill_during_the_swap(tmp_path):
    """train_state.json is written last; a kill between the renames leaves a usable state."""
    assert find_state(tmp_path) is None
    (tmp_path / "state.tmp").mkdir()
    assert find_state(tmp_path) is None  # incomplete: no train_state.json yet
    (tmp_path / "state.tmp" / "train_state.json").write_text("{}")
    assert find_state(tmp_path) == tmp_path / "state.tmp"
    (tmp_path / "state.old").mkdir()
    (tmp_path / "state.old" / "train_state.json").write_text("{}")
    assert find_state(tmp_path) == tmp_path / "state.tmp"  # the newer one
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "train_state.json").write_text("{}")
    assert find_state(tmp_path) == tmp_path / "state"


def test_lr_schedule_is_a_function_of_the_step():
    recipe = get_recipe("rdan")

    class Fake:
        lr_at = Trainer.lr_at

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
    assert [s["folder"] for s in raw_record(unpacked / "runs" / "dev-srcnn-x4" / "best")["data sources"]] == ["data"]


def test_device_script_trains_on_the_mix_when_celeba_wild_is_carried(image_dir, tmp_path):
    """With $WILD carried the jobs train on it + UTKFace 1:1 (the data_mix winner) and validate on
    it; AGRNet-HR's L1 stage gets its light widths and no discriminator."""
    import shutil
    import subprocess

    folders = {}
    for name in ("utk", "wild"):
        folders[name] = tmp_path / name
        shutil.copytree(image_dir, folders[name])
        names = sorted(p.name for p in folders[name].glob("*.png"))
        (folders[name] / "train.txt").write_text("\n".join(names[:4]) + "\n")
        (folders[name] / "val.txt").write_text("\n".join(names[4:]) + "\n")
    runs = tmp_path / "runs"
    env = {**os.environ, "TINY": "1", "JOBS": "agrnet-hr-128-pre", "DATA": str(folders["utk"]),
           "WILD": str(folders["wild"]), "RUNS": str(runs), "OUT": str(tmp_path / "out"), "OMP_NUM_THREADS": "1",
           "PYTHON": sys.executable}
    script = Path(__file__).resolve().parent.parent / "train" / "device_train.sh"
    done = subprocess.run(["bash", str(script), "1"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    record = raw_record(runs / "dev-agrnet-hr-128-pre" / "best")
    assert [(s["folder"], s["weight"]) for s in record["data sources"]] == [("wild", 0.5), ("utk", 0.5)]
    assert record["validation"]["data"] == "wild" and "gan" in record["overrides"]
    config = json.loads((runs / "dev-agrnet-hr-128-pre" / "best" / "config.json").read_text())
    assert config["widths"] == [32, 32, 64, 64]



def test_a_real_world_run_records_and_states_its_degradation(image_dir, tmp_path):
    """AGRNet-HR's card says which degradations it was trained on: the ranges of eq. 28 at the
    run's HR size, as data in training.json and as one sentence in the card."""
    from hub_models.degradations import real_world_ranges
    from tests.train_helpers import card_record

    out = tmp_path / "rw"
    pre = '{"adversarial": 0, "feature_matching": 0, "perceptual": 0, "l1": 1}'
    assert train_script.main(_args("agrnet_hr", image_dir, out, 2, "--loss-weights", pre)) == 0
    assert raw_record(out / "last")["degradation ranges"] == real_world_ranges(32)
    said = card_record(out / "last")["degradation"]
    assert said.startswith("real-world (AGRNet eq. 28)") and "(x4 to x16)" in said and "JPEG quality 60-85" in said
    assert train_script.main(_args("srcnn", image_dir, tmp_path / "bicubic", 1)) == 0
    assert "degradation ranges" not in raw_record(tmp_path / "bicubic" / "last")  # bicubic runs: the recipe says it
