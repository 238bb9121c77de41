"""Several processes: BatchNorm statistics over the global batch (on GPUs and on CPUs).

On GPUs BatchNorm layers become torch's SyncBatchNorm. torch's refuses CPU tensors (and DDP
refuses CPU modules holding one), so on CPUs they become `CPUSyncBatchNorm`, which computes
the same global mean and variance with a differentiable all-reduce (gloo): a 2-process CPU
run normalises like one process holding both halves of the batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


class CPUSyncBatchNorm(_BatchNorm):
    """BatchNorm whose training statistics are all-reduced over the process group (CPU tensors);
    the parameters and buffers of nn.SyncBatchNorm, so a state dict loads into BatchNorm*d."""

    process_group = None

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        group = self.process_group or (dist.group.WORLD if dist.is_available() and dist.is_initialized() else None)
        if not self.training or group is None or dist.get_world_size(group) == 1:
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        self._check_input_dim(x)
        dims = [0] + list(range(2, x.dim()))
        xf = x.float()
        count = torch.tensor([float(x.numel() // x.shape[1])], dtype=torch.float32, device=x.device)
        stats = all_reduce(torch.cat([xf.sum(dims), (xf * xf).sum(dims), count]), group=group)  # differentiable
        channels = x.shape[1]
        total = stats[-1]
        mean = stats[:channels] / total
        var = (stats[channels:2 * channels] / total - mean * mean).clamp(min=0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                unbiased = var * total / (total - 1).clamp(min=1)
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        shape = [1, channels] + [1] * (x.dim() - 2)
        out = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(x.dtype)


def convert_sync_batchnorm(module: nn.Module, device: torch.device | str = "cpu") -> tuple[nn.Module, int]:
    """`module` with every BatchNorm*d synchronised over the processes (weights and statistics
    kept): torch's SyncBatchNorm on GPUs, CPUSyncBatchNorm on CPUs. Returns it and the count."""
    module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
    layers = [layer for layer in module.modules() if isinstance(layer, nn.SyncBatchNorm)]
    if torch.device(device).type == "cpu":
        for layer in layers:
            layer.__class__ = CPUSyncBatchNorm
    return module, len(layers)


def batchnorm_count(module: nn.Module) -> int:
    """Plain (per-process) BatchNorm layers in `module`."""
    return sum(isinstance(m, _BatchNorm) and not isinstance(m, (nn.SyncBatchNorm, CPUSyncBatchNorm))
               for m in module.modules())


def global_mean(accelerator, values: dict[str, torch.Tensor | float]) -> dict[str, float]:
    """The mean of each value over all processes (accelerate's reduce; one all-reduce)."""
    if not values:
        return {}
    keys = list(values)
    stacked = torch.stack([torch.as_tensor(values[k], dtype=torch.float32).detach().reshape(()).to(accelerator.device)
                           for k in keys])
    if accelerator.num_processes > 1:
        stacked = accelerator.reduce(stacked, "mean")
    return dict(zip(keys, stacked.cpu().tolist()))
