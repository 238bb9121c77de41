"""The generator (and discriminator), their optimisers, the losses of one batch, one update,
and the EMA of the weights. The loop around it is train/train.py."""

from __future__ import annotations

import copy
import json

import torch
from torch import nn

import hub_models
from train.degrade import degrade
from train.distributed import convert_sync_batchnorm
from train.gan import discriminator_loss, generator_gan_terms, real_pyramid
from train.losses import FEATURE_TERMS, Criterion


class MultiScaleOutputs(nn.Module):
    """Training view of a generator that emits several images (AGRNet-HR's
    `forward_multiscale`): its forward returns the list, so DDP sees the whole graph."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.net.forward_multiscale(x)


class Trainer:
    """The generator (and discriminator), their optimisers, the criterion, and one step.

    GAN step order (SRGAN / pix2pixHD / SPARNet-HD): the generator's loss against the
    current discriminator (its parameters frozen, called unwrapped: no D gradient, no DDP
    hook), the discriminator's loss on the detached fakes (through DDP), one check that both
    are finite, then the generator update, then the discriminator update. Under fp16,
    accelerate's single GradScaler scales each backward with the current scale and
    `optimizer.step()` unscales, steps (or skips on overflow) and updates the scale right
    after, so the two optimisers never see a scale their gradients were not made with.
    """

    def __init__(self, recipe, accelerator, *, model_kwargs: dict | None = None, disc_kwargs: dict | None = None,
                 init_from: str | None = None, channels_last: bool = True, ema_decay: float = 0.0, seed: int = 0,
                 sync_bn: bool = True):
        """`model_kwargs`: the network's kwargs (default: the recipe's); with `init_from` the checkpoint's
        config.json builds it and any `model_kwargs` given must agree with it."""
        self.recipe, self.accelerator, self.seed = recipe, accelerator, seed
        self.ema_decay = ema_decay
        # BatchNorm over the global batch when several processes train (the EMA keeps plain BatchNorm)
        self.sync_bn = sync_bn and accelerator.num_processes > 1
        self.sync_bn_layers = 0
        cls = hub_models.get_class(recipe.model)
        self.caps = caps = hub_models.capabilities(cls)
        if init_from:
            net = hub_models.load(init_from)
            if net.architecture != recipe.model:
                raise SystemExit(f"--init-from {init_from} is a {net.architecture}, not a {recipe.model}")
            accelerator.print(f"warm start from {init_from}")
            config = net.config_dict()
            clashes = {k: config.get(k) for k, v in (model_kwargs or {}).items() if config.get(k) != v}
            if clashes:
                raise SystemExit(f"--model-kwargs {json.dumps(model_kwargs)} disagrees with {init_from}'s config.json "
                                 f"({', '.join(f'{k}: {c!r}' for k, c in clashes.items())}): a warm start keeps "
                                 "the checkpoint's shape, so drop --model-kwargs or start from scratch")
        else:
            kwargs = dict(model_kwargs if model_kwargs is not None else recipe.model_kwargs)
            if caps.scale_key not in kwargs:  # one scale per model, or the list of a multi-scale one
                kwargs[caps.scale_key] = recipe.scales if caps.scale_key == "scales" else recipe.scales[0]
            net = cls(**kwargs)
        bad_scales = set(recipe.scales) - set(net.supported_scales)
        if bad_scales:
            raise SystemExit(f"{recipe.model} with this config supports {net.supported_scales}, not {sorted(bad_scales)}")
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        net = net.train().to(memory_format=self.memory_format)
        self.ema = copy.deepcopy(net).eval().requires_grad_(False).to(accelerator.device) if ema_decay else None
        self.multiscale = caps.multiscale_outputs  # outputs a pyramid: criterion on the last, D on all
        if self.sync_bn:
            net, self.sync_bn_layers = convert_sync_batchnorm(net, accelerator.device)
        module = MultiScaleOutputs(net) if self.multiscale else net
        opt = torch.optim.Adam(net.parameters(), lr=recipe.lr, betas=recipe.betas, eps=recipe.eps)
        self.disc = self.disc_net = self.d_opt = self.disc_kwargs = None
        if recipe.gan:
            if not caps.gan:
                raise SystemExit(f"recipe for {recipe.model} is adversarial but the class names no discriminator")
            dkw = dict(recipe.gan.discriminator_kwargs if disc_kwargs is None else disc_kwargs)
            self.disc_kwargs = dkw
            disc = cls.discriminator_cls(**dkw).train().to(memory_format=self.memory_format)
            if self.sync_bn:
                disc, converted = convert_sync_batchnorm(disc, accelerator.device)
                self.sync_bn_layers += converted
            d_opt = torch.optim.Adam(disc.parameters(), lr=recipe.gan.lr, betas=recipe.gan.betas)
            self.model, self.opt, self.disc, self.d_opt = accelerator.prepare(module, opt, disc, d_opt)
            self.disc_net = accelerator.unwrap_model(self.disc)
        else:
            self.model, self.opt = accelerator.prepare(module, opt)
        unwrapped = accelerator.unwrap_model(self.model)
        self.net = unwrapped.net if self.multiscale else unwrapped
        self.features = None
        if set(recipe.losses) & FEATURE_TERMS:
            from train.perceptual import feature_network

            with accelerator.main_process_first():  # the first use converts the weights into the cache
                self.features = feature_network(accelerator.device, recipe.perceptual_layers or ["conv5_3"])
        self.criterion = Criterion(recipe.losses, self.features)

    def lr_at(self, step: int) -> float:
        """The recipe's schedule as a function of the step (halving every N steps, or constant).
        Computed here rather than by a prepared scheduler: accelerate steps a prepared
        scheduler once per process per step, which would halve N-process runs N times too early."""
        halve = self.recipe.lr_halve_every
        return self.recipe.lr * (0.5 ** (step // halve) if halve else 1.0)

    def losses(self, hr: torch.Tensor, degrade_seed: int):
        """Forward passes and losses: (generator loss, its parts, discriminator loss or None)."""
        recipe, acc = self.recipe, self.accelerator
        lr_in, _ = degrade(hr, recipe.scales, recipe.degradation, seed=degrade_seed,
                           pre_upsampled=self.caps.pre_upsampled, clean_fraction=recipe.clean_fraction)
        lr_in = lr_in.contiguous(memory_format=self.memory_format)
        out = self.model(lr_in)
        fakes = list(out) if self.multiscale else [out]
        gan_terms, d_loss = {}, None
        if self.disc is not None:
            kind = recipe.gan.adversarial
            reals = real_pyramid(self.disc_net, hr, fakes)
            self.disc_net.requires_grad_(False)
            with acc.autocast():
                gan_terms = generator_gan_terms(self.disc_net, fakes, reals, kind, self.multiscale)
            self.disc_net.requires_grad_(True)
            with acc.autocast():
                d_loss = discriminator_loss(self.disc, fakes, reals, kind, self.multiscale)
        with acc.autocast():
            loss, parts = self.criterion(fakes[-1], hr, gan_terms)
        return loss, parts, d_loss

    def update(self, loss: torch.Tensor, d_loss: torch.Tensor | None, step: int) -> float | None:
        """Generator update (at the schedule's lr for `step`), then the discriminator's, then EMA.
        Inside `accelerator.accumulate` the optimisers step only on the batch that completes the
        accumulation (accelerate skips the others). Returns the generator's gradient norm
        (unscaled, before clipping) on the steps that update, else None."""
        acc = self.accelerator
        for group in self.opt.param_groups:
            group["lr"] = self.lr_at(step)
        acc.backward(loss)
        grad_norm = None
        if acc.sync_gradients:
            if self.recipe.grad_clip:
                acc.unscale_gradients(self.opt)  # this optimiser only: the discriminator's grads come later
                grad_norm = torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.recipe.grad_clip)
            else:
                grads = [p.grad for p in self.net.parameters() if p.grad is not None]
                grad_norm = torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())
                if acc.scaler is not None:
                    grad_norm = grad_norm / acc.scaler.get_scale()
            grad_norm = float(grad_norm)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        if d_loss is not None:
            acc.backward(d_loss)
            self.d_opt.step()
            self.d_opt.zero_grad(set_to_none=True)
        if self.ema is not None and acc.sync_gradients:
            self.ema_update(step)
        return grad_norm

    @torch.no_grad()
    def ema_update(self, step: int) -> None:
        """ema <- d ema + (1 - d) weights, d = min(decay, (1 + t) / (10 + t)) (warm-up, so the
        average is not dominated by the random initialisation); buffers are copied."""
        d = min(self.ema_decay, (1 + step) / (10 + step))
        for e, p in zip(self.ema.parameters(), self.net.parameters()):
            e.lerp_(p.detach(), 1 - d)
        for e, b in zip(self.ema.buffers(), self.net.buffers()):
            e.copy_(b)

    @property
    def export_net(self):
        """The weights to validate and export: the EMA when kept, else the trained ones."""
        return self.ema if self.ema is not None else self.net

    def params_finite(self) -> bool:
        nets = [self.net] + ([self.disc_net] if self.disc_net is not None else [])
        flags = [torch.isfinite(p).all() for n in nets for p in n.parameters()]
        return bool(torch.stack(flags).all()) if flags else True
