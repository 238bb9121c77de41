"""Tiled inference: large images in overlapping tiles, so memory grows with the tile.

    from hub_models.tiling import upscale_tiled
    sr = upscale_tiled(model, lr, tile=128, overlap=24, batch=4, progress=print)

The LR image is cut into `tile` x `tile` tiles on a regular grid that overlap their
neighbours by `overlap` LR pixels (the last row and column sit flush with the border, so
all tiles have one size and run in batches). Each tile goes through the model's whole-image
path; the results are blended with feathered weights that are zero within `margin` LR
pixels of an inner tile edge (where a tile lacks context) and ramp linearly to one over the
rest of the overlap. With `margin` >= the network's receptive radius
(`receptive_radius(model)`), a purely local network (SRCNN, VDSR, MFFCN) gives the
untiled result up to float rounding. Networks with global pooling or self-attention (CBAM,
GAM, meta-ACON, SAGAN) see only their tile, so their tile size is chosen by measurement
(`SRModel.tile_size`; see docs/benchmarks.md, "Large images").

Rows of tiles are finished one at a time: only a strip of float32 accumulators one tile
high is kept, and finished rows are written into `out` (float32 or uint8, any layout,
e.g. a view of a (H, W, 3) uint8 array), so memory is the output plus a strip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class TilePlan:
    """Tile start offsets along each axis (LR pixels) and the blending parameters."""

    ys: list[int]
    xs: list[int]
    tile_h: int
    tile_w: int
    overlap: int
    margin: int

    @property
    def count(self) -> int:
        return len(self.ys) * len(self.xs)


def _starts(length: int, tile: int, step: int, align: int) -> list[int]:
    """As few tiles as cover `length` with steps of at most `step`, spread evenly (so every
    overlap is at least the one asked for), starts rounded down to multiples of `align`."""
    if length <= tile:
        return [0]
    last = length - tile
    n = math.ceil(last / step) + 1
    starts = sorted({(round(i * last / (n - 1)) // align) * align for i in range(n - 1)} | {last})
    return starts


def plan_tiles(h: int, w: int, tile: int, overlap: int, margin: int | None = None, align: int = 1) -> TilePlan:
    """The tile grid for an LR image of h x w. `margin` defaults to `overlap // 3`;
    it is capped so that a ramp of at least one pixel remains inside the overlap."""
    tile, overlap = int(tile), int(overlap)
    if tile < 1:
        raise ValueError(f"tile must be a positive number of LR pixels, got {tile}")
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be >= 0 and smaller than the tile ({tile}), got {overlap}")
    margin = overlap // 3 if margin is None else int(margin)
    margin = max(0, min(margin, (overlap - 1) // 2))
    step = max(1, tile - overlap)
    th, tw = min(tile, h), min(tile, w)
    return TilePlan(_starts(h, th, step, align), _starts(w, tw, step, align), th, tw, overlap, margin)


def receptive_radius(model: nn.Module, scale: int | None = None) -> int:
    """Upper bound of the receptive radius in LR pixels: how far from an output pixel
    (mapped to LR) an input pixel can change it through convolutions and bicubic
    pre-upsampling. Sums every conv's reach at the resolution it runs at (measured with
    hooks on a small forward pass): a bound of the longest path, global ops excluded."""
    scale = model._resolve_scale(scale)
    caps = model.capabilities
    side = max(16, caps.input_multiple * 2)
    pre = caps.pre_upsampled
    net_side = side * scale if pre else side
    reach: list[float] = []

    def hook(mod, inputs, output):
        size = inputs[0].shape[-1]
        k = mod.kernel_size[-1] if isinstance(mod.kernel_size, tuple) else mod.kernel_size
        d = mod.dilation[-1] if isinstance(mod.dilation, tuple) else mod.dilation
        reach.append((k // 2) * d * net_side / size)  # in network-input pixels

    handles = [mod.register_forward_hook(hook) for mod in model.modules() if isinstance(mod, nn.Conv2d)]
    try:
        with torch.no_grad():
            param = next(model.parameters(), None)
            device = param.device if param is not None else "cpu"
            x = torch.zeros(1, 3, net_side, net_side, device=device)
            model.network_forward(x, scale)
    finally:
        for handle in handles:
            handle.remove()
    radius = sum(reach)
    if pre:
        radius = radius / scale + 2  # the bicubic kernel reaches 2 LR pixels
    return int(math.ceil(radius))


def _weights_1d(length: int, start: int, tile: int, total: int, plan: TilePlan, scale: int) -> torch.Tensor:
    """Blend weights along one axis for a tile's output (tile * scale samples)."""
    if plan.overlap == 0:
        return torch.ones(tile * scale)
    pos = (torch.arange(tile * scale, dtype=torch.float64) + 0.5) / scale  # LR units from the tile start
    ramp = max(plan.overlap - 2 * plan.margin, 1)
    wgt = torch.ones_like(pos)
    if start > 0:
        wgt = torch.minimum(wgt, ((pos - plan.margin) / ramp).clamp(0, 1))
    if start + tile < total:
        wgt = torch.minimum(wgt, ((tile - pos - plan.margin) / ramp).clamp(0, 1))
    return wgt.float()


def upscale_tiled(model, x: torch.Tensor, tile: int, overlap: int, batch: int = 4, progress: Progress | None = None,
                  scale: int | None = None, margin: int | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
    """Super-resolve `x` (N,3,h,w) or (3,h,w) in [0,1] tile by tile; returns (N,3,h*s,w*s)
    float32 (or fills and returns `out`, which may be uint8: values are rounded to 0..255).

    tile, overlap: LR pixels; margin: LR pixels of each inner tile edge given zero weight
    (default: the model's `receptive_radius`, capped to leave a one-pixel ramp); batch:
    tiles per forward pass; progress(done, total) after each batch."""
    from .images import as_image_batch

    x, squeezed = as_image_batch(x, "lr", range_tol=1e-3)
    scale = model._resolve_scale(scale)
    n, _, h, w = x.shape
    if margin is None:
        margin = receptive_radius(model, scale)
    m = model.capabilities.input_multiple
    align = m // math.gcd(m, scale) if model.capabilities.pre_upsampled else m
    plan = plan_tiles(h, w, tile, overlap, margin, align)
    H, W = h * scale, w * scale
    if out is None:
        out = torch.empty(n, 3, H, W, dtype=torch.float32)
    elif tuple(out.shape) != (n, 3, H, W):
        raise ValueError(f"out must have shape {(n, 3, H, W)}, got {tuple(out.shape)}")
    th, tw = plan.tile_h, plan.tile_w
    wx = [_weights_1d(w, x0, tw, w, plan, scale) for x0 in plan.xs]
    wy = [_weights_1d(h, y0, th, h, plan, scale) for y0 in plan.ys]
    # the weight sum is separable on a product grid: sum_i wy_i(y) * sum_j wx_j(x)
    sum_x = torch.zeros(W)
    for x0, wgt in zip(plan.xs, wx):
        sum_x[x0 * scale:(x0 + tw) * scale] += wgt
    sum_y = torch.zeros(H)
    for y0, wgt in zip(plan.ys, wy):
        sum_y[y0 * scale:(y0 + th) * scale] += wgt
    total, done = n * plan.count, 0
    for b in range(n):
        strip = torch.zeros(3, th * scale, W)  # accumulator for rows [strip_y, strip_y + th*s)
        strip_y = 0
        for row, y0 in enumerate(plan.ys):
            if y0 * scale > strip_y:  # rows above this tile row are final: write them out
                strip, strip_y = _flush(out[b], strip, strip_y, y0 * scale, sum_y, sum_x, th * scale)
            lo = y0 * scale - strip_y
            coords = [(y0, x0, j) for j, x0 in enumerate(plan.xs)]
            for k in range(0, len(coords), max(1, int(batch))):
                group = coords[k:k + max(1, int(batch))]
                tiles = torch.cat([x[b:b + 1, :, y0:y0 + th, x0:x0 + tw] for y0, x0, _ in group])
                sr = model._upscale_whole(tiles, scale).cpu()
                for t, (_, x0, j) in enumerate(group):
                    weighted = sr[t] * wy[row][None, :, None] * wx[j][None, None, :]
                    strip[:, lo:lo + th * scale, x0 * scale:(x0 + tw) * scale] += weighted
                done += len(group)
                if progress is not None:
                    progress(done, total)
        _flush(out[b], strip, strip_y, H, sum_y, sum_x, th * scale)
    return out[0] if squeezed else out


def _flush(dst: torch.Tensor, strip: torch.Tensor, strip_y: int, until: int, sum_y, sum_x, strip_h: int):
    """Normalise rows [strip_y, until) of the strip, write them to `dst`, shift the strip."""
    rows = until - strip_y
    done = strip[:, :rows] / (sum_y[strip_y:until, None] * sum_x[None, :])
    if dst.dtype == torch.uint8:
        done = done.clamp_(0, 1).mul_(255).round_()
    dst[:, strip_y:until] = done.to(dst.dtype)
    rest = torch.zeros_like(strip)
    keep = strip.shape[1] - rows
    if keep > 0:
        rest[:, :keep] = strip[:, rows:]
    return rest, until


def default_overlap(model, tile: int, scale: int | None = None) -> int:
    """The model's `tile_overlap` if set, else 2 x `receptive_radius` + 8 (a zero-weight
    margin of one radius on each side plus an 8-pixel ramp), capped below half the tile."""
    fixed = model.tile_overlap
    overlap = int(fixed) if fixed is not None else 2 * receptive_radius(model, scale) + 8
    return max(0, min(overlap, tile // 2))
