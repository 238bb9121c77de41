"""hub_models.storage: int8 / fp16 / fp32 weight files, what they load as, and ship's choice."""

import pytest
import torch
from safetensors.torch import load_file

import hub_models
from hub_models import storage
from hub_models.archs.rafsr import RAFSR
from train import ship


def _model():
    torch.manual_seed(0)
    return RAFSR(**RAFSR.test_config).eval()


def test_int8_codes_weights_per_output_channel_within_half_a_step():
    weight = torch.randn(16, 8, 3, 3) * torch.logspace(-3, 0, 16)[:, None, None, None]  # channels of very different range
    bias = torch.randn(16)
    tensors = storage.encode({"w": weight, "b": bias, "n": torch.tensor(3)}, "int8")
    assert tensors["w"].dtype == torch.int8 and tensors["w" + storage.INT8_SCALE].shape == (16,)
    assert tensors["b"].dtype == torch.float16 and tensors["n"].dtype == torch.int64
    decoded = storage.decode(tensors)
    assert set(decoded) == {"w", "b", "n"}
    step = weight.abs().amax(dim=(1, 2, 3)) / 127
    assert ((decoded["w"] - weight).abs().amax(dim=(1, 2, 3)) <= step / 2 + 1e-9).all()  # each channel at its own scale
    assert storage.storage_of(tensors) == "int8"
    assert storage.storage_of(storage.encode({"w": weight}, "fp16")) == "fp16"
    assert torch.equal(storage.decode(storage.encode({"w": weight}, "fp32"))["w"], weight)


def test_unknown_storage_is_refused():
    with pytest.raises(ValueError, match="unknown weight storage 'int4'.*int8, fp16, fp32"):
        storage.encode({}, "int4")
    with pytest.raises(ValueError, match="unknown weight storage"):
        _model().weights_storage = "bf8"


def test_int8_folder_round_trip(tmp_path):
    torch.manual_seed(0)
    model = RAFSR().eval()  # the default config: the file size is the weights', not the header's
    model.weights_storage = "fp16"
    model.save_pretrained(tmp_path / "fp16")
    model.weights_storage = "int8"
    model.save_pretrained(tmp_path / "int8")
    raw = load_file(str(tmp_path / "int8" / "model.safetensors"))
    assert any(t.dtype == torch.int8 for t in raw.values())
    fp16_size = (tmp_path / "fp16" / "model.safetensors").stat().st_size
    int8_size = (tmp_path / "int8" / "model.safetensors").stat().st_size
    assert int8_size < 0.6 * fp16_size

    loaded = hub_models.load(tmp_path / "int8")
    assert loaded.weights_storage == "int8"  # kept while the weights are unchanged
    expected = storage.rounded(model, "int8").state_dict()
    for name, value in loaded.state_dict().items():
        assert value.dtype == expected[name].dtype and torch.equal(value, expected[name]), name
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert (loaded(x) - model(x)).abs().max() < 0.05

    loaded.save_pretrained(tmp_path / "again")  # re-saving does not drift
    again = load_file(str(tmp_path / "again" / "model.safetensors"))
    assert all(torch.equal(again[k], raw[k]) for k in raw)
    with torch.no_grad():
        next(loaded.parameters()).add_(1.0)
    assert loaded.weights_storage == "fp32"  # changed weights: nothing was measured for them


@pytest.mark.parametrize("int8_change, fp16_change, chosen", [
    ({"CelebA": -0.004, "utkface-val": 0.005}, None, "int8"),
    ({"CelebA": -0.004, "utkface-val": -0.08}, {"CelebA": 0.0, "utkface-val": 0.0}, "fp16"),  # harmful on one set
    ({"CelebA": -0.05, "utkface-val": 0.0}, {"CelebA": 0.03, "utkface-val": 0.0}, "fp32")])
def test_ship_stores_the_smallest_storage_harmless_on_every_set(monkeypatch, int8_change, fp16_change, chosen):
    changes = {"int8": int8_change, "fp16": fp16_change, "fp32": {"CelebA": 0.0, "utkface-val": 0.0}}
    monkeypatch.setattr(storage, "rounded", lambda model, name: name)
    monkeypatch.setattr(ship, "evaluate_model", lambda model, hr, scale, with_bicubic: {
        "model": {"psnr_y": 30.0 + (changes[model][hr[0]] if isinstance(model, str) else 0.0)}})
    sets = {"CelebA": ["CelebA"] * 5, "utkface-val": ["utkface-val"] * 3}
    picked = ship.choose_storage(_model(), sets, scale=4)
    assert picked["dtype"] == chosen and picked["forced"] is False
    assert picked["faces"] == {"CelebA": 5, "utkface-val": 3} and picked["tolerance_db"] == ship.STORAGE_TOLERANCE_DB
    assert list(picked["measured_db"]) == (["int8"] if chosen == "int8" else ["int8", "fp16"])
    assert picked["measured_db"]["int8"] == pytest.approx(int8_change)
    forced = ship.choose_storage(_model(), sets, scale=4, forced="int8")  # for size: measured and said anyway
    assert forced["dtype"] == "int8" and forced["forced"] and forced["measured_db"]["int8"] == pytest.approx(int8_change)


def test_the_card_line_names_every_measured_change():
    from hub_models.training_record import storage_line

    record = {"dtype": "fp16", "measured_db": {"int8": {"CelebA": -0.0047, "utkface-val": -0.0815},
                                               "fp16": {"CelebA": 0.0004, "utkface-val": 0.0}},
              "faces": {"CelebA": 200, "utkface-val": 200}, "scale": 8, "tolerance_db": 0.01, "forced": False}
    line = storage_line(record)
    assert line.startswith("fp16 weights (the smallest of int8 per output channel, fp16, fp32")
    assert ("less than 0.01 dB on each of 200 CelebA, 200 utkface-val faces at x8; measured: int8: CelebA -0.0047 dB, "
            "utkface-val -0.0815 dB; fp16: CelebA +0.0004 dB, utkface-val +0.0000 dB") in line
    forced = storage_line({**record, "dtype": "int8", "forced": True, "measured_db": {"int8": record["measured_db"]["int8"]}})
    assert forced.startswith("int8 weights, chosen for size") and "utkface-val -0.0815 dB" in forced


def test_the_demo_counts_the_parameters_of_an_int8_file_without_its_scales(tmp_path):
    from demo.catalogue import checkpoint_param_count

    model = _model()
    for name in ("fp16", "int8"):
        model.weights_storage = name
        model.save_pretrained(tmp_path / name)
    assert checkpoint_param_count(tmp_path / "int8") == checkpoint_param_count(tmp_path / "fp16") > 0
