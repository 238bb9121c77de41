"""Hub loading and saving for every model: strict, clear errors, and a card that survives a round trip.

`StrictHubMixin` is `huggingface_hub.PyTorchModelHubMixin` with:
- strict loading: a folder without config.json, an unknown config key, a path that looks local
  but does not exist, a truncated or non-safetensors weight file, and mismatched tensors all
  fail at once with an error naming the file or keys;
- a record of what the folder held (training.json, eval_results.json, example images, the card's
  name, the weights' storage (`hub_models.storage`: fp32, fp16, int8) and a fingerprint of the
  weights), so that load -> save_pretrained -> load keeps the card, its results and storage, and a model whose
  weights changed since loading gets a card that says its results no longer apply.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from . import storage

#: the files of a model folder (what a Hub download fetches and a save writes)
MODEL_FILES = ["config.json", "model.safetensors", "README.md", "LICENSE.md", "training.json",
               "eval_results.json", "examples/*.png"]


class CheckpointMismatchError(RuntimeError):
    """A checkpoint's tensors do not match the architecture its config describes."""


class WeightsFileError(ValueError):
    """A weight file that cannot be read (truncated, not safetensors, a Git LFS pointer)."""


def looks_local(name_or_path: str | os.PathLike) -> bool:
    """True for what can only be a local path, not a Hub repo id 'owner/name'."""
    if isinstance(name_or_path, os.PathLike):
        return True
    text = str(name_or_path)
    if text.startswith((".", "/", "~")) or "\\" in text or text.count("/") > 1 or text.endswith("/"):
        return True
    return "/" in text and Path(text).parent.is_dir()  # e.g. checkpoints/rafsr-x5 next to checkpoints/


def missing_path_error(name_or_path: str | os.PathLike) -> FileNotFoundError:
    return FileNotFoundError(
        f"{str(name_or_path)!r} does not exist (resolved: {Path(name_or_path).expanduser().resolve()}); "
        "pass a model folder (config.json + model.safetensors) or a Hub repo id 'owner/name'"
    )


def folder_model_name(folder: Path) -> str | None:
    """The checkpoint name of a model folder: its own name under checkpoints/, else the name its
    card's model-index gives (a Hub download lives in a folder named after a commit)."""
    folder = Path(folder)
    if folder.parent.name in ("checkpoints", "_checkpoints"):
        return folder.name
    readme = folder / "README.md"
    if readme.is_file():
        from huggingface_hub import metadata_load

        try:
            index = (metadata_load(readme) or {}).get("model-index") or [{}]
            return index[0].get("name")
        except (ValueError, AttributeError, IndexError):
            return None
    return None


def weights_fingerprint(module: nn.Module) -> str:
    """Hash of the state dict's names and values (as float32, so the storage does not count)."""
    digest = hashlib.blake2b(digest_size=16)
    for key, value in module.state_dict().items():
        value = value.detach().to("cpu")
        value = value.float() if value.is_floating_point() else value
        digest.update(key.encode())
        digest.update(value.contiguous().numpy().tobytes())
    return digest.hexdigest()


def _read_json(path: Path):
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); restore it or delete it") from None


def check_config(cls, folder: Path) -> dict:
    """The folder's config.json, refused when absent, another architecture's or with unknown keys."""
    config_file = Path(folder) / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(
            f"{folder} has no config.json, so it is not a model folder (a model folder holds config.json, "
            "model.safetensors and README.md, as save_pretrained writes them)"
        )
    config = _read_json(config_file)
    if not isinstance(config, dict):
        raise ValueError(f"{config_file} must hold a JSON object of the model's config")
    saved, own = config.get("architecture"), getattr(cls, "architecture", "")
    if saved and own and saved != own:
        raise CheckpointMismatchError(
            f"{folder} holds a {saved!r} model, not {own!r}; use hub_models.load({str(folder)!r}) to get the right class"
        )
    params = cls._hub_mixin_init_parameters
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(config) - set(params) - {"architecture"})
        if unknown:
            raise ValueError(
                f"{config_file} has key(s) {unknown} that {cls.__name__} does not take (it takes: "
                f"{', '.join(sorted(params)) or 'nothing'}); was it saved by another version of the model? "
                "Remove the keys or load it with the code that wrote it"
            )
    return config


def read_weights(model_file: str | Path, map_location: str = "cpu") -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; a file that cannot be read is named with what is wrong."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(model_file)
    if not path.is_file():
        raise FileNotFoundError(f"no weight file at {path}; a model folder needs its model.safetensors")
    try:
        return load_file(str(path), device=str(map_location))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        with open(path, "rb") as fh:
            head = fh.read(64)
        hint = ("it is a Git LFS pointer, not the weights: run `git lfs pull`"
                if head.startswith(b"version https://git-lfs") else
                "it is truncated (an interrupted download or copy) or not a safetensors file: "
                "download or save it again")
        raise WeightsFileError(f"{path} ({path.stat().st_size} bytes) is not a readable safetensors file: {hint} "
                               f"[{type(err).__name__}: {err}]") from None


def load_state_strict(model: nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint", strict: bool = True) -> None:
    """Load `state` into `model`; names missing/unexpected keys and shape mismatches.

    Tensors stored in a lower precision (fp16; int8 is decoded before, `storage.decode`) are cast to the model's dtype.
    """
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if state[k].shape != own[k].shape
    ]
    if mismatched or (strict and (missing or unexpected)):
        def show(keys: list[str]) -> str:
            return ", ".join(keys[:10]) + (f" ... (+{len(keys) - 10} more)" if len(keys) > 10 else "") or "none"

        raise CheckpointMismatchError(
            f"{source} does not match {type(model).__name__}({json.dumps(getattr(model, '_hub_mixin_config', {}))}): "
            f"missing keys: {show(missing)}; unexpected keys: {show(unexpected)}; "
            f"shape mismatches: {show(mismatched)}. Is config.json the one these weights were saved with?"
        )
    cast = {k: v.to(own[k].dtype) if v.is_floating_point() else v for k, v in state.items() if k in own}
    model.load_state_dict(cast, strict=strict)


class StrictHubMixin(PyTorchModelHubMixin):
    """PyTorchModelHubMixin with strict loading, clear errors and a kept record of the folder.

    huggingface_hub loads with strict=False unless told otherwise, which would silently
    leave a mismatched layer at its random init; here a mismatch raises
    `CheckpointMismatchError` naming the keys, and a folder saved by another architecture
    is refused before any weight is read.
    """

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """A model from a saved folder or a Hub repo id (strict; see the module docstring)."""
        text = str(pretrained_model_name_or_path)
        folder = Path(text).expanduser()
        if folder.is_dir():
            check_config(cls, folder)
            pretrained_model_name_or_path = str(folder)
        elif folder.is_file():
            raise FileNotFoundError(f"{text} is a file; pass the model folder that holds it (config.json + model.safetensors)")
        elif looks_local(pretrained_model_name_or_path):
            raise missing_path_error(pretrained_model_name_or_path)
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision=None, cache_dir=None, force_download=False,
                         local_files_only=False, token=None, map_location: str = "cpu", strict: bool = True,
                         **model_kwargs):
        folder = Path(model_id)
        if not folder.is_dir():  # a Hub repo id: the whole model folder, card sources included
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(model_id, revision=revision, cache_dir=cache_dir, token=token,
                                            force_download=force_download, local_files_only=local_files_only,
                                            allow_patterns=MODEL_FILES))
        check_config(cls, folder)
        model = cls(**model_kwargs)
        stored = read_weights(folder / "model.safetensors", map_location)
        load_state_strict(model, storage.decode(stored), source=str(folder / "model.safetensors"), strict=strict)
        model.__dict__["_hub_record"] = {
            "source": str(model_id),
            "training": _read_json(folder / "training.json"),
            "eval_results": _read_json(folder / "eval_results.json"),
            "examples": {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.glob("examples/*.png"))},
            "name": folder_model_name(folder),
            "storage": storage.storage_of(stored),
            "fingerprint": weights_fingerprint(model),
        }
        return model.eval()

    @classmethod
    def _load_as_safetensor(cls, model, model_file: str, map_location: str, strict: bool):
        load_state_strict(model, storage.decode(read_weights(model_file, map_location)), source=model_file, strict=strict)
        return model.eval()

    @classmethod
    def _load_as_pickle(cls, model, model_file: str, map_location: str, strict: bool):
        state = torch.load(model_file, map_location=map_location, weights_only=True)
        load_state_strict(model, state, source=model_file, strict=strict)
        return model.eval()

    # -- the record of the loaded folder ------------------------------------------------
    @property
    def hub_record(self) -> dict[str, Any] | None:
        """What the folder this model was loaded from held (None for a model built in code)."""
        return self.__dict__.get("_hub_record")

    def weights_changed(self) -> bool:
        """True when the weights differ from those loaded (training, editing); False if not loaded."""
        record = self.hub_record
        return bool(record) and weights_fingerprint(self) != record["fingerprint"]

    def recorded_card_kwargs(self) -> dict[str, Any]:
        """Card kwargs from the loaded folder: all of it when the weights are unchanged; when they
        changed, the training record and name only, with a note that the results no longer apply."""
        record = self.hub_record
        if not record:
            return {}
        kwargs = {"training": record["training"], "name": record["name"]}
        if not self.weights_changed():
            return {**kwargs, "eval_results": record["eval_results"], "examples": dict(record["examples"])}
        dropped = len(record["eval_results"] or [])
        kwargs["weights_note"] = (
            f"**These weights were changed after they were loaded from `{record['source']}`**: the {dropped} "
            "result row(s) and the example images made with the loaded weights no longer apply and are not "
            "shown (measure these weights with `python -m train.evaluate`); the training record below "
            "describes the loaded weights, not the change."
        )
        return kwargs

    @property
    def weights_storage(self) -> str:
        """How `save_pretrained` stores the weights (`hub_models.storage.STORAGES`): as set, else as
        the loaded file stored them while they are unchanged, else fp32."""
        chosen = self.__dict__.get("_weights_storage")
        if chosen:
            return chosen
        record = self.hub_record
        return record["storage"] if record and record.get("storage") and not self.weights_changed() else "fp32"

    @weights_storage.setter
    def weights_storage(self, value: str) -> None:
        if value not in storage.STORAGES:
            raise ValueError(f"unknown weight storage {value!r}; use one of {', '.join(storage.STORAGES)}")
        self.__dict__["_weights_storage"] = value

    def _save_pretrained(self, save_directory: Path) -> None:
        """model.safetensors in `weights_storage`."""
        storage.save(self, Path(save_directory) / "model.safetensors", self.weights_storage)

    def write_record_files(self, folder: Path, card_kwargs: dict[str, Any], license_text: str | None) -> None:
        """Beside the card: LICENSE.md (weights terms), training.json, eval_results.json and the
        example images in `card_kwargs`; stale results and examples in `folder` are removed."""
        folder = Path(folder)
        if license_text:
            (folder / "LICENSE.md").write_text(license_text)
        if card_kwargs.get("training"):
            (folder / "training.json").write_text(json.dumps(card_kwargs["training"], indent=2, default=str))
        if card_kwargs.get("eval_results"):
            (folder / "eval_results.json").write_text(json.dumps(card_kwargs["eval_results"], indent=2))
        for rel, data in (card_kwargs.get("examples") or {}).items():
            if data is not None:
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                (folder / rel).write_bytes(data)
        if card_kwargs.get("weights_note"):  # they describe the weights as loaded, not these
            (folder / "eval_results.json").unlink(missing_ok=True)
            for old in folder.glob("examples/*.png"):
                old.unlink()
