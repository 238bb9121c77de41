"""ONNX export (`python -m hub_models export NAME --format onnx`): onnxruntime's output
matches PyTorch's fp32 `upscale()` on every architecture (tiny test configs)."""

import pytest
import torch

import hub_models
from hub_models import MODELS
from hub_models.__main__ import main as hub_main

onnx = pytest.importorskip("onnx", reason="ONNX export needs `pip install onnx onnxruntime onnxscript`")
ort = pytest.importorskip("onnxruntime", reason="the check needs onnxruntime")
from hub_models.onnx_export import OPSET, OnnxUpscaler, export_onnx  # noqa: E402


@pytest.mark.parametrize("name", sorted(MODELS))
def test_onnxruntime_matches_pytorch(name, tmp_path):
    torch.manual_seed(0)
    model = MODELS[name](**MODELS[name].test_config).eval()
    for p in model.parameters():  # untrained zero-init branches (attention gammas) would hide them
        if p.numel() == 1 and not p.any():
            p.data.fill_(0.5)
    path = export_onnx(model, tmp_path / f"{name}.onnx")
    proto = onnx.load(str(path))
    assert proto.opset_import[0].version == OPSET
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["architecture"] == name and int(meta["scale"]) == model.default_scale
    model.inference_mode = "fp32"
    backend = OnnxUpscaler(model, path)
    for lr in (torch.rand(2, 3, 7, 11), torch.rand(1, 3, 13, 9)):  # sizes unlike the export's example
        ref = model.upscale(lr)
        out = backend.upscale(lr)
        assert out.shape == ref.shape and out.dtype == torch.float32
        assert (out - ref).abs().max().item() < 1e-4


def test_export_command_writes_a_dynamic_graph(tmp_path, monkeypatch):
    tiny = MODELS["rafsr"](**MODELS["rafsr"].test_config)
    tiny.save_pretrained(tmp_path / "rafsr-tiny")
    out = tmp_path / "r.onnx"
    assert hub_main(["export", str(tmp_path / "rafsr-tiny"), "--format", "onnx", "--out", str(out)]) == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    shape = session.get_inputs()[0].shape
    assert shape[1] == 3 and not any(isinstance(d, int) for d in (shape[0], shape[2], shape[3]))
    y = session.run(None, {"x": torch.rand(1, 3, 5, 6).numpy()})[0]
    assert y.shape == (1, 3, 5 * tiny.default_scale, 6 * tiny.default_scale)
    loaded = hub_models.load(tmp_path / "rafsr-tiny").eval()
    with torch.no_grad():
        x = torch.rand(1, 3, 5, 6)
        assert abs(session.run(None, {"x": x.numpy()})[0] - loaded.network_forward(x, tiny.default_scale).numpy()).max() < 1e-4


def test_upscale_uses_a_winning_engine_only_on_its_cpu_class(tmp_path, monkeypatch):
    import json

    from hub_models.base import INFERENCE_BACKEND_ENV, mode_key

    torch.manual_seed(0)
    model = MODELS["srcnn"](**MODELS["srcnn"].test_config).eval()
    modes_file = tmp_path / "modes.json"
    monkeypatch.setattr(hub_models.base, "INFERENCE_MODES_FILE", modes_file)
    monkeypatch.delenv(INFERENCE_BACKEND_ENV, raising=False)
    modes_file.write_text(json.dumps({"modes": {}, "backends": {"srcnn": {"cpu:no_such_class:1c": "onnxruntime"}}}))
    assert model.resolved_inference_backend("cpu") == "torch"  # measured elsewhere: not used here
    modes_file.write_text(json.dumps({"modes": {"srcnn": {mode_key("cpu"): "fp32"}},
                                      "backends": {"srcnn": {mode_key("cpu"): "onnxruntime"}}}))
    assert model.resolved_inference_backend("cpu") == "onnxruntime"
    assert model.resolved_inference_backend("cuda") == "torch"
    lr = torch.rand(1, 3, 6, 7)
    out = model.upscale(lr)
    assert ("onnxruntime", model.default_scale) in model.__dict__["_engine_upscalers"]  # it did run there
    model.inference_backend = "torch"
    assert (out - model.upscale(lr)).abs().max().item() < 1e-4
    with torch.no_grad():
        next(model.parameters()).mul_(2)
    model.inference_backend = None
    changed = model.upscale(lr)  # weights changed: exported again
    model.inference_backend = "torch"
    assert (changed - model.upscale(lr)).abs().max().item() < 1e-4
    monkeypatch.setenv(INFERENCE_BACKEND_ENV, "torch")
    model.inference_backend = None
    assert model.resolved_inference_backend("cpu") == "torch"
    model.inference_backend = "tensorrt"
    with pytest.raises(ValueError, match="unknown inference backend"):
        model.upscale(lr)
