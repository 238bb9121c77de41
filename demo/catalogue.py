"""The demo's model catalogue: which models exist, what they are called, how well they
measured, and a cache of the loaded ones.

    zoo = ModelZoo()              # shipped checkpoints + bicubic + untrained architectures
    zoo.default_model()           # the best measured checkpoint (from the cards' eval_results.json)
    zoo.get("rafsr-x4", 4)        # loaded, eval mode, cached

Display names and scales come from each architecture's `capabilities` (hub_models.registry);
nothing here lists architectures by hand.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

import hub_models
from hub_models.storage import INT8_SCALE
from hub_models.metrics import format_metric
from hub_models.registry import CHECKPOINT_DIR

log = logging.getLogger("facesr.demo")

#: every scale the demo offers (a model narrows it to its own)
SCALES = (2, 3, 4, 8, 16)
#: the scale the default model is chosen at (the benchmark's main scale)
DEFAULT_SCALE = 4


class DemoError(ValueError):
    """A request the demo cannot carry out; the message is written for the user."""


def display_name(arch) -> str:
    """What the UI calls an architecture (a registry name or class): its `capabilities.display_name`."""
    return hub_models.capabilities(arch).display_name


@lru_cache(maxsize=None)
def default_scales(arch: str) -> tuple[int, ...]:
    """The scales of an architecture's default config (built on the meta device: no weights)."""
    with torch.device("meta"):
        return tuple(sorted(hub_models.create(arch).supported_scales))


@dataclass(frozen=True)
class ModelEntry:
    name: str                 # the value used in the UI and the API ("rafsr-x4", "bicubic")
    label: str                # what the dropdown shows
    architecture: str
    scales: tuple[int, ...]
    folder: Path | None = None
    title: str = ""
    year: str = ""
    params: int | None = None
    untrained: bool = False   # a registered architecture with no checkpoint: random weights
    display: str = ""         # the architecture's display name (from its class)
    measured: tuple = ()      # rows of the card's eval_results.json (dataset, scale, model, bicubic)
    trained_on: str = ""      # the degradation of its training recipe ("bicubic", "real_world")

    def gain(self, scale: int) -> float | None:
        """Mean PSNR-Y gain over bicubic (dB) across the datasets measured at `scale`."""
        rows = [r for r in self.measured if int(r.get("scale", 0)) == scale]
        gains = [r["model"]["psnr_y"] - r["bicubic"]["psnr_y"] for r in rows
                 if "psnr_y" in r.get("model", {}) and "psnr_y" in r.get("bicubic", {})]
        return sum(gains) / len(gains) if gains else None

    def describe(self) -> str:
        """One Markdown paragraph about the model for the UI."""
        scales = ", ".join(f"×{s}" for s in self.scales)
        if self.untrained:
            return (f"**{self.display}, untrained**: no checkpoint has been trained for this architecture yet, so it "
                    "runs with random weights (seed 0). Its output is **not a super-resolved image**: depending on the "
                    "architecture it is a flat (often black or grey) square or meaningless patterns. It is offered only "
                    f"to show the architecture runs end to end and how fast. Works at {scales}.")
        if self.folder is None:
            return ("**Bicubic interpolation** (MATLAB-style `imresize`): no learning, the baseline every "
                    f"paper reports. Works at {scales}.")
        size = f"{self.params / 1e6:.2f} M parameters" if self.params else "parameters unknown"
        paper = f" — *{self.title}*" + (f" ({self.year})" if self.year else "") if self.title else ""
        text = f"**{self.display}**{paper}. Checkpoint `{self.name}`, {size}, works at {scales}."
        rows = [r for r in self.measured if "psnr_y" in r.get("model", {})]
        if rows:
            r = rows[0]
            text += (f" Measured on {r['dataset']} ×{r['scale']}: PSNR-Y {format_metric('psnr_y', r['model']['psnr_y'])} dB "
                     f"(bicubic {format_metric('psnr_y', r['bicubic']['psnr_y'])}), "
                     f"LPIPS {format_metric('lpips', r['model'].get('lpips'), digits=3)}.")
        if self.trained_on:
            text += f" Trained on {self.trained_on.replace('_', '-')} degradation."
        return text


def checkpoint_param_count(folder: Path) -> int | None:
    """Number of parameters stored in a checkpoint folder, from its safetensors header (no
    weights read); None when the file is unreadable."""
    try:
        from safetensors import safe_open

        with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
            # int8 files hold one scale per output channel beside each weight: not parameters
            return int(sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys() if not k.endswith(INT8_SCALE)))
    except Exception:
        return None


def config_scales(config: dict, arch: str) -> tuple[int, ...]:
    """The scales a checkpoint's config.json gives (its `capabilities.scale_key`), else the
    default config's."""
    value = config.get(hub_models.capabilities(arch).scale_key)
    if value is None:
        return default_scales(arch)
    return tuple(sorted(int(s) for s in (value if isinstance(value, (list, tuple)) else [value])))


def _read_json(path: Path, default):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def _card_facts(folder: Path) -> tuple[tuple, str]:
    """(eval_results.json rows, training degradation) of a checkpoint; empty when absent."""
    rows = _read_json(folder / "eval_results.json", [])
    rows = tuple(r for r in rows if isinstance(r, dict) and isinstance(r.get("model"), dict)) if isinstance(rows, list) else ()
    training = _read_json(folder / "training.json", {})
    recipe = training.get("recipe", {}) if isinstance(training, dict) else {}
    return rows, str(recipe.get("degradation", "") if isinstance(recipe, dict) else "")


def _paper_title_year(arch: str) -> tuple[str, str]:
    paper = hub_models.get_class(arch).paper
    return str(paper.get("title", "")), str(paper.get("year", ""))


def _checkpoint_entry(name: str, folder: Path, config: dict) -> ModelEntry:
    arch = config["architecture"]
    scales, disp = config_scales(config, arch), display_name(arch)
    measured, trained_on = _card_facts(folder)
    return ModelEntry(name, f"{disp} ×{'/'.join(map(str, scales))}  ({name})", arch, scales, folder,
                      *_paper_title_year(arch), checkpoint_param_count(folder), display=disp, measured=measured,
                      trained_on=trained_on)


def _untrained_entry(arch: str) -> ModelEntry:
    scales, disp = default_scales(arch), display_name(arch)
    return ModelEntry(f"{arch}-untrained", f"{disp} ×{'/'.join(map(str, scales))}  (untrained: random weights)",
                      arch, scales, None, *_paper_title_year(arch), None, untrained=True, display=disp)


def _load(entry: ModelEntry) -> hub_models.SRModel:
    try:
        return hub_models.load(str(entry.folder)).eval()
    except Exception as err:
        raise DemoError(f"The checkpoint {entry.name!r} could not be loaded: {err}") from None


def _random_weights(arch: str, scale: int) -> hub_models.SRModel:
    """The architecture's default config (at `scale` where it takes one), random weights from seed 0."""
    caps = hub_models.capabilities(arch)
    kwargs = caps.scale_kwargs(scale) if caps.scale_key == "scale" else {}
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return hub_models.create(arch, **kwargs).eval()


class ModelZoo:
    """Shipped checkpoints (folders under ``checkpoints_dir`` holding a config.json and
    model.safetensors) plus bicubic, with an LRU cache of loaded models."""

    def __init__(self, checkpoints_dir: str | os.PathLike | None = None, cache_size: int = 3):
        self.root = Path(checkpoints_dir) if checkpoints_dir else Path(CHECKPOINT_DIR)
        self.cache_size = cache_size
        self._cache: OrderedDict[str, hub_models.SRModel] = OrderedDict()
        self._lock = threading.Lock()
        self.skipped: list[str] = []
        self.entries: dict[str, ModelEntry] = self._scan()

    def _scan(self) -> dict[str, ModelEntry]:
        """Checkpoints (sorted by name), bicubic, then every architecture without a checkpoint."""
        entries: dict[str, ModelEntry] = {}
        for name in hub_models.list_checkpoints(self.root):
            folder = self.root / name
            try:
                config = json.loads((folder / "config.json").read_text())
                arch = config.get("architecture")
                hub_models.get_class(arch)
            except Exception as err:  # unreadable or unknown: list it as skipped, keep going
                self.skipped.append(f"{name} ({type(err).__name__})")
                continue
            if name == "bicubic" or arch == "bicubic" or not (folder / "model.safetensors").is_file():
                self.skipped.append(name)
                continue
            entries[name] = _checkpoint_entry(name, folder, config)
        entries["bicubic"] = ModelEntry("bicubic", "Bicubic interpolation (baseline, no learning)", "bicubic",
                                        tuple(SCALES), None, "", "", 0, display=display_name("bicubic"))
        trained_archs = {e.architecture for e in entries.values()}
        for arch in sorted(hub_models.MODELS):
            if arch not in trained_archs:
                entries[f"{arch}-untrained"] = _untrained_entry(arch)
        if self.skipped:
            log.warning("checkpoints not offered: %s", ", ".join(self.skipped))
        return entries

    @property
    def trained(self) -> list[ModelEntry]:
        return [e for e in self.entries.values() if e.folder is not None]

    @property
    def comparable(self) -> list[str]:
        """What "Compare all" runs: checkpoints and bicubic, not untrained architectures."""
        return [n for n, e in self.entries.items() if not e.untrained]

    def default_model(self) -> str:
        """The checkpoint with the largest measured PSNR-Y gain over bicubic at ×4 (mean over
        the datasets on its card); without measurements the first ×4 checkpoint, else bicubic."""
        trained = self.trained
        at_default = [e for e in trained if DEFAULT_SCALE in e.scales]
        measured = [(e.gain(DEFAULT_SCALE), e.name) for e in at_default if e.gain(DEFAULT_SCALE) is not None]
        if measured:
            return max(measured)[1]
        if at_default:
            return at_default[0].name
        return trained[0].name if trained else "bicubic"

    def trained_for(self, degradation: str) -> list[str]:
        """Checkpoints whose training recipe used `degradation` ("bicubic", "real-world")."""
        want = degradation.replace("-", "_")
        return [e.name for e in self.trained if e.trained_on.replace("-", "_") == want]

    def choices(self, degradation: str = "bicubic") -> list[tuple[str, str]]:
        """(label, name) for the model menu: the checkpoints trained on `degradation` first (AGRNet-HR
        for real-world photos once it ships), then every other entry in catalogue order."""
        first = self.trained_for(degradation)
        names = first + [name for name in self.entries if name not in first]
        return [(self.entries[name].label, name) for name in names]

    def entry(self, name: str) -> ModelEntry:
        try:
            return self.entries[name]
        except KeyError:
            raise DemoError(f"Unknown model {name!r}. Available: {', '.join(self.entries)}.") from None

    def check_scale(self, name: str, scale: int) -> ModelEntry:
        """The entry of `name`, or a DemoError when it does not work at `scale`."""
        entry = self.entry(name)
        if int(scale) not in entry.scales:
            raise DemoError(f"{entry.display} ({name}) works at {', '.join(f'×{v}' for v in entry.scales)} only, "
                            f"not ×{int(scale)}. Pick one of its scales, or another model.")
        return entry

    def get(self, name: str, scale: int) -> hub_models.SRModel:
        """The loaded model (eval mode), cached; bicubic is built per scale (it has no weights)."""
        entry, scale = self.entry(name), int(scale)
        if entry.untrained:
            return self._cached(f"{name}@x{scale}", lambda: _random_weights(entry.architecture, scale))
        if entry.folder is None:
            return hub_models.create("bicubic", scale=scale).eval()
        return self._cached(name, lambda: _load(entry))

    def _cached(self, key: str, build) -> hub_models.SRModel:
        """The model under `key`, built on first use; the least recently used beyond cache_size go."""
        with self._lock:
            model = self._cache.get(key)
            if model is not None:
                self._cache.move_to_end(key)
                return model
            model = self._cache[key] = build()
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            return model

    def cached(self) -> list[str]:
        return list(self._cache)


def describe_output(sr8) -> str:
    """A plain sentence about what an (untrained model's) uint8 output looks like."""
    import numpy as np

    arr = np.asarray(sr8, dtype=np.float32)
    mean, std = float(arr.mean()), float(arr.std())
    if std < 3:
        tone = "black" if mean < 40 else "white" if mean > 215 else "grey"
        return f"a flat {tone} square (mean level {mean:.0f} of 255, almost no variation)"
    return f"meaningless patterns (mean level {mean:.0f} of 255), not a picture of the input"
