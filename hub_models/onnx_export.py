"""ONNX export of a model's network and an onnxruntime backend that upscales like `upscale()`.

    python -m hub_models export rafsr-x4 --format onnx --out rafsr-x4.onnx

The graph is the network at one scale, `network_forward(x, scale)`, on the network's own
input (the LR, or for `pre_upsampled` models its bicubic upsampling), float32 NCHW, with
dynamic batch, height and width; exported by PyTorch's torch.export-based exporter
(`torch.onnx.export(..., dynamo=True)`) at opset `OPSET`. The model's metadata (architecture,
scale, pre_upsampled, input_multiple, opset) are stored in the file's metadata_props.
`OnnxUpscaler` adds what `upscale()` does around the network (bicubic pre-upsampling,
padding to `input_multiple`, crop, clamp), so its output matches `upscale()` in fp32.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import torch
from torch import nn

from .images import check_image_batch, pad_to_multiple

#: the ONNX opset of exported files
OPSET = 18
INPUT_NAME, OUTPUT_NAME = "x", "y"


class _Network(nn.Module):
    """`model.network_forward(x, scale)` as a module's forward (what the exporter traces)."""

    def __init__(self, model, scale: int):
        super().__init__()
        self.model, self.scale = model, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.network_forward(x, self.scale)


def export_onnx(model, path: Path | str, scale: int | None = None, opset: int = OPSET, quiet: bool = True) -> Path:
    """Write `model`'s network at `scale` (default: its default scale) to `path` as ONNX."""
    import onnx

    scale = model._resolve_scale(scale)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    caps = model.capabilities
    m = caps.input_multiple
    side = 4 * m * (scale if caps.pre_upsampled else 1)  # example input: any valid size works
    example = torch.rand(1, 3, side, side)
    was_training = model.training
    model.eval()
    dims = {0: torch.export.Dim("batch", min=1), 2: torch.export.Dim("height", min=1),
            3: torch.export.Dim("width", min=1)}
    sink = io.StringIO()
    with torch.no_grad(), contextlib.redirect_stdout(sink) if quiet else contextlib.nullcontext():
        program = torch.onnx.export(_Network(model, scale).cpu().eval(), (example,), input_names=[INPUT_NAME],
                                    output_names=[OUTPUT_NAME], opset_version=opset, dynamo=True,
                                    dynamic_shapes={"x": dims})
    model.train(was_training)
    proto = program.model_proto
    meta = {"architecture": model.architecture, "scale": scale, "pre_upsampled": int(caps.pre_upsampled),
            "input_multiple": m, "opset": opset, "exporter": f"torch.onnx.export(dynamo=True), torch {torch.__version__}",
            "input": "network input: float32 NCHW in [0,1], the LR (or its bicubic upsampling when pre_upsampled)"
                     f", height and width multiples of {m}"}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return path


class OnnxUpscaler:
    """An exported model run by onnxruntime (or OpenVINO: ``engine="openvino"``), called like
    `SRModel.upscale` (fp32): same pre-processing in PyTorch, the network in the engine."""

    def __init__(self, model, path: Path | str, scale: int | None = None, engine: str = "onnxruntime",
                 threads: int | None = None):
        self.model, self.scale, self.path, self.engine = model, model._resolve_scale(scale), Path(path), engine
        threads = threads or torch.get_num_threads()
        if engine == "onnxruntime":
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            # no busy-waiting between runs: it would take the cores from whatever runs next
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
            self._run = lambda x: self._session.run(None, {INPUT_NAME: x})[0]
        elif engine == "openvino":
            import openvino as ov

            core = ov.Core()
            compiled = core.compile_model(core.read_model(str(self.path)), "CPU",
                                          {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"})
            self._request = compiled.create_infer_request()
            self._run = lambda x: self._request.infer({0: x})[0]
        else:
            raise ValueError(f"unknown engine {engine!r} (onnxruntime or openvino)")

    def upscale(self, lr: torch.Tensor) -> torch.Tensor:
        lr = check_image_batch(lr)
        scale = self.scale
        h, w = lr.shape[-2:]
        x = pad_to_multiple(self.model.prepare_input(lr.cpu().float(), scale), self.model.capabilities.input_multiple)
        y = torch.from_numpy(self._run(x.contiguous().numpy()))
        return y[..., : h * scale, : w * scale].clamp(0, 1).contiguous()


def _weights_version(model) -> tuple:
    """Changes whenever a parameter or buffer is replaced or updated in place."""
    return tuple((id(t), t._version) for t in [*model.parameters(), *model.buffers()])


def engine_upscale(model, lr: torch.Tensor, scale: int, engine: str) -> torch.Tensor:
    """`model`'s whole-image upscale through `engine` (fp32): the network is exported on the
    first call per scale (seconds; again after the weights change) to a temporary file and
    the session kept on the instance (not in its state dict)."""
    import tempfile

    key = (engine, scale)
    entry = model.__dict__.get("_engine_upscalers", {}).get(key)
    if entry is None or entry[0] != _weights_version(model):
        with tempfile.TemporaryDirectory() as tmp:
            path = export_onnx(model, Path(tmp) / "model.onnx", scale=scale)
            upscaler = OnnxUpscaler(model, path, scale=scale, engine=engine)  # the engines read the file now
        entry = (_weights_version(model), upscaler)
        # stored after the export (torch.export puts back the module's attribute dict as it found it)
        model.__dict__.setdefault("_engine_upscalers", {})[key] = entry
    return entry[1].upscale(lr)
