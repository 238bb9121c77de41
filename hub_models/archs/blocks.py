"""Building blocks shared by the architectures, written once.

Each block cites the paper (or the paper the seed papers cite) and the equation or
figure it implements. Models import from here; nothing here imports a model.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def conv(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    """`kernel_size` conv with "same" padding (stride 1) or halving (stride 2)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=bias)


def activation(name: str, channels: int | None = None) -> nn.Module:
    """Activation by name: "relu", "prelu" (one slope per channel, as SRGAN), "lrelu" (0.2),
    "meta_acon" (meta-ACON-C, see `MetaAconC`), or "none"."""
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "prelu":
        return nn.PReLU(channels or 1)
    if name == "lrelu":
        return nn.LeakyReLU(0.2, inplace=True)
    if name == "meta_acon":
        if channels is None:
            raise ValueError("meta_acon needs the channel count")
        return MetaAconC(channels)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation {name!r}; choose relu, prelu, lrelu, meta_acon or none")


# ----------------------------------------------------------------------------------------
# CBAM (Woo et al., ECCV 2018), used by RAFSR (seed 000, Fig. 2) and RDAN (seed 004)
# ----------------------------------------------------------------------------------------
class ChannelAttention(nn.Module):
    """CBAM channel attention, Woo et al. eq. (2):
    M_c(F) = sigmoid(MLP(AvgPool(F)) + MLP(MaxPool(F))), the MLP shared, hidden width C/r."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(F.adaptive_avg_pool2d(x, 1))
        mx = self.mlp(F.adaptive_max_pool2d(x, 1))
        return x * torch.sigmoid(avg + mx)


class SpatialAttention(nn.Module):
    """CBAM spatial attention, Woo et al. eq. (3):
    M_s(F) = sigmoid(conv7x7([AvgPool_c(F); MaxPool_c(F)])), pooling over channels."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.conv = conv(2, 1, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(pooled))


class CBAM(nn.Module):
    """Convolutional block attention module: channel attention then spatial attention,
    applied in sequence (Woo et al. Fig. 1; seed 000 Fig. 2; seed 004 "dual attention")."""

    def __init__(self, channels: int, reduction: int = 16, spatial_kernel: int = 7):
        super().__init__()
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(spatial_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))


# ----------------------------------------------------------------------------------------
# GAM (Liu et al. 2021, "Global Attention Mechanism") and meta-ACON-C (Ma et al., CVPR 2021),
# both used by AGRNet (seed 003)
# ----------------------------------------------------------------------------------------
class GAM(nn.Module):
    """Global attention mechanism (Liu et al. 2021, Fig. 2-4; seed 003 Sec. on GAM).

    Channel sub-module: permute to (N,H,W,C), 2-layer MLP C -> C/r -> C, permute back,
    sigmoid, multiply. Spatial sub-module: two 7x7 convs C -> C/r -> C with BN + ReLU
    between, no pooling, sigmoid, multiply. Returns the refined features F'' (GAM eq. 1-2).
    """

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.channel_mlp = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels)
        )
        self.spatial = nn.Sequential(
            conv(channels, hidden, 7),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            conv(hidden, channels, 7),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channel_att = self.channel_mlp(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        x = x * torch.sigmoid(channel_att)
        return x * torch.sigmoid(self.spatial(x))


class MetaAconC(nn.Module):
    """meta-ACON-C activation (Ma et al., CVPR 2021, eq. 6-7; seed 003 eq. for ACON):

        f(x) = (p1 - p2) x * sigmoid(beta (p1 - p2) x) + p2 x,
        beta = sigmoid(W2 W1 mean_hw(x)),  W1: C -> C/r, W2: C/r -> C (per-channel beta).

    p1, p2 are learnable per channel. Paper (Ma et al.) puts BN after W1/W2; we use plain
    1x1 convs with bias, because BN over a (N,C,1,1) tensor is unstable at the small
    batches face SR trains with (batch 2 for AGRNet-HR).
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.p1 = nn.Parameter(torch.randn(1, channels, 1, 1))
        self.p2 = nn.Parameter(torch.randn(1, channels, 1, 1))
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        beta = torch.sigmoid(self.fc2(self.fc1(x.mean(dim=(2, 3), keepdim=True))))
        dpx = (self.p1 - self.p2) * x
        return dpx * torch.sigmoid(beta * dpx) + self.p2 * x


# ----------------------------------------------------------------------------------------
# SAGAN self-attention (Zhang et al., ICML 2019), used by CRLNet (seed 002)
# ----------------------------------------------------------------------------------------
class SelfAttention(nn.Module):
    """SAGAN self-attention (Zhang et al. 2019, eq. 1-3; seed 002 attention residual block).

    f, g, h are 1x1 convs (f, g to C/8); beta = softmax over positions of f(x)^T g(x);
    o = h(x) beta; y = gamma * o + x with gamma initialised to 0, so a fresh layer is the
    identity. `pool` > 1 max-pools keys and values by that factor (as in the authors'
    released SAGAN code) to cut the quadratic memory: (HW)^2 -> (HW)^2 / pool^2.
    """

    #: largest attention score matrix computed at once (2^26 floats = 256 MB in fp32)
    max_scores: int = 2**26

    def __init__(self, channels: int, reduction: int = 8, pool: int = 1):
        super().__init__()
        inner = max(channels // reduction, 1)
        self.f = nn.Conv2d(channels, inner, 1)  # query
        self.g = nn.Conv2d(channels, inner, 1)  # key
        self.h = nn.Conv2d(channels, channels, 1)  # value
        self.pool = pool
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, height, width = x.shape
        kv = F.max_pool2d(x, self.pool) if self.pool > 1 else x
        query = self.f(x).flatten(2).transpose(1, 2)  # (N, HW, C')
        key = self.g(kv).flatten(2).transpose(1, 2)  # (N, hw, C')
        value = self.h(kv).flatten(2).transpose(1, 2)  # (N, hw, C)
        # scale=1: SAGAN uses an unscaled dot product (softmax(f^T g)), unlike transformers.
        # Queries go in chunks so the (N, HW, hw) score matrix never exceeds `max_scores`
        # elements (exact: each query's softmax is over all keys); small inputs: one chunk.
        q, k, v = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        chunk = max(1, self.max_scores // (n * key.shape[1]))
        if chunk >= q.shape[2]:  # one chunk: no split (an exported graph keeps no split size then)
            out = F.scaled_dot_product_attention(q, k, v, scale=1.0)
        else:
            out = torch.cat([F.scaled_dot_product_attention(qc, k, v, scale=1.0) for qc in q.split(chunk, dim=2)],
                            dim=2)
        out = out.squeeze(1).transpose(1, 2).reshape(n, c, height, width)
        return self.gamma * out + x


# ----------------------------------------------------------------------------------------
# Upsampling and scaled convolutions
# ----------------------------------------------------------------------------------------
class PixelShuffleUpsampler(nn.Sequential):
    """Sub-pixel upsampling (Shi et al., ESPCN, CVPR 2016): for scale 2^k, k stages of
    conv C -> 4C + PixelShuffle(2) (+ activation); for scale 3 one stage conv C -> 9C +
    PixelShuffle(3). Used by RAFSR (seed 000), CRLNet (seed 002, SRGAN-style with PReLU)
    and RDAN (seed 004)."""

    def __init__(self, channels: int, scale: int, act: str = "none"):
        stages: list[nn.Module] = []
        if scale == 3:
            stages += [conv(channels, 9 * channels), nn.PixelShuffle(3), activation(act, channels)]
        elif scale >= 2 and (scale & (scale - 1)) == 0:
            for _ in range(int(math.log2(scale))):
                stages += [conv(channels, 4 * channels), nn.PixelShuffle(2), activation(act, channels)]
        else:
            raise ValueError(f"pixel-shuffle upsampling supports scales 2, 3, 4, 8, ...; got {scale}")
        super().__init__(*stages)


class ScaledConv(nn.Sequential):
    """A 3x3 conv that halves ("down": stride 2) or doubles ("up": nearest x2 then conv)
    the spatial size. AGRNet's DARU/UARU (seed 003, Fig. of the down/up units) use it in
    both the residual branch and the skip path."""

    def __init__(self, in_channels: int, out_channels: int, mode: str, bias: bool = True):
        if mode == "down":
            layers: list[nn.Module] = [conv(in_channels, out_channels, 3, stride=2, bias=bias)]
        elif mode == "up":
            layers = [nn.Upsample(scale_factor=2, mode="nearest"), conv(in_channels, out_channels, 3, bias=bias)]
        else:
            raise ValueError(f"mode must be 'down' or 'up', got {mode!r}")
        super().__init__(*layers)
