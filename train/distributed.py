"""Several processes: BatchNorm statistics over the global batch (on GPUs and on CPUs).

torch's SyncBatchNorm refuses CPU tensors; `SyncBatchNorm` here is torch's on GPUs and, on
CPUs (gloo), computes the same global mean and variance with a differentiable all-reduce,
so a 2-process CPU run normalises like one process holding both halves of the batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


class SyncBatchNorm(nn.SyncBatchNorm):
    """nn.SyncBatchNorm that also synchronises CPU tensors (statistics by all-reduce)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        group = self.process_group or dist.group.WORLD
        if dist.get_world_size(group) == 1:
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        self._check_input_dim(x)
        dims = [0] + list(range(2, x.dim()))
        xf = x.float()
        count = torch.tensor([float(x.numel() // x.shape[1])], dtype=torch.float32)
        stats = torch.cat([xf.sum(dims), (xf * xf).sum(dims), count])
        stats = all_reduce(stats, group=group)  # differentiable: gradients flow back to every process
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


def convert_sync_batchnorm(module: nn.Module) -> tuple[nn.Module, int]:
    """`module` with every BatchNorm*d replaced by SyncBatchNorm (weights and statistics kept);
    returns it and the number of layers converted."""
    module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
    converted = 0
    for layer in module.modules():
        if type(layer) is nn.SyncBatchNorm:
            layer.__class__ = SyncBatchNorm
            converted += 1
    return module, converted


def batchnorm_count(module: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) and not isinstance(m, nn.SyncBatchNorm)
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
