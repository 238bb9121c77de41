"""How `model.safetensors` stores the weights: fp32, fp16, or int8 with one scale per output channel.

`train.ship` picks the smallest of `STORAGES` whose rounding moves Y-PSNR by less than 0.01 dB on
200 CelebA faces and on 200 faces of each validation set (measured, recorded in the card), or the
one `--storage` names. int8 halves fp16's size, which is what lets the 12.7 M-parameter AGRNet
ship in a checkout kept under 50 MB; it is not free: on 100 UTKFace validation faces it cost the
shipped crlnet-psnr-x8 0.076 dB and rafsr-x8 0.020 dB (CelebA: under 0.01), so the smaller models
stay fp16 and AGRNet's card states what int8 cost it.

int8 (symmetric, per output channel, weights only): each floating tensor with 2 or more dims
(conv and linear weights) is stored as `round(w / s)` in int8 with `s = max|w| / 127` per output
channel, saved beside it as the fp32 tensor `<name>.int8_scale`; every other floating tensor
(biases, norms, BatchNorm statistics) is stored in fp16. Loading (`decode`) rebuilds `q * s` in
fp32, so the model computes exactly as it did in the measurement. We write this rather than use
torchao / optimum-quanto because those keep the model quantised at run time (their modules,
their kernels); here only the file is small and the loaded model is a plain fp32 `nn.Module`.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

STORAGES = ("int8", "fp16", "fp32")  # smallest first
INT8_SCALE = ".int8_scale"


def _int8_coded(tensor: torch.Tensor) -> bool:
    return tensor.is_floating_point() and tensor.dim() >= 2


def _int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    flat = weight.detach().float().reshape(weight.shape[0], -1)
    scale = flat.abs().amax(dim=1).clamp_min(torch.finfo(torch.float32).tiny) / 127.0
    q = torch.round(flat / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return q.reshape(weight.shape), scale


def encode(state: dict[str, torch.Tensor], storage: str) -> dict[str, torch.Tensor]:
    """The tensors to write for `state` in `storage` (one of `STORAGES`)."""
    if storage not in STORAGES:
        raise ValueError(f"unknown weight storage {storage!r}; use one of {', '.join(STORAGES)}")
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        tensor = tensor.detach().contiguous()
        if not tensor.is_floating_point() or storage == "fp32":
            out[name] = tensor.float().clone() if tensor.is_floating_point() else tensor.clone()
        elif storage == "int8" and _int8_coded(tensor):
            out[name], out[name + INT8_SCALE] = _int8(tensor)
        else:
            out[name] = tensor.half()
    return out


def decode(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict stored in `tensors` (int8-coded weights rebuilt in fp32; others as stored)."""
    state = {}
    for name, tensor in tensors.items():
        if name.endswith(INT8_SCALE):
            continue
        scale = tensors.get(name + INT8_SCALE)
        if scale is not None:
            shape = (-1,) + (1,) * (tensor.dim() - 1)
            tensor = tensor.float() * scale.float().reshape(shape)
        state[name] = tensor
    return state


def storage_of(tensors: dict[str, torch.Tensor]) -> str | None:
    """The storage a file's tensors were written in (None for a mix that `encode` does not write)."""
    if any(name.endswith(INT8_SCALE) for name in tensors):
        return "int8"
    dtypes = {t.dtype for t in tensors.values() if t.is_floating_point()}
    return {torch.float16: "fp16", torch.float32: "fp32"}.get(dtypes.pop()) if len(dtypes) == 1 else None


def rounded(model: nn.Module, storage: str) -> nn.Module:
    """A copy of `model` with the weights it would load with after being stored in `storage`."""
    clone = copy.deepcopy(model)
    own = clone.state_dict()
    stored = decode(encode(own, storage))
    clone.load_state_dict({k: v.to(own[k].dtype) for k, v in stored.items()})
    return clone


def save(model: nn.Module, path, storage: str) -> None:
    """Write `model`'s state dict to the safetensors file `path` in `storage`."""
    from safetensors.torch import save

    # bytes then write_bytes: the file gets the usual permissions (save_file makes it owner-only);
    # the storage shows in the tensors themselves (storage_of), so no metadata is needed
    Path(path).write_bytes(save(encode(model.state_dict(), storage)))
