"""One place that maps a name to its class, its typed capabilities, and `load()` that finds a
ready model.

Architectures register themselves with `@register("name")` and declare what they can do as
`capabilities = Capabilities(...)`; the demo, training and benchmarks list `MODELS` and read
`capabilities(name)` instead of naming classes or probing attributes. Shipped checkpoints are the
folders under `checkpoints/<name>/` at the repository root (or `$FACESR_CHECKPOINTS`); an
installed wheel carries them as `hub_models/_checkpoints/`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from .hub import MODEL_FILES, looks_local, missing_path_error


@dataclass(frozen=True)
class Capabilities:
    """What an architecture can do, declared once on its class (`capabilities = Capabilities(...)`)
    and read by the library, training, the benchmark and the demo alike."""

    display_name: str              # "RAFSR", "AGRNet-HR", "Bicubic": the demo and tables show it
    scales: tuple[int, ...]        # scales the architecture can be configured for
    scale_key: str                 # config kwarg that holds the scale(s): "scale" or "scales"
    pre_upsampled: bool            # network input = bicubic-upsampled LR
    input_multiple: int = 1        # network input H, W must be multiples of this
    multiscale_outputs: bool = False   # has forward_multiscale (a pyramid of outputs, loss on each)
    batchnorm: bool = False        # contains BatchNorm (sync-BN, re-estimation at final size)
    gan: bool = False              # has a discriminator_cls

    def __post_init__(self):
        if self.scale_key not in ("scale", "scales"):
            raise ValueError(f"scale_key must be 'scale' or 'scales', got {self.scale_key!r}")
        if not self.scales or min(self.scales) < 1 or self.input_multiple < 1:
            raise ValueError(f"scales must be positive factors and input_multiple >= 1: {self}")

    def scale_kwargs(self, scales) -> dict:
        """The config kwargs that set the scale(s): {"scale": s} or {"scales": [s, ...]}."""
        scales = [int(s) for s in ([scales] if isinstance(scales, int) else scales)]
        if self.scale_key == "scale":
            if len(scales) != 1:
                raise ValueError(f"{self.display_name} takes one scale per model, got {scales}")
            return {"scale": scales[0]}
        return {"scales": scales}

    def other_scale_configs(self, default_scales) -> list[dict]:
        """The config changes that give the `scales` a model with `default_scales` lacks (the README's
        "other scales"): one config per scale, or one multi-scale config with all of them."""
        rest = [s for s in self.scales if s not in set(default_scales)]
        if not rest:
            return []
        return [self.scale_kwargs(s) for s in rest] if self.scale_key == "scale" else [self.scale_kwargs(rest)]


#: name -> `hub_models.base.SRModel` subclass (base is not imported here: it imports this module)
MODELS: dict[str, type[nn.Module]] = {}

_BUNDLED = Path(__file__).resolve().parent / "_checkpoints"  # only in a built wheel (pyproject.toml)
CHECKPOINT_DIR = Path(os.environ.get("FACESR_CHECKPOINTS") or
                      (_BUNDLED if _BUNDLED.is_dir() else Path(__file__).resolve().parent.parent / "checkpoints"))


def register(name: str):
    """Class decorator: record `cls` under `name` and set `cls.architecture`."""

    def wrap(cls: type[nn.Module]) -> type[nn.Module]:
        if name in MODELS and MODELS[name] is not cls:
            raise ValueError(f"architecture name {name!r} registered twice")
        if not isinstance(cls.__dict__.get("capabilities"), Capabilities):
            raise TypeError(f"{cls.__name__} must declare `capabilities = Capabilities(...)` to be registered")
        if cls.capabilities.gan != (cls.discriminator_cls is not None):
            raise TypeError(f"{cls.__name__}: capabilities.gan must say whether it has a discriminator_cls")
        cls.architecture = name
        MODELS[name] = cls
        return cls

    return wrap


def get_class(name: str) -> type[nn.Module]:
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r}; registered: {', '.join(sorted(MODELS))}") from None


def capabilities(model_or_name) -> Capabilities:
    """The `Capabilities` of a registry name ("rafsr"), an architecture class or a model instance."""
    if isinstance(model_or_name, str):
        return get_class(model_or_name).capabilities
    cls = model_or_name if isinstance(model_or_name, type) else type(model_or_name)
    caps = getattr(cls, "capabilities", None)
    if not isinstance(caps, Capabilities):
        raise TypeError(f"{cls.__name__} declares no Capabilities (not a registered architecture)")
    return caps


def create(name: str, **kwargs) -> nn.Module:
    """A fresh (untrained) model of architecture `name` with config `kwargs`."""
    return get_class(name)(**kwargs)


def parameter_count(model_or_name) -> int:
    """Parameters of a model instance, or of architecture `name`'s default config (built on the
    meta device: no memory, no time)."""
    if isinstance(model_or_name, str):
        import torch

        with torch.device("meta"):
            model_or_name = create(model_or_name)
    return sum(p.numel() for p in model_or_name.parameters())


def list_checkpoints(root: Path | str | None = None) -> list[str]:
    """Names of shipped checkpoints: folders under checkpoints/ holding a config.json."""
    root = Path(root or CHECKPOINT_DIR)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "config.json").is_file())


def _load_folder(folder: Path, map_location: str) -> nn.Module:
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(
            f"{folder} is not a model folder: it has no config.json "
            f"(a model folder holds config.json, model.safetensors and README.md)"
        )
    try:
        config = json.loads(config_file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{config_file} is not valid JSON: {err}") from None
    arch = config.get("architecture")
    if arch not in MODELS:
        raise ValueError(
            f"{config_file} names architecture {arch!r}, which is not registered "
            f"(known: {', '.join(sorted(MODELS))})"
        )
    if not (folder / "model.safetensors").is_file():
        raise FileNotFoundError(f"{folder} has a config.json but no model.safetensors")
    return MODELS[arch].from_pretrained(folder, map_location=map_location)


_BICUBIC_NAME = re.compile(r"^bicubic(?:-x(\d+))?$")


def load(name_or_path: str | os.PathLike, map_location: str = "cpu") -> nn.Module:
    """A ready model in eval mode from a saved folder, a shipped checkpoint name
    (`checkpoints/<name>/`), "bicubic"/"bicubic-x8", or a Hub repo id (online only)."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        return _load_folder(path, map_location).eval()
    if (CHECKPOINT_DIR / text).is_dir():
        return _load_folder(CHECKPOINT_DIR / text, map_location).eval()
    match = _BICUBIC_NAME.match(text)
    if match:
        return create("bicubic", scale=int(match.group(1) or 4)).eval()
    if path.is_file():
        raise FileNotFoundError(f"{text} is a file; pass the model folder that holds it (config.json + model.safetensors)")
    if looks_local(name_or_path):
        raise FileNotFoundError(f"{missing_path_error(name_or_path)}. {_what_exists()}")
    if re.fullmatch(r"[\w.-]+/[\w.-]+", text):
        return _load_hub(text, map_location)
    raise FileNotFoundError(f"no model called {text!r}. {_what_exists()}")


def _what_exists() -> str:
    return (
        f"Shipped checkpoints: {', '.join(list_checkpoints()) or 'none'}; also 'bicubic-xN', "
        "a folder saved with save_pretrained, or a Hub repo id 'owner/name' when online."
    )


def _load_hub(repo_id: str, map_location: str) -> nn.Module:
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(repo_id, allow_patterns=MODEL_FILES)
    except Exception as err:  # offline, unknown repo, no access: say so plainly
        raise FileNotFoundError(
            f"{repo_id!r} is not a local folder nor a shipped checkpoint, and the Hub could not "
            f"give it ({type(err).__name__}). {_what_exists()}"
        ) from None
    return _load_folder(Path(folder), map_location).eval()
