"""The base class every architecture derives from: a PyTorch module that is also a Hub repo.

`SRModel` adds to `huggingface_hub.PyTorchModelHubMixin`:
- one calling convention, `upscale(lr, scale=None)`, that takes the real low-resolution
  image whatever the network's own input is (LR or bicubic pre-upsampled), pads inputs the
  network cannot take and crops the result back;
- `architecture` (the registry name) and the scale(s) written into `config.json`;
- strict loading with clear errors, and a card that survives load -> save (see `hub.py`);
- a real model card (see `card.py`) with metrics only from evaluation results handed in.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from .card import MODEL_CARD_TEMPLATE, build_card, card_context, weights_terms
from .hub import CheckpointMismatchError, StrictHubMixin, load_state_strict  # noqa: F401 (re-exported)
from .images import RANGE_HINT, as_image_batch, pad_to_multiple
from .paper import Decision, Paper, with_decisions
from .registry import Capabilities

REPO_URL = "https://github.com/facesr-hub/facesr-hub"


# -- inference modes ---------------------------------------------------------------------
#: the tokens a mode is made of, joined by "+" in this order: e.g. "channels_last",
#: "bf16+channels_last", "compile+channels_last"; "fp32" alone is plain float32 NCHW eager
INFERENCE_MODE_TOKENS = ("fp32", "compile", "bf16", "fp16", "channels_last")
#: per architecture and CPU class (or GPU device type), the fastest mode the benchmark measured
#: harmless (< 0.05 dB Y-PSNR against fp32); written by `python -m bench --write-modes`
INFERENCE_MODES_FILE = Path(__file__).resolve().parent / "inference_modes.json"
#: environment variable overriding the mode of every model ("fp32", "channels_last", ...)
INFERENCE_MODE_ENV = "FACESR_INFERENCE_MODE"
_MODES_CACHE: dict[str, Any] = {}


def normalize_inference_mode(mode: str | None) -> str:
    """Canonical spelling of a mode: tokens of `INFERENCE_MODE_TOKENS` joined by "+" in that
    order, "fp32" alone meaning plain float32 NCHW eager. Raises ValueError on unknown tokens."""
    if mode is None:
        return "fp32"
    tokens = {t.strip().lower().replace("-", "_") for t in str(mode).split("+") if t.strip()}
    unknown = tokens - set(INFERENCE_MODE_TOKENS)
    if unknown:
        raise ValueError(f"unknown inference mode token(s) {sorted(unknown)} in {mode!r}; "
                         f"a mode is '+'-joined tokens from {INFERENCE_MODE_TOKENS}")
    if {"bf16", "fp16"} <= tokens or ("fp32" in tokens and tokens & {"bf16", "fp16"}):
        raise ValueError(f"inference mode {mode!r} names more than one dtype")
    tokens.discard("fp32")
    return "+".join(t for t in INFERENCE_MODE_TOKENS if t in tokens) or "fp32"


def read_inference_modes(path: Path | str | None = None) -> dict[str, dict[str, str]]:
    """{architecture: {device_type: mode}} from the modes file ({} when it is absent)."""
    path = Path(path or INFERENCE_MODES_FILE)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return {}
    cached = _MODES_CACHE.get(str(path))
    if cached and cached[0] == stamp:
        return cached[1]
    try:
        modes = json.loads(path.read_text()).get("modes", {})
    except (OSError, ValueError, AttributeError):
        modes = {}
    modes = {arch: dict(per_device) for arch, per_device in modes.items() if isinstance(per_device, dict)}
    _MODES_CACHE[str(path)] = (stamp, modes)
    return modes


#: the CPU mode where nothing was measured for this CPU class: fp32, channels_last layout
#: (no numeric change; faster than NCHW on every CPU measured so far)
CPU_FALLBACK_MODE = "channels_last"


def mode_key(device_type: str) -> str:
    """The modes file's key for this machine: its CPU class on CPUs (`hub_models.machine.cpu_class`,
    e.g. "cpu:amx_bf16:2c"), else the device type ("cuda", "mps")."""
    if device_type == "cpu":
        from .machine import cpu_class

        return cpu_class()
    return device_type


#: environment variable choosing the engine of every model: "torch", "onnxruntime", "openvino"
INFERENCE_BACKEND_ENV = "FACESR_INFERENCE_BACKEND"
INFERENCE_BACKENDS = ("torch", "onnxruntime", "openvino")


def measured_inference_backend(architecture: str, device_type: str) -> str:
    """The engine the benchmark found >= 20 % faster than PyTorch's default mode at the same
    output for this architecture on this CPU class (the modes file's "backends"), when that
    engine and the ONNX exporter import here; else "torch"."""
    path = Path(INFERENCE_MODES_FILE)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return "torch"
    cached = _MODES_CACHE.get(f"{path}#backends")
    if not cached or cached[0] != stamp:
        try:
            backends = json.loads(path.read_text()).get("backends", {})
        except (OSError, ValueError, AttributeError):
            backends = {}
        cached = _MODES_CACHE[f"{path}#backends"] = (stamp, backends if isinstance(backends, dict) else {})
    engine = (cached[1].get(architecture) or {}).get(mode_key(device_type), "torch")
    if engine not in INFERENCE_BACKENDS[1:]:
        return "torch"
    import importlib.util

    return engine if all(importlib.util.find_spec(m) for m in (engine, "onnx", "onnxscript")) else "torch"


def measured_inference_mode(architecture: str, device_type: str) -> str:
    """The modes file's choice for this architecture on this machine (CPUs: the entry of the
    CPU class the code runs on, not of the machine that wrote the file), else fp32 (on CPUs
    fp32 channels_last, `CPU_FALLBACK_MODE`)."""
    fallback = CPU_FALLBACK_MODE if device_type == "cpu" else "fp32"
    mode = read_inference_modes().get(architecture, {}).get(mode_key(device_type), fallback)
    try:
        return normalize_inference_mode(mode)
    except ValueError:
        return fallback


class _FromCapabilities:
    """A class-and-instance attribute read from the class's `capabilities` (declared once there)."""

    def __set_name__(self, owner, name: str) -> None:
        self.field = name

    def __get__(self, obj, owner):
        return getattr(owner.capabilities, self.field)


class SRModel(
    nn.Module,
    StrictHubMixin,
    library_name="facesr-hub",
    license="mit",
    pipeline_tag="image-to-image",
    tags=["super-resolution", "face-super-resolution", "image-to-image", "pytorch"],
    repo_url=REPO_URL,
    model_card_template=MODEL_CARD_TEMPLATE,
):
    """Base of all face SR models. Subclasses set the class attributes below and define
    `__init__` (JSON-plain kwargs only: they are the whole config) and `forward`."""

    #: registry name, written into config.json as "architecture"; set by @register
    architecture: ClassVar[str] = ""
    #: what the architecture can do (scales, input kind, ...): every registered class declares it
    capabilities: ClassVar[Capabilities]
    #: True when the network takes the LR image bicubic-upsampled to the HR size (from `capabilities`)
    pre_upsampled = _FromCapabilities()
    #: the network input's height and width must be multiples of this (from `capabilities`)
    input_multiple = _FromCapabilities()
    #: bibliographic record of the paper: title, authors, venue, year, url, seed file
    paper: ClassVar[Paper]
    #: the paper's own figures, quoted (never ours): dicts with dataset, scale, psnr_y, ssim_y, note
    #: (`hub_models.paper.quoted` builds them)
    paper_results: ClassVar[list[dict[str, Any]]] = []
    #: open decisions (paper says, we do, why): rendered into the class docstring and the card
    decisions: ClassVar[list[Decision]] = []
    #: a tiny config (few channels/blocks) for fast tests and smoke runs
    test_config: ClassVar[dict[str, Any]] = {}
    #: GAN generators name their discriminator class here (a `Discriminator` subclass)
    discriminator_cls: ClassVar[type | None] = None

    def __init_subclass__(cls, **kwargs):
        """Append the class's own `decisions`, rendered, to its docstring ("Paper says / we do")."""
        super().__init_subclass__(**kwargs)
        if "decisions" in cls.__dict__:
            cls.__doc__ = with_decisions(cls.__dict__.get("__doc__"), cls.decisions)

    # -- scales -------------------------------------------------------------------------
    @property
    def supported_scales(self) -> list[int]:
        """The scales this instance upscales by: its config's `capabilities.scale_key` value."""
        value = getattr(self, self.capabilities.scale_key)
        return [int(s) for s in value] if self.capabilities.scale_key == "scales" else [int(value)]

    @property
    def default_scale(self) -> int:
        """`scale` for one-scale models, the largest of `scales` for multi-scale ones."""
        return max(self.supported_scales)

    @classmethod
    def checked_scale(cls, scale: int) -> int:
        """`scale` for a config when the architecture can be configured for it (`capabilities.scales`)."""
        scales = cls.capabilities.scales
        if scale not in scales:
            listed = ", ".join(map(str, scales[:-1])) + f" or {scales[-1]}" if len(scales) > 1 else str(scales[0])
            raise ValueError(f"{cls.capabilities.display_name} supports scale {listed}, got {scale}")
        return int(scale)

    def _resolve_scale(self, scale: int | None) -> int:
        if scale is None:
            return self.default_scale
        if int(scale) not in self.supported_scales:
            raise ValueError(
                f"{type(self).__name__} supports scale(s) {self.supported_scales}, got {scale}"
            )
        return int(scale)

    # -- inference ----------------------------------------------------------------------
    def prepare_input(self, lr: torch.Tensor, scale: int) -> torch.Tensor:
        """The network's input for a real LR batch: the LR itself or its bicubic upsampling."""
        if not self.capabilities.pre_upsampled:
            return lr
        from .degradations import imresize

        return imresize(lr, size=(lr.shape[-2] * scale, lr.shape[-1] * scale)).clamp(0, 1)

    def network_forward(self, x: torch.Tensor, scale: int) -> torch.Tensor:
        """Run the network on its own input; multi-scale models override to pass `scale`."""
        return self(x)

    #: numeric mode of `upscale`: None = automatic ($FACESR_INFERENCE_MODE, else the mode
    #: measured for this architecture and CPU class in inference_modes.json, else fp32
    #: channels_last on CPUs, fp32 elsewhere); set it on an
    #: instance to override, e.g. ``model.inference_mode = "fp32"`` (see `INFERENCE_MODE_TOKENS`)
    inference_mode: str | None = None

    #: engine of `upscale`: None = automatic ($FACESR_INFERENCE_BACKEND, else the engine the
    #: benchmark found >= 20 % faster on this CPU class, else "torch"); "onnxruntime" or
    #: "openvino" run the network exported to ONNX (`hub_models.onnx_export`, fp32, CPU)
    inference_backend: str | None = None

    def resolved_inference_backend(self, device: torch.device | str = "cpu") -> str:
        """The engine `upscale` uses on `device` (always "torch" off the CPU)."""
        if torch.device(device).type != "cpu":
            return "torch"
        chosen = self.inference_backend or os.environ.get(INFERENCE_BACKEND_ENV) or "auto"
        if chosen == "auto":
            return measured_inference_backend(self.architecture, "cpu")
        if chosen not in INFERENCE_BACKENDS:
            raise ValueError(f"unknown inference backend {chosen!r}: one of {INFERENCE_BACKENDS}")
        return chosen

    def resolved_inference_mode(self, device: torch.device | str = "cpu") -> str:
        """The mode `upscale` uses on `device`: the instance's `inference_mode` if set, else
        $FACESR_INFERENCE_MODE if set, else the benchmark's measured choice for this
        architecture on this CPU class or GPU device type (hub_models/inference_modes.json),
        else fp32 (channels_last on CPUs)."""
        chosen = self.inference_mode
        if chosen in (None, "auto"):
            chosen = os.environ.get(INFERENCE_MODE_ENV) or None
        if chosen in (None, "auto"):
            chosen = measured_inference_mode(self.architecture, torch.device(device).type)
        return normalize_inference_mode(chosen)

    #: LR tile side above which `upscale` works in tiles (see hub_models/tiling.py); for
    #: purely local networks any tile gives the whole-image result, for networks with
    #: global pooling or attention it was chosen by measurement (docs/benchmarks.md, "Large images")
    tile_size: ClassVar[int] = 256
    #: LR pixels adjacent tiles share; None: 2 x the receptive radius + 8 (exact for local networks)
    tile_overlap: ClassVar[int | None] = None
    #: tiles per forward pass
    tile_batch: ClassVar[int] = 4

    def upscale(self, lr: torch.Tensor, scale: int | None = None, *, tile: int | None = None,
                overlap: int | None = None, batch: int | None = None, progress=None) -> torch.Tensor:
        """Super-resolve a real low-resolution batch (N,3,h,w) in [0,1] to (N,3,h*s,w*s);
        a single image (3,h,w) gives (3,h*s,w*s).

        Floats outside [0,1] are refused (convert 8-bit images with ``x.float() / 255``).
        Inputs larger than `tile` LR pixels on a side (default `tile_size`; 0 = never) run
        in overlapping tiles of that size (`hub_models.tiling.upscale_tiled`), so memory
        grows with the tile, not the image; `progress(done, total)` is called per batch of
        tiles. Inputs whose size the network cannot take are reflect-padded to the next
        multiple of `input_multiple` (replicate where the image is too small to reflect) and
        the output is cropped back; the output is clamped to [0,1], float32, NCHW-contiguous.
        The network runs in `resolved_inference_mode()` (fp32 unless a faster mode was
        measured harmless for this architecture: see `inference_context`).
        """
        lr, squeezed = as_image_batch(lr, "lr", range_tol=1e-3, hint=RANGE_HINT)
        scale = self._resolve_scale(scale)
        tile = self.tile_size if tile is None else int(tile)
        if tile and max(lr.shape[-2:]) > tile:
            from .tiling import default_overlap, upscale_tiled

            overlap = default_overlap(self, tile, scale) if overlap is None else int(overlap)
            y = upscale_tiled(self, lr, tile, overlap, batch or self.tile_batch, progress, scale=scale)
        else:
            y = self._upscale_whole(lr, scale)
            if progress is not None:
                progress(1, 1)
        return y[0] if squeezed else y

    def _upscale_whole(self, lr: torch.Tensor, scale: int) -> torch.Tensor:
        """`upscale` of a checked batch in one forward pass (no tiling)."""
        h, w = lr.shape[-2:]
        param = next(self.parameters(), None)
        device = param.device if param is not None else lr.device
        backend = self.resolved_inference_backend(device)
        if backend != "torch":  # the network exported to ONNX, run by that engine (fp32)
            from .onnx_export import engine_upscale

            try:
                return engine_upscale(self, lr, scale, backend)
            except Exception as err:  # noqa: BLE001 -- an optional engine must never stop an upscale
                warnings.warn(f"{backend} engine failed for {self.architecture} ({type(err).__name__}: "
                              f"{str(err).splitlines()[0] if str(err) else ''}); this model now runs in PyTorch. "
                              f"Set inference_backend='torch' (or {INFERENCE_BACKEND_ENV}=torch) to skip the attempt",
                              stacklevel=2)
                self.inference_backend = "torch"
        mode = self.resolved_inference_mode(device)
        with torch.profiler.record_function("facesr::prepare_input"):  # named for the benchmark's profile
            x = self.prepare_input(lr.to(device, torch.float32), scale)
        x = pad_to_multiple(x, self.capabilities.input_multiple)
        if "channels_last" in mode:
            # only the input: convolutions propagate the layout; the weights are left as they
            # are (no side effect on training or saving; measured as fast as converting them)
            x = x.contiguous(memory_format=torch.channels_last)
        forward = self._compiled_forward() if "compile" in mode else self.network_forward
        with torch.no_grad(), self.inference_context(device, mode):
            y = forward(x, scale)
        y = y[..., : h * scale, : w * scale]
        return y.float().clamp(0, 1).contiguous()

    def inference_context(self, device: torch.device, mode: str | None = None) -> contextlib.AbstractContextManager:
        """Numeric context of `upscale` for `mode` (default: `resolved_inference_mode`):
        autocast to bfloat16/float16 when the mode names one, else nothing (fp32)."""
        device = torch.device(device)
        mode = normalize_inference_mode(mode) if mode is not None else self.resolved_inference_mode(device)
        for token, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
            if token in mode.split("+"):
                return torch.autocast(device_type=device.type, dtype=dtype)
        return contextlib.nullcontext()

    def _compiled_forward(self):
        """`network_forward` through torch.compile, built once per instance (first call and
        each new input size pay the compilation). Kept out of the module tree (not a
        submodule, not in the state dict)."""
        compiled = self.__dict__.get("_compiled_network_forward")
        if compiled is None:
            compiled = torch.compile(self.network_forward)
            self.__dict__["_compiled_network_forward"] = compiled
        return compiled

    # -- Hub integration ----------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        """config.json content: the __init__ kwargs plus the architecture name."""
        config = dict(self._hub_mixin_config or {})
        config["architecture"] = self.architecture
        return config

    def save_pretrained(self, save_directory, *, config=None, model_card_kwargs=None, push_to_hub=False,
                        repo_id=None, **push_kwargs):
        """Save config.json, model.safetensors, the card README.md (always rewritten), LICENSE.md
        (the weights' terms) and the card's sources: training.json, eval_results.json, examples/.

        `model_card_kwargs` may hold `eval_results` (rows from the evaluation command), `training`
        (a dict describing the run), `name` and `examples` ({path: PNG bytes}); see
        `card.card_context`. Without it, a model loaded from a folder keeps that folder's card,
        results, examples and weight storage, unless its weights changed since (then the card says so).
        """
        save_directory = Path(save_directory)
        save_directory.mkdir(parents=True, exist_ok=True)
        (save_directory / "README.md").unlink(missing_ok=True)
        card_kwargs = self.recorded_card_kwargs() if model_card_kwargs is None else dict(model_card_kwargs)
        context = card_context(self, **card_kwargs)
        config = config or self.config_dict()
        super().save_pretrained(save_directory, config=config, model_card_kwargs=context)
        self.write_record_files(save_directory, card_kwargs, weights_terms(card_kwargs.get("training"),
                                                                           card_kwargs.get("eval_results"))["text"])
        if push_to_hub:
            return self.push_to_hub(repo_id or save_directory.name, config=config,
                                    model_card_kwargs=model_card_kwargs, **push_kwargs)
        return None

    def push_to_hub(self, repo_id: str, *, config=None, model_card_kwargs=None, **kwargs):
        """Upload what `save_pretrained` writes (the same card kwargs) as one commit to `repo_id`."""
        return super().push_to_hub(repo_id, config=config or self.config_dict(), model_card_kwargs=model_card_kwargs,
                                   **kwargs)

    def generate_model_card(self, *args, **kwargs):
        """The model card; kwargs are `card_context`'s (eval_results, training, name, examples)."""
        if "metrics_table" not in kwargs:
            kwargs = card_context(self, **kwargs)
        return build_card(self, **kwargs)


class Discriminator(
    nn.Module,
    StrictHubMixin,
    library_name="facesr-hub",
    license="mit",
    tags=["gan-discriminator", "face-super-resolution", "pytorch"],
    repo_url=REPO_URL,
):
    """Base of GAN discriminators: Hub-saveable next to their generator, strict loading."""

    architecture: ClassVar[str] = ""
    test_config: ClassVar[dict[str, Any]] = {}

    def config_dict(self) -> dict[str, Any]:
        config = dict(self._hub_mixin_config or {})
        config["architecture"] = self.architecture
        return config

    def save_pretrained(self, save_directory, *, config=None, **kwargs):
        return super().save_pretrained(save_directory, config=config or self.config_dict(), **kwargs)
