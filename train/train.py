"""Train any registered model with its paper's recipe, on one CPU, one GPU or many GPUs.

    python -m train.train --model rafsr --data ../shared/data/utkface \\
        --train-list train.txt --val-list val.txt --steps 20000 --output runs/rafsr-x4 --resume
    accelerate launch --multi_gpu --num_processes 4 -m train.train --model agrnet_hr ...

The output folder holds `state/` (accelerate's full training state, for --resume),
`best/` and `last/` (save_pretrained folders that hub_models.load reads, with a card),
`logs/` (TensorBoard) and `train_log.jsonl`.

Resuming: `--resume` continues from `state/` (weights, optimisers, RNG, step, EMA); the data
order, augmentation and degradations depend only on (seed, step), so a run stopped and
resumed reaches the same weights as an uninterrupted one. The last two states are kept
(`state/`, `state.prev/`, written atomically: train/state.py); a damaged newest one is
reported and the previous one used. A state of another run (model, recipe, batch,
processes, precision, data) is refused unless --resume-changed. train_log.jsonl is cut
back to the resumed step.
Exit codes: 0 finished (or --max-time reached, state saved); 3 non-finite loss or weights
(stopped before the update that would spoil them); 4 diverged (loss or gradient norm far
above its running median: train/guard.py; no last/ exported); 128 + signal number (130
SIGINT, 143 SIGTERM) stopped by a signal after saving the state, last/ exported and marked
interrupted; 1 refused before training (arguments, data, a mismatched or unusable state).
Several processes (`accelerate launch`) take their own slice of every global batch, decide
to stop together, log the loss averaged over all of them and (unless --no-sync-bn) share
BatchNorm statistics (SyncBatchNorm).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import signal
import sys
import time
from pathlib import Path

import torch
from torch import nn

import hub_models
from hub_models.degradations import imresize
from train.hardware import cpu_has_native_bf16, cpu_model_name
from train.data import (FaceCrops, MixedCrops, StepSampler, center_square, drop_blurriest, hr_to_float,
                        list_images, mix_weights, sharpest, sharpness)
from train.losses import FEATURE_TERMS, GAN_TERMS, Criterion
from train.recipes import RECIPES, Recipe, get_recipe
from train.distributed import batchnorm_count, convert_sync_batchnorm, global_mean
from train.guard import DivergenceGuard
from train.state import (check_state, find_state, load_training_state, resume_state, run_identity,  # noqa: F401
                         save_training_state, state_candidates, truncate_log)

EXIT_NONFINITE = 3
EXIT_DIVERGED = 4
EXIT_SIGNAL_BASE = 128  # + the signal's number: 130 SIGINT, 143 SIGTERM


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, choices=sorted(RECIPES), help="architecture (its paper's recipe is used)")
    p.add_argument("--data", required=True, nargs="+", metavar="DIR",
                   help="folder(s) of HR face images; several are mixed by --data-weights (e.g. "
                        "../shared/data/celeba_wild ../shared/data/utkface)")
    p.add_argument("--data-weights", type=float, nargs="+", metavar="W",
                   help="share of each --data folder in the batches, one per folder (default: equal)")
    p.add_argument("--train-list", help="file with image names (relative to each --data folder) to train on")
    p.add_argument("--val-list", help="file with image names for validation (default: no validation)")
    p.add_argument("--val-data", metavar="DIR", help="folder of the --val-list images (default: the first --data)")
    p.add_argument("--val-crop", type=float, metavar="F",
                   help="validation centre square: this fraction of the shorter side (default: the middle of the "
                        "crop range of the --data folder the validation faces come from; celeba_wild: 0.8)")
    p.add_argument("--output", required=True, help="run folder (state, checkpoints, logs)")
    p.add_argument("--steps", type=int, required=True, help="total optimisation steps")
    p.add_argument("--batch-size", type=int, help="per-process batch (default: the recipe's)")
    p.add_argument("--lr", type=float, help="learning rate (default: the recipe's)")
    p.add_argument("--lr-halve-every", type=int, metavar="STEPS",
                   help="halve the learning rate every STEPS steps (default: the recipe's; 0 = constant)")
    p.add_argument("--scale", type=int, nargs="+", help="training scale(s) (default: the recipe's)")
    p.add_argument("--hr-size", type=int, help="HR crop size (default: the recipe's)")
    p.add_argument("--crop-range", type=float, nargs="+", metavar="MIN MAX",
                   help="random square crop covering MIN-MAX of the image's shorter side, resized to --hr-size "
                        "(default: the recipe's); one MIN MAX pair for all --data folders or one pair per folder. "
                        "Face scale: UTKFace's tight faces match the CelebA test crops at 0.85-1.0; celeba_wild's "
                        "160-px files hold the benchmark framing in their central 0.8")
    p.add_argument("--model-kwargs", default="{}", help="JSON dict of model config overrides")
    p.add_argument("--loss-weights", default="{}",
                   help='JSON dict overriding the recipe\'s loss weights; 0 drops a term (ablations, smoke runs), '
                        'e.g. \'{"perceptual_mse": 0}\'; recorded in the card')
    p.add_argument("--tiny", action="store_true",
                   help="the class's tiny test_config (and its discriminator's): smoke runs and tests")
    p.add_argument("--init-from", help="warm start: a saved model folder or checkpoint name")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUTPUT/state (or, if it is damaged, the previous state) if there is one")
    p.add_argument("--resume-changed", action="store_true",
                   help="with --resume: continue although the model, recipe, batch, processes, precision or data differ "
                        "from the saved state's (refused otherwise); the changes are recorded in the card")
    p.add_argument("--grad-accum", type=int, default=1, metavar="N",
                   help="accumulate gradients over N batches per optimisation step (accelerate's accumulate): "
                        "batch x processes x N images per step, recorded in the card")
    p.add_argument("--sync-bn", action=argparse.BooleanOptionalAction, default=True,
                   help="with several processes, BatchNorm statistics over the global batch (SyncBatchNorm)")
    p.add_argument("--diverge-factor", type=float, default=10.0, metavar="K",
                   help="divergence guard: stop (exit 4) when the loss stays above K x its running median for "
                        "--diverge-steps steps (0: no guard)")
    p.add_argument("--diverge-grad-factor", type=float, default=100.0, metavar="K",
                   help="divergence guard: the same for the gradient norm")
    p.add_argument("--diverge-steps", type=int, default=20, metavar="N", help="divergence guard: consecutive steps")
    p.add_argument("--diverge-window", type=int, default=100, metavar="N",
                   help="divergence guard: steps in the running median")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--drop-blurry", type=float, nargs="+", default=[0.1], metavar="F",
                   help="drop this fraction of the blurriest training images: one for all --data folders or one per folder")
    p.add_argument("--save-every", type=int, default=200, help="save_state every N steps (SIGKILL loses at most N)")
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument("--val-count", type=int, default=64, help="validation images (N of --val-list, see --val-pick)")
    p.add_argument("--val-pick", choices=["first", "sharpest"], default="first",
                   help="which N validation images: the list's first, or its sharpest centre crops (variance of "
                        "the Laplacian at --val-size). UTKFace is much blurrier than the CelebA test crops; its "
                        "sharpest faces rank checkpoints the way CelebA does (README: Training, validation)")
    p.add_argument("--val-size", type=int,
                   help=f"validation HR size (default: the larger of --hr-size and {BENCHMARK_HR}, the CelebA test "
                        "crops': networks trained on small crops are judged at the input size they will be used on)")
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--workers", type=int, default=1, help="data loader worker processes")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads for torch (default: torch's). On a shared machine, jobs x threads <= cores: "
                        "two OpenMP threads that wait on each other for a busy core are slower than one")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--mixed-precision", choices=["no", "bf16", "fp16"], default=None,
                   help="default: accelerate's launch flag, else bf16 where the hardware computes it natively, else fp32")
    p.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                   help="keep an exponential moving average of the generator weights (e.g. 0.999) and export it")
    p.add_argument("--max-time", type=float, default=0, help="stop cleanly (state saved) after this many minutes")
    p.add_argument("--push-to-hub", metavar="REPO_ID", help="push the final model (needs a token and network)")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------------------
# degradations, precision
# ----------------------------------------------------------------------------------------
def degrade(hr: torch.Tensor, scales: list[int], kind: str, seed: int, pre_upsampled: bool):
    """LR input for the network and the scale (None when the batch mixes scales).

    Multi-scale recipes draw a scale per sample (pre-upsampled models only: every sample
    comes back at the HR size); single-scale models use scales[0]. LR images are
    quantised to 8 bits, as a saved LR image would be. "real_world" (AGRNet-HR, seed 003
    eq. 28): blur, downscale, noise, JPEG with per-image parameters drawn from the paper's
    ranges (kernel sizes rescaled to the HR size); pre-upsampled models get the JPEG LR
    bicubic-upsampled back to the HR size (the paper's I_LR-UP, random factor 4-16),
    others a fixed factor scales[0].
    """
    gen = torch.Generator().manual_seed(seed)
    n = hr.shape[0]
    if kind == "real_world":
        from hub_models.degradations import RealWorldParams, real_world_degrade

        size = int(hr.shape[-1])
        fixed = {"upsample_to": tuple(int(v) for v in hr.shape[-2:])} if pre_upsampled else {"downscale": 1 / scales[0]}
        params = [RealWorldParams.sample(seed * 1009 + i, hr_size=size, **fixed) for i in range(n)]
        lr = real_world_degrade(hr.float(), params)  # JPEG output: already 8-bit values
        return lr, scales[0]
    if len(scales) > 1 and not pre_upsampled:
        raise ValueError("several training scales need a pre-upsampled model")
    picks = [scales[int(i)] for i in torch.randint(len(scales), (n,), generator=gen)] if len(scales) > 1 else [scales[0]] * n
    outs = []
    for s in sorted(set(picks)):
        idx = [i for i, p in enumerate(picks) if p == s]
        small = imresize(hr[idx], scale=1 / s)
        small = (small * 255).round().clamp(0, 255) / 255
        outs.append((idx, imresize(small, size=hr.shape[-2:]).clamp(0, 1) if pre_upsampled else small))
    if len(outs) == 1:
        return outs[0][1], picks[0]
    lr = torch.empty_like(hr)
    for idx, x in outs:
        lr[idx] = x
    return lr, None


def note_schedule_override(recipe, lr: float | None, halve_every: int | None) -> None:
    """Apply --lr / --lr-halve-every and mark them as ours in the recipe's sources (the card
    must not call an overridden learning rate the paper's)."""
    changes = []
    if lr and lr != recipe.lr:
        changes.append(f"lr {lr:g} (recipe: {recipe.lr:g})")
        recipe.lr = lr
    if halve_every is not None and halve_every != recipe.lr_halve_every:
        changes.append(f"halved every {halve_every} steps (recipe: {recipe.lr_halve_every or 'constant'})")
        recipe.lr_halve_every = halve_every
    if changes:
        recipe.source["optimizer"] = (f"ours, on the command line: {', '.join(changes)}; "
                                      + recipe.source.get("optimizer", ""))


def note_batch_override(recipe, batch_size: int | None) -> None:
    """Apply --batch-size and mark it as ours in the recipe's sources (the card must not call
    an overridden batch the paper's)."""
    if batch_size and batch_size != recipe.batch_size:
        recipe.source["batch_size"] = (f"ours, on the command line: {batch_size} (recipe: {recipe.batch_size}); "
                                       + recipe.source.get("batch_size", ""))
        recipe.batch_size = batch_size


def default_precision() -> str:
    """bf16 where the hardware computes it natively (CUDA with bf16, CPUs with AVX512-BF16/AMX),
    else fp32 ("no"); fp16 on CUDA without bf16. Where bf16 is emulated (AVX2, or AVX512
    without the BF16 extension) the training benchmark (bench/train_speed.py) measured it
    slower than fp32 for every model."""
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_native_bf16() else "no"


def precision_name(mixed: str) -> str:
    return "fp32" if mixed == "no" else mixed


# ----------------------------------------------------------------------------------------
# model, optimisers, one step
# ----------------------------------------------------------------------------------------
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
        self.recipe, self.accelerator, self.seed = recipe, accelerator, seed
        self.ema_decay = ema_decay
        # BatchNorm over the global batch when several processes train (the EMA keeps plain BatchNorm)
        self.sync_bn = sync_bn and accelerator.num_processes > 1
        self.sync_bn_layers = 0
        cls = hub_models.get_class(recipe.model)
        if init_from:
            net = hub_models.load(init_from)
            if net.architecture != recipe.model:
                raise SystemExit(f"--init-from {init_from} is a {net.architecture}, not a {recipe.model}")
            accelerator.print(f"warm start from {init_from}")
        else:
            kwargs = dict(model_kwargs if model_kwargs is not None else recipe.model_kwargs)
            init_params = cls._hub_mixin_init_parameters
            if "scales" in init_params and "scales" not in kwargs:
                kwargs["scales"] = recipe.scales
            elif "scale" in init_params and "scale" not in kwargs:
                kwargs["scale"] = recipe.scales[0]
            net = cls(**kwargs)
        bad_scales = set(recipe.scales) - set(net.supported_scales)
        if bad_scales:
            raise SystemExit(f"{recipe.model} with this config supports {net.supported_scales}, not {sorted(bad_scales)}")
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        net = net.train().to(memory_format=self.memory_format)
        self.ema = copy.deepcopy(net).eval().requires_grad_(False).to(accelerator.device) if ema_decay else None
        self.multiscale = hasattr(net, "forward_multiscale")
        if self.sync_bn:
            net, self.sync_bn_layers = convert_sync_batchnorm(net, accelerator.device)
        module = MultiScaleOutputs(net) if self.multiscale else net
        opt = torch.optim.Adam(net.parameters(), lr=recipe.lr, betas=recipe.betas, eps=recipe.eps)
        self.disc = self.disc_net = self.d_opt = self.disc_kwargs = None
        if recipe.gan:
            if cls.discriminator_cls is None:
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
        lr_in, _ = degrade(hr, recipe.scales, recipe.degradation, seed=degrade_seed, pre_upsampled=self.net.pre_upsampled)
        lr_in = lr_in.contiguous(memory_format=self.memory_format)
        out = self.model(lr_in)
        fakes = list(out) if self.multiscale else [out]
        gan_terms, d_loss = {}, None
        if self.disc is not None:
            from train.gan import discriminator_loss, generator_gan_terms, real_pyramid

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


# ----------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------
def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    recipe = get_recipe(args.model)
    note_batch_override(recipe, args.batch_size)
    if args.lr_halve_every is not None and args.lr_halve_every < 0:
        raise SystemExit("--lr-halve-every must be >= 0")
    note_schedule_override(recipe, args.lr, args.lr_halve_every)
    recipe.scales = args.scale or recipe.scales
    recipe.hr_size = args.hr_size or recipe.hr_size
    sources = data_sources(args, recipe)
    set_crop_range(recipe, sources[0]["crop_range"] if args.crop_range else None)
    cls = hub_models.get_class(recipe.model)
    if args.tiny:
        recipe.model_kwargs = dict(cls.test_config)
        if args.scale and len(args.scale) == 1 and "scale" in recipe.model_kwargs:
            recipe.model_kwargs["scale"] = args.scale[0]  # tiny config at the asked scale
        if recipe.gan and cls.discriminator_cls is not None:
            recipe.gan.discriminator_kwargs = dict(cls.discriminator_cls.test_config)
    recipe.model_kwargs.update(json.loads(args.model_kwargs))
    apply_loss_override(recipe, json.loads(args.loss_weights))
    output = Path(args.output)
    if args.grad_accum < 1:
        raise SystemExit(f"--grad-accum must be >= 1, got {args.grad_accum}")
    try:
        guard = DivergenceGuard(args.diverge_factor, args.diverge_steps, args.diverge_window,
                                args.diverge_grad_factor) if args.diverge_factor else None
    except ValueError as err:
        raise SystemExit(f"--diverge-*: {err}") from None
    listed = [list_images(source["folder"], args.train_list) for source in sources]
    mixed = args.mixed_precision or os.environ.get("ACCELERATE_MIXED_PRECISION") or default_precision()
    # without cpu=True, accelerate treats processes launched on a machine without CUDA (e.g.
    # `accelerate launch --multi_gpu --num_processes 2` on a CPU box) as independent
    # single-process runs; with it they form one gloo process group (MULTI_CPU)
    launched = int(os.environ.get("WORLD_SIZE") or 0)  # set by torchrun / accelerate launch
    accelerator = Accelerator(mixed_precision=mixed, log_with="tensorboard", project_dir=str(output / "logs"),
                              cpu=not torch.cuda.is_available(), gradient_accumulation_steps=args.grad_accum)
    if launched and launched != accelerator.num_processes:
        raise SystemExit(f"{launched} processes were launched but accelerate formed a group of {accelerator.num_processes}")
    is_main = accelerator.is_main_process
    print(f"process {accelerator.process_index} of {accelerator.num_processes} on {accelerator.device}, "
          f"precision {precision_name(accelerator.mixed_precision)}", flush=True)
    set_seed(args.seed)

    trainer = Trainer(recipe, accelerator, init_from=args.init_from, channels_last=args.channels_last,
                      ema_decay=args.ema, seed=args.seed, sync_bn=args.sync_bn)
    if trainer.sync_bn_layers:
        accelerator.print(f"SyncBatchNorm: {trainer.sync_bn_layers} BatchNorm layer(s) normalise over all "
                          f"{accelerator.num_processes} processes' batches")
    elif accelerator.num_processes > 1 and batchnorm_count(trainer.model) + (batchnorm_count(trainer.disc) if trainer.disc else 0):
        accelerator.print("--no-sync-bn: BatchNorm statistics are per process")
    identity = run_identity(
        recipe=recipe, model_config=trainer.net.config_dict(), disc_config=trainer.disc_kwargs, batch=recipe.batch_size,
        processes=accelerator.num_processes, precision=accelerator.mixed_precision, grad_accum=args.grad_accum,
        sync_bn=trainer.sync_bn, seed=args.seed, ema=args.ema, sources=sources, listed=listed, train_list=args.train_list,
        validation={"data": Path(args.val_data or args.data[0]).resolve().name, "list": args.val_list and Path(args.val_list).name,
                    "crop": round(validation_crop(args, sources, recipe), 6), "count": args.val_count, "pick": args.val_pick})
    # -- resume -------------------------------------------------------------------------
    state_dir = output / "state"
    start_step = 0
    history: dict = {"best_psnr": -math.inf, "wall_s": 0.0, "identity": identity}
    resumed = resume_state(accelerator, trainer, output, identity, args.resume_changed) if args.resume else None
    val_size = validation_size(args.val_size, recipe.hr_size)
    if resumed is not None:
        history, found = resumed
        start_step = history["step"]
        accelerator.print(f"resumed from step {start_step} ({found})")
        if guard is not None:
            guard.load_state_dict(history.get("guard"))
        previous = history.get("val_size", recipe.hr_size)  # older states validated at --hr-size
        if previous != val_size:
            accelerator.print(f"validation size changed ({previous} -> {val_size} px): the best checkpoint is chosen afresh")
            history["best_psnr"], history["best_lpips"] = -math.inf, math.inf
    elif args.resume:
        accelerator.print(f"--resume: no state in {state_dir}, starting from step 0")
    history["val_size"] = val_size

    if is_main:
        dropped = truncate_log(output / "train_log.jsonl", start_step)
        if dropped:
            accelerator.print(f"train_log.jsonl: {dropped} line(s) past step {start_step} removed (written after the "
                              f"state this run continues from)")

    # -- data ---------------------------------------------------------------------------
    parts = []
    for source, paths in zip(sources, listed):
        with accelerator.main_process_first():  # the first process scores sharpness and caches it
            paths, source["blur"] = drop_blurriest(paths, source["drop_blurry"], cache_dir=output / "cache")
        parts.append(FaceCrops(paths, recipe.hr_size, source["crop_range"], recipe.rotate90))
    dataset = parts[0] if len(parts) == 1 else MixedCrops(parts)
    # one sampler step per accumulated batch: with --grad-accum 1 the optimisation step itself
    sampler = StepSampler(len(dataset), recipe.batch_size, args.seed, start_step * args.grad_accum,
                          accelerator.process_index, accelerator.num_processes,
                          source_sizes=[len(part) for part in parts], weights=[src["weight"] for src in sources])
    loader = torch.utils.data.DataLoader(dataset, batch_size=recipe.batch_size, sampler=sampler,
                                         num_workers=args.workers, persistent_workers=args.workers > 0,
                                         worker_init_fn=_ignore_stop_signals if args.workers > 0 else None)
    val = None
    if args.val_list and is_main:
        val_paths = list_images(args.val_data or args.data[0], args.val_list)
        if args.val_pick == "first":
            val_paths = val_paths[: args.val_count]
        crops = [center_square(p, val_size, validation_crop(args, sources, recipe)) for p in val_paths]
        if args.val_pick == "sharpest":
            crops = [crops[i] for i in sharpest([sharpness(c) for c in crops], args.val_count)]
        val_hr = torch.stack([hr_to_float(torch.from_numpy(c)) for c in crops])
        val = validation_inputs(val_hr, recipe)
        # the reference the validation figures are read against (the log's val lines, the card)
        history["val_bicubic"] = validate(hub_models.get_class("bicubic")(scale=val[2]), *val)
        accelerator.print("validation bicubic: " + ", ".join(f"{k} {v:.4f}" for k, v in history["val_bicubic"].items()))

    if is_main:
        output.mkdir(parents=True, exist_ok=True)
        accelerator.init_trackers("train", config={"model": recipe.model, "batch": recipe.batch_size, "lr": recipe.lr,
                                                   "processes": accelerator.num_processes, "precision": accelerator.mixed_precision})

    stop = {"signal": None}

    def request_stop(signum, _frame):
        stop["signal"] = signal.Signals(signum).name

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    context = RunContext(recipe, args, sources, accelerator, trainer)
    try:
        return _loop(args, recipe, accelerator, trainer, loader, val, history, start_step, output, context, stop, guard)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop_data_workers(loader)


def _stop_data_workers(loader) -> None:
    """Join the data workers now: they ignore SIGTERM (below), so after an error the exit-time
    terminate() of multiprocessing could not end them and the crashed run hung in wait()."""
    iterator = getattr(loader, "_iterator", None)  # persistent workers keep theirs on the loader
    if iterator is not None and hasattr(iterator, "_shutdown_workers"):
        iterator._shutdown_workers()


def _loop(args, recipe, accelerator, trainer, loader, val, history, start_step, output, context, stop,
          guard: DivergenceGuard | None = None) -> int:
    is_main = accelerator.is_main_process
    state_dir = output / "state"

    # -- loop ---------------------------------------------------------------------------
    from tqdm import tqdm

    bar = tqdm(total=args.steps, initial=start_step, disable=args.no_progress or not is_main, dynamic_ncols=True)
    data_iter = iter(loader)
    t_start = time.time()
    wall_before = history["wall_s"]
    step = start_step
    images_seen, train_s = 0, 0.0
    skipped_loads = history.get("skipped_loads", 0)
    log_file = output / "train_log.jsonl"
    metric, lower_better = ("lpips", True) if recipe.gan else ("psnr_y", False)
    best_key = "best_lpips" if metric == "lpips" else "best_psnr"
    multi = accelerator.num_processes > 1
    accum = args.grad_accum
    models = [trainer.model] + ([trainer.disc] if trainer.disc is not None else [])
    while step < args.steps:
        t0 = time.time()
        loss_sum, parts_sum, d_sum, nonfinite = 0.0, {}, 0.0, False
        for micro in range(accum):  # accelerate's accumulate: the optimisers step on the last batch only
            batch, skipped = next(data_iter)
            skipped_loads += int(skipped.sum())
            hr = hr_to_float(batch).to(accelerator.device).contiguous(memory_format=trainer.memory_format)
            degrade_seed = ((args.seed * 7919 + step * accum + micro) * accelerator.num_processes
                            + accelerator.process_index)
            with accelerator.accumulate(*models):
                loss, parts, d_loss = trainer.losses(hr, degrade_seed)
                nonfinite |= not (bool(torch.isfinite(loss)) and (d_loss is None or bool(torch.isfinite(d_loss))))
                loss_sum += float(loss.detach()) / accum
                for key, value in parts.items():
                    parts_sum[key] = parts_sum.get(key, 0.0) + float(value) / accum
                if d_loss is not None:
                    d_sum += float(d_loss.detach()) / accum
                if micro == accum - 1:
                    out_of_time = bool(args.max_time and (time.time() - t_start) > args.max_time * 60)
                    flags = [float(nonfinite), float(stop["signal"] is not None), float(out_of_time), loss_sum]
                    if multi:  # every process takes the same decision; the loss averaged over all (one all-reduce)
                        flags = accelerator.reduce(torch.tensor(flags, dtype=torch.float64, device=accelerator.device),
                                                   "sum").tolist()
                    global_loss = flags[3] / accelerator.num_processes
                    flags = [v > 0 for v in flags[:3]]
                    if flags[0]:
                        accelerator.print(
                            f"non-finite loss at step {step} (loss {loss_sum}, terms {parts}"
                            + (f", discriminator {d_sum}" if d_loss is not None else "")
                            + "); stopping before the update. "
                            + _last_good(state_dir, history) + ": lower --lr or check the data, then --resume.")
                        accelerator.end_training()
                        return EXIT_NONFINITE
                grad_norm = trainer.update(loss, d_loss, step)
        step += 1
        images_seen += hr.shape[0] * accelerator.num_processes * accum
        train_s += time.time() - t0
        history["wall_s"] = wall_before + (time.time() - t_start)
        history["skipped_loads"] = skipped_loads
        if step % args.log_every == 0 or step == args.steps:
            means = global_mean(accelerator, {**parts_sum, **({"d_loss": d_sum} if d_loss is not None else {})})
            record = {"step": step, "loss": global_loss, **means, "img_per_s": images_seen / max(train_s, 1e-9),
                      "lr": trainer.lr_at(step - 1)}
            if grad_norm is not None:
                record["grad_norm"] = grad_norm
            if skipped_loads:
                record["skipped_loads"] = skipped_loads
            accelerator.log(record, step=step)
            bar.set_postfix(loss=f"{record['loss']:.4f}", ips=f"{record['img_per_s']:.1f}")
            if is_main:
                with log_file.open("a") as fh:
                    fh.write(json.dumps(record) + "\n")
        bar.update(1)
        if guard is not None:
            verdict = guard.observe(step, global_loss, grad_norm)
            history["guard"] = guard.state_dict()
            if verdict:
                kept = ", ".join(f"{f.name}/ (step {check_state(f)[0]['step']})" for f in state_candidates(output)
                                 if check_state(f)[0])
                again = [f"--init-from {output / 'best'}"] if (output / "best").is_dir() else []
                again.append("--init-from a shipped checkpoint" if again else "from scratch or a shipped checkpoint")
                accelerator.print(
                    f"stopped at step {step}: {verdict}. The learning rate is too high for this run: lower --lr "
                    f"(now {trainer.lr_at(step - 1):g}), e.g. by 3-10x, and start again ({' or '.join(again)}, "
                    f"new --output)" + (f", or --resume --resume-changed if a kept state predates step {guard.rise_step} "
                                        f"(kept: {kept})" if kept else "") + ". last/ is not exported.")
                bar.close()
                accelerator.end_training()
                return EXIT_DIVERGED
        if val is not None and (step % args.val_every == 0 or step == args.steps):
            metrics = validate(trainer.export_net, *val)
            accelerator.log({f"val/{k}": v for k, v in metrics.items()}, step=step)
            history["last_val"] = {"step": step, **metrics}
            accelerator.print(f"step {step}: val " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
            best = history.get(best_key, math.inf if lower_better else -math.inf)
            if (metrics[metric] < best) if lower_better else (metrics[metric] > best):
                history[best_key] = metrics[metric]
                history["best_val"] = {"step": step, **metrics}
                export(trainer.export_net, output / "best", context, history, step)
        stopping = flags[1] or flags[2]
        if step % args.save_every == 0 or stopping or step == args.steps:
            if not trainer.params_finite():
                accelerator.print(f"non-finite weights after step {step}: not saving. "
                                  + _last_good(state_dir, history) + ": lower --lr, then --resume.")
                accelerator.end_training()
                return EXIT_NONFINITE
            save_training_state(accelerator, trainer, output, history, step)
        if stopping:
            break
    bar.close()
    code, status = 0, f"finished: {step} steps"
    if step < args.steps and flags[1]:
        name = stop["signal"] or "SIGTERM"  # another process received it
        code = EXIT_SIGNAL_BASE + int(signal.Signals[name])
        status = (f"interrupted by {stop['signal'] or 'a signal'} at step {step} of {args.steps} (state saved; "
                  f"continue with --resume)")
    elif step < args.steps:
        status = f"stopped at --max-time {args.max_time:g} min, step {step} of {args.steps} (state saved; continue with --resume)"
    if step < args.steps:
        why = stop["signal"] or "a signal" if flags[1] else f"--max-time {args.max_time:g} min"
        accelerator.print(f"stopped by {why} at step {step}; state saved in {state_dir}: resume with --resume"
                          + (f" (exit {code})" if code else ""))
    if is_main:
        export(trainer.export_net, output / "last", context, history, step, status=status)
        if args.push_to_hub and step >= args.steps:
            trainer.export_net.push_to_hub(args.push_to_hub, model_card_kwargs={"training": training_record(context, history)})
    accelerator.end_training()
    return code


def _last_good(state_dir: Path, history: dict) -> str:
    if "step" in history:
        return f"The last good state is in {state_dir} (step {history['step']})"
    return "No state was saved yet"


class RunContext:
    """What the training record needs besides the history."""

    def __init__(self, recipe, args, sources, accelerator, trainer):
        self.recipe, self.args, self.sources, self.accelerator, self.trainer = recipe, args, sources, accelerator, trainer
        # resolved once, at the start: the folders behind --init-from may be replaced later
        # (a run warm-started from checkpoints/X is usually shipped back as checkpoints/X)
        self.warm_stages = warm_start_history(args.init_from)


def _ignore_stop_signals(_worker_id: int) -> None:
    """Data workers leave SIGTERM/SIGINT to the main process, which saves and stops cleanly
    (`pkill -f train.py` reaches the workers too; a worker killed first crashed the run)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def apply_loss_override(recipe: Recipe, override: dict[str, float]) -> None:
    """--loss-weights: set or (weight 0) drop loss terms, and say so in the recipe's sources.
    A GAN recipe left without adversarial terms is a pre-training stage (SRGAN pre-trains
    SRResNet on a pixel loss first): it trains no discriminator and keeps the best PSNR."""
    if not override:
        return
    recipe.source["losses"] = (f"overridden on the command line: {override} (recipe: {dict(recipe.losses)}); "
                               + recipe.source.get("losses", ""))
    for term, weight in override.items():
        if weight:
            recipe.losses[term] = float(weight)
        else:
            recipe.losses.pop(term, None)
    if recipe.gan and not set(recipe.losses) & GAN_TERMS:
        recipe.source["gan"] = "dropped: no adversarial term left (pre-training stage, as SRGAN pre-trains SRResNet)"
        recipe.gan = None


def data_sources(args, recipe) -> list[dict]:
    """One entry per --data folder: folder, batch share, crop range and blur rule, checked before
    any step runs (a missing or empty folder, a count that does not match, a share out of range)."""
    folders = args.data
    for folder in folders:
        if not Path(folder).is_dir():
            raise SystemExit(f"--data {folder}: not a folder (give the folder that holds the images)")
    try:
        weights = mix_weights(args.data_weights, len(folders))
    except ValueError as err:
        raise SystemExit(str(err)) from None
    crops = args.crop_range
    if crops is None:
        pairs = [tuple(recipe.crop_range)] * len(folders)
    elif len(crops) in (2, 2 * len(folders)):
        pairs = [tuple(crops[i:i + 2]) for i in range(0, len(crops), 2)] * (len(folders) if len(crops) == 2 else 1)
    else:
        raise SystemExit(f"--crop-range takes MIN MAX once, or once per --data folder ({2 * len(folders)} numbers); "
                         f"got {len(crops)}")
    for pair in pairs:
        check_crop_range(pair)
    drops = args.drop_blurry if len(args.drop_blurry) != 1 else args.drop_blurry * len(folders)
    if len(drops) != len(folders) or any(not 0 <= d < 1 for d in drops):
        raise SystemExit(f"--drop-blurry takes one fraction in [0, 1), or one per --data folder; got {args.drop_blurry}")
    return [{"folder": str(folder), "weight": w, "crop_range": pair, "drop_blurry": drop}
            for folder, w, pair, drop in zip(folders, weights, pairs, drops)]


def validation_crop(args, sources: list[dict], recipe) -> float:
    """Centre-crop fraction of the validation faces: --val-crop, else the middle of the crop range
    of the source they come from (the training face scale), else the recipe's."""
    if args.val_crop is not None:
        if not 0 < args.val_crop <= 1:
            raise SystemExit(f"--val-crop needs 0 < F <= 1, got {args.val_crop:g}")
        return args.val_crop
    folder = Path(args.val_data or args.data[0]).resolve()
    for source in sources:
        if Path(source["folder"]).resolve() == folder:
            return sum(source["crop_range"]) / 2
    return recipe.validation_crop


def check_crop_range(crop_range) -> tuple[float, float]:
    """(MIN, MAX) of a --crop-range pair, or SystemExit saying what a valid one is."""
    low, high = crop_range
    if not 0 < low <= high <= 1:
        raise SystemExit(f"--crop-range needs 0 < MIN <= MAX <= 1, got {low:g} {high:g}")
    return low, high


def set_crop_range(recipe, crop_range) -> None:
    """Apply `--crop-range MIN MAX` (None: keep the recipe's) and mark it as ours in the card."""
    if crop_range is None:
        return
    low, high = check_crop_range(crop_range)
    recipe.crop_range = (low, high)
    paper_low, paper_high = get_recipe(recipe.model).crop_range
    recipe.source["crop_range"] = (f"ours, on the command line: random crops of {low:g}-{high:g} of the shorter side "
                                   f"(recipe: {paper_low:g}-{paper_high:g})")


BENCHMARK_HR = 128  # the CelebA-1000 test crops (x8: 16 -> 128, x4: 32 -> 128)


def validation_size(val_size: int | None, hr_size: int) -> int:
    """Validation HR size: --val-size, else at least the benchmark's. Networks with BatchNorm or
    global pooling trained on small crops can look good on crops of their training size and
    fail at the benchmark's (README, Training: input size), so the best checkpoint is chosen
    at the size it will be measured at."""
    size = val_size or max(hr_size, BENCHMARK_HR)
    if size < 8:
        raise ValueError(f"--val-size must be at least 8 px, got {size}")
    return size


def validation_inputs(hr: torch.Tensor, recipe) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(LR, HR, scale) for validation, fixed for the whole run: bicubic (8-bit) at the largest
    training scale, or for real-world recipes eq. 28 with per-image seeds at scales[0]."""
    if recipe.degradation == "real_world":
        from hub_models.degradations import RealWorldParams, real_world_degrade

        scale = recipe.scales[0]
        params = [RealWorldParams.sample(10_000 + i, hr_size=hr.shape[-1], downscale=1 / scale) for i in range(hr.shape[0])]
        return real_world_degrade(hr, params), hr, scale
    scale = recipe.scales[-1]
    lr = torch.cat([(imresize(chunk, scale=1 / scale) * 255).round().clamp(0, 255) / 255 for chunk in hr.split(16)])
    return lr, hr, scale


@torch.no_grad()
def validate(net, lr: torch.Tensor, hr: torch.Tensor, scale: int) -> dict[str, float]:
    """PSNR/SSIM (Y, DIC protocol) and LPIPS of `net` on fixed validation faces (fp32 upscale in
    PyTorch: an ONNX engine would re-export the changing weights at every validation)."""
    from hub_models import metrics

    was_training, mode, backend = net.training, net.inference_mode, net.inference_backend
    net.eval()
    net.inference_mode, net.inference_backend = "fp32", "torch"
    results: dict[str, list] = {}
    try:
        for lr_chunk, hr_chunk in zip(lr.split(16), hr.split(16)):
            sr = net.upscale(lr_chunk, scale=scale)
            for key, values in metrics.evaluate(sr, hr_chunk.to(sr.device), protocol="dic", scale=scale).items():
                results.setdefault(key, []).append(values)
    finally:
        net.train(was_training)
        net.inference_mode, net.inference_backend = mode, backend
    return {k: float(torch.cat(v).mean()) for k, v in results.items()}


def _hours(wall_time: str) -> float:
    try:
        return float(str(wall_time).split()[0])
    except (ValueError, IndexError):
        return 0.0


def warm_start_history(init_from: str | None, _depth: int = 0) -> list[dict]:
    """The training stages behind `--init-from` weights (from their training.json, following
    their own warm starts), oldest first, so a card of warm-started weights accounts for all
    the training they had."""
    if not init_from or init_from == "none" or _depth > 20:
        return []
    folder = Path(init_from) if Path(init_from).is_dir() else hub_models.registry.CHECKPOINT_DIR / init_from
    try:
        prev = json.loads((folder / "training.json").read_text())
    except (OSError, ValueError):
        return [{"from": init_from, "steps": None, "wall time": "unknown"}]
    earlier = prev["_stages"] if "_stages" in prev else warm_start_history(prev.get("warm start"), _depth + 1)
    used = prev.get("recipe") or {}
    stage = {"from": init_from, "steps": prev.get("steps"), "wall time": prev.get("wall time", "unknown"),
             "hardware": prev.get("hardware"), "lr": used.get("lr"), "lr_halve_every": used.get("lr_halve_every", 0),
             "hr_size": used.get("hr_size"), "crop_range": used.get("crop_range")}
    return list(earlier) + [stage]


def _crops(stage: dict) -> str:
    """", HR 64 from 0.57-0.8 crops" for stages that recorded their crops (older ones did not)."""
    if not stage.get("hr_size"):
        return ""
    if not stage.get("crop_range"):
        return f", HR {stage['hr_size']}"
    low, high = stage["crop_range"]
    return f", HR {stage['hr_size']} from {low:g}-{high:g} crops"


def add_warm_start_history(record: dict, stages: list[dict] | None = None) -> dict:
    """Record the stages behind record["warm start"] (`stages`, else resolved now, unless the
    record has them) as `_stages`, plus the card's lines and totals (in place; returns it)."""
    if "_stages" not in record:
        record["_stages"] = stages if stages is not None else warm_start_history(record.get("warm start"))
    stages = record["_stages"]  # machine-readable; the card shows the lines below
    if stages:
        record["earlier training"] = [
            f"{st.get('steps')} steps, {st.get('wall time')}, lr {st.get('lr')}"
            f"{' halved every ' + str(st['lr_halve_every']) + ' steps' if st.get('lr_halve_every') else ''}"
            f"{_crops(st)}, {st.get('hardware')}" for st in stages]
        record["total training"] = (f"{sum(st.get('steps') or 0 for st in stages) + (record.get('steps') or 0)} steps, "
                                    f"{sum(_hours(st.get('wall time')) for st in stages) + _hours(record.get('wall time')):.2f} h")
    return record


def training_record(context: RunContext, history: dict) -> dict:
    recipe, args, sources, accelerator, trainer = (context.recipe, context.args, context.sources,
                                                   context.accelerator, context.trainer)
    device = accelerator.device
    hardware = (torch.cuda.get_device_name(device) if device.type == "cuda"
                else f"CPU ({cpu_model_name()}, {torch.get_num_threads()} threads)")
    parts = []
    for source in sources:
        blur = source.get("blur", {})
        part = (f"{source['folder']} ({args.train_list or 'all images'}; {source['weight']:.0%} of each batch; crops "
                f"{source['crop_range'][0]:g}-{source['crop_range'][1]:g}); {blur.get('rule')} "
                f"({blur.get('kept', '?')} of {blur.get('of', '?')} kept)")
        if blur.get("unreadable"):
            part += f"; {blur['unreadable']} unreadable image(s) skipped"
        parts.append(part)
    data = " + ".join(parts)
    if history.get("skipped_loads"):
        data += f"; {history['skipped_loads']} load(s) of unreadable images replaced by the next image"
    record = {
        "datasets": [Path(source["folder"]).resolve().name for source in sources],
        "data": data,
        "data sources": [{"folder": Path(src["folder"]).resolve().name, "weight": src["weight"],
                          "crop_range": list(src["crop_range"]), "drop_blurry": src["drop_blurry"],
                          "kept": src.get("blur", {}).get("kept"), "of": src.get("blur", {}).get("of")}
                         for src in sources],
        "steps": history.get("step"),
        "batch": (f"{recipe.batch_size} x {accelerator.num_processes} process(es)"
                  + (f" x {args.grad_accum} accumulated (gradient accumulation: "
                     f"{recipe.batch_size * accelerator.num_processes * args.grad_accum} images per step)"
                     if args.grad_accum > 1 else "")
                  + f", HR crops {recipe.hr_size}x{recipe.hr_size}"),
        "wall time": f"{history['wall_s'] / 3600:.2f} h",
        "hardware": f"{accelerator.num_processes} x {hardware}",
        "precision": precision_name(accelerator.mixed_precision) + (", channels_last" if args.channels_last else ""),
        "recipe": {"losses": recipe.losses, "lr": recipe.lr, "betas": recipe.betas, "scales": recipe.scales,
                   "degradation": recipe.degradation, "lr_halve_every": recipe.lr_halve_every,
                   "hr_size": recipe.hr_size, "crop_range": list(recipe.crop_range)},
        "recipe sources": recipe.source,
        "perceptual network": trainer.features.description if trainer.features is not None else "none",
        "warm start": args.init_from or "none",
        "weights": (f"exponential moving average, decay {args.ema} (warm-up min(decay, (1+t)/(10+t)))"
                    if trainer.ema is not None else "the trained weights (no EMA)"),
        "validation": (f"{args.val_pick} {args.val_count} of {Path(args.val_data or args.data[0]).resolve().name}/"
                       f"{args.val_list}, centre squares ({validation_crop(args, sources, recipe):.2f} of the "
                       f"shorter side) resized to {history.get('val_size', recipe.hr_size)}px, "
                       f"{recipe.degradation} degradation; best checkpoint by "
                       f"{'LPIPS' if recipe.gan else 'PSNR-Y'}") if args.val_list else "none",
        "best validation": history.get("best_val", "n/a"),
        "bicubic on validation": history.get("val_bicubic", "n/a"),
        "final validation": history.get("last_val", "n/a"),
    }
    if accelerator.num_processes > 1:
        record["batchnorm"] = (f"SyncBatchNorm over {accelerator.num_processes} processes ({trainer.sync_bn_layers} layers)"
                               if trainer.sync_bn_layers else
                               "per process (--no-sync-bn)" if batchnorm_count(trainer.net) + (
                                   batchnorm_count(trainer.disc_net) if trainer.disc_net is not None else 0)
                               else "no BatchNorm layers")
    if history.get("resumed with changes"):
        record["resumed with changes"] = history["resumed with changes"]
    add_warm_start_history(record, context.warm_stages)
    if recipe.gan:
        record["discriminator"] = {"class": type(trainer.disc_net).__name__, "config": trainer.disc_kwargs,
                                   "adversarial": recipe.gan.adversarial, "lr": recipe.gan.lr, "betas": recipe.gan.betas}
    return record


def export(net, folder: Path, context: RunContext, history: dict, step: int, status: str | None = None):
    """save_pretrained + training.json (the card's training record, kept for later card rewrites);
    `step` is the step of the exported weights (history["step"] is the last saved state's);
    `status`: how the run ended (finished, interrupted by a signal, --max-time)."""
    record = training_record(context, {**history, "step": step})
    if status:
        record["status"] = status
    net.save_pretrained(folder, model_card_kwargs={"training": record})
    (folder / "training.json").write_text(json.dumps(record, indent=2, default=str))


if __name__ == "__main__":
    sys.exit(main())
