"""Train any registered model with its paper's recipe, on one CPU, one GPU or many GPUs.

    accelerate launch train/train.py --model rafsr --data ../shared/data/utkface \\
        --train-list train.txt --val-list val.txt --steps 20000 --output runs/rafsr-x4

The output folder holds `state/` (accelerate's full training state, for --resume),
`best/` and `last/` (save_pretrained folders that hub_models.load reads, with a card),
`logs/` (TensorBoard) and `train_log.jsonl`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import signal
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `accelerate launch train/train.py` from the repo root

import hub_models  # noqa: E402
from hub_models.degradations import imresize  # noqa: E402
from train.data import FaceCrops, StepSampler, drop_blurriest, hr_to_float, list_images  # noqa: E402
from train.losses import Criterion  # noqa: E402
from train.recipes import RECIPES, get_recipe  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, choices=sorted(RECIPES), help="architecture (its paper's recipe is used)")
    p.add_argument("--data", required=True, help="folder of HR face images")
    p.add_argument("--train-list", help="file with image names (relative to --data) to train on")
    p.add_argument("--val-list", help="file with image names for validation (default: no validation)")
    p.add_argument("--output", required=True, help="run folder (state, checkpoints, logs)")
    p.add_argument("--steps", type=int, required=True, help="total optimisation steps")
    p.add_argument("--batch-size", type=int, help="per-process batch (default: the recipe's)")
    p.add_argument("--lr", type=float, help="learning rate (default: the recipe's)")
    p.add_argument("--scale", type=int, nargs="+", help="training scale(s) (default: the recipe's)")
    p.add_argument("--hr-size", type=int, help="HR crop size (default: the recipe's)")
    p.add_argument("--model-kwargs", default="{}", help="JSON dict of model config overrides")
    p.add_argument("--init-from", help="warm start: a saved model folder or checkpoint name")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT/state if it exists")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--drop-blurry", type=float, default=0.1, help="drop this fraction of blurriest training images")
    p.add_argument("--save-every", type=int, default=200, help="save_state every N steps (SIGKILL loses at most N)")
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument("--val-count", type=int, default=64, help="validation images (first N of --val-list)")
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--workers", type=int, default=1, help="data loader worker processes")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--mixed-precision", choices=["no", "bf16", "fp16"], default=None,
                   help="default: accelerate's launch flag, else bf16 where the hardware has it, else fp32")
    p.add_argument("--max-time", type=float, default=0, help="stop cleanly (state saved) after this many minutes")
    p.add_argument("--push-to-hub", metavar="REPO_ID", help="push the final model (needs a token and network)")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def degrade(hr: torch.Tensor, scales: list[int], kind: str, seed: int, pre_upsampled: bool):
    """LR input for the network and the scale per sample.

    Multi-scale recipes draw a scale per sample (pre-upsampled models only: every sample
    comes back at the HR size); single-scale models use scales[0]. LR images are
    quantised to 8 bits, as a saved LR image would be.
    """
    gen = torch.Generator().manual_seed(seed)
    n = hr.shape[0]
    if len(scales) > 1 and not pre_upsampled:
        raise ValueError("several training scales need a pre-upsampled model")
    picks = [scales[int(i)] for i in torch.randint(len(scales), (n,), generator=gen)] if len(scales) > 1 else [scales[0]] * n
    if kind == "real_world":
        from hub_models.degradations import RealWorldParams, real_world_degrade

        params = [RealWorldParams.sample(seed * 1009 + i, hr_size=hr.shape[-1]) for i in range(n)]
        lr = real_world_degrade(hr, params)
        lr = (lr * 255).round().clamp(0, 255) / 255
        if pre_upsampled and lr.shape[-1] != hr.shape[-1]:
            lr = imresize(lr, size=hr.shape[-2:]).clamp(0, 1)
        return lr, picks[0]
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


def default_precision() -> str:
    """bf16 where the hardware computes it natively (CUDA with bf16, CPUs with AVX512-BF16/AMX),
    else fp32: on an AVX2-only CPU bf16 is emulated and measured ~10x slower than fp32
    (see the README's training-speed table)."""
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "no"


def main(argv=None) -> int:
    args = parse_args(argv)
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    recipe = get_recipe(args.model)
    recipe.batch_size = args.batch_size or recipe.batch_size
    recipe.lr = args.lr or recipe.lr
    recipe.scales = args.scale or recipe.scales
    recipe.hr_size = args.hr_size or recipe.hr_size
    recipe.model_kwargs.update(json.loads(args.model_kwargs))
    output = Path(args.output)
    mixed = args.mixed_precision or os.environ.get("ACCELERATE_MIXED_PRECISION") or default_precision()
    accelerator = Accelerator(mixed_precision=mixed, log_with="tensorboard", project_dir=str(output / "logs"))
    is_main = accelerator.is_main_process
    set_seed(args.seed)

    # -- model, optimiser ---------------------------------------------------------------
    cls = hub_models.get_class(recipe.model)
    if args.init_from:
        model = hub_models.load(args.init_from)
        if model.architecture != recipe.model:
            raise SystemExit(f"--init-from {args.init_from} is a {model.architecture}, not a {recipe.model}")
        accelerator.print(f"warm start from {args.init_from}")
    else:
        kwargs = dict(recipe.model_kwargs)
        init_params = cls._hub_mixin_init_parameters
        if "scales" in init_params and "scales" not in kwargs:
            kwargs["scales"] = recipe.scales
        elif "scale" in init_params and "scale" not in kwargs:
            kwargs["scale"] = recipe.scales[0]
        model = cls(**kwargs)
    bad_scales = set(recipe.scales) - set(model.supported_scales)
    if bad_scales:
        raise SystemExit(f"{recipe.model} with this config supports {model.supported_scales}, not {sorted(bad_scales)}")
    model.train()
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr, betas=recipe.betas, eps=recipe.eps)
    halve = recipe.lr_halve_every
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 ** (s // halve) if halve else 1.0)
    disc = d_opt = None
    if recipe.gan:
        if cls.discriminator_cls is None:
            raise SystemExit(f"recipe for {recipe.model} is adversarial but the class names no discriminator")
        disc = cls.discriminator_cls(**recipe.gan.discriminator_kwargs).train().to(memory_format=memory_format)
        d_opt = torch.optim.Adam(disc.parameters(), lr=recipe.gan.lr, betas=recipe.gan.betas)
        model, opt, sched, disc, d_opt = accelerator.prepare(model, opt, sched, disc, d_opt)
    else:
        model, opt, sched = accelerator.prepare(model, opt, sched)
    net = accelerator.unwrap_model(model)
    features = None
    if set(recipe.losses) & {"perceptual", "perceptual_mse", "texture"}:
        from train.perceptual import feature_network

        features = feature_network(accelerator.device)
    criterion = Criterion(recipe.losses, features)

    # -- resume -------------------------------------------------------------------------
    state_dir = output / "state"
    start_step = 0
    history: dict = {"best_psnr": -math.inf, "wall_s": 0.0}
    if args.resume and (state_dir / "train_state.json").is_file():
        accelerator.load_state(str(state_dir))
        history = json.loads((state_dir / "train_state.json").read_text())
        start_step = history["step"]
        accelerator.print(f"resumed from step {start_step} ({state_dir})")
    elif args.resume:
        accelerator.print(f"--resume: no state in {state_dir}, starting from step 0")

    # -- data ---------------------------------------------------------------------------
    paths = list_images(args.data, args.train_list)
    paths, blur_info = drop_blurriest(paths, args.drop_blurry, cache_dir=output / "cache")
    dataset = FaceCrops(paths, recipe.hr_size, tuple(recipe.crop_range), recipe.rotate90)
    sampler = StepSampler(len(dataset), recipe.batch_size, args.seed, start_step,
                          accelerator.process_index, accelerator.num_processes)
    loader = torch.utils.data.DataLoader(dataset, batch_size=recipe.batch_size, sampler=sampler,
                                         num_workers=args.workers, persistent_workers=args.workers > 0)
    val_hr = None
    if args.val_list:
        val_paths = list_images(args.data, args.val_list)[: args.val_count]
        val_hr = torch.stack([hr_to_float(torch.from_numpy(_center_square(p, recipe.hr_size))) for p in val_paths])

    if is_main:
        output.mkdir(parents=True, exist_ok=True)
        accelerator.init_trackers("train", config={"model": recipe.model, "batch": recipe.batch_size, "lr": recipe.lr})

    stop = {"signal": None}

    def request_stop(signum, _frame):
        stop["signal"] = signal.Signals(signum).name

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    def save_state(step: int):
        accelerator.wait_for_everyone()
        accelerator.save_state(str(state_dir))
        if is_main:
            history["step"] = step
            (state_dir / "train_state.json").write_text(json.dumps(history))

    # -- loop ---------------------------------------------------------------------------
    from tqdm import tqdm

    bar = tqdm(total=args.steps, initial=start_step, disable=args.no_progress or not is_main, dynamic_ncols=True)
    data_iter = iter(loader)
    t_start = time.time()
    wall_before = history["wall_s"]
    step = start_step
    images_seen = 0
    log_file = output / "train_log.jsonl"
    while step < args.steps:
        hr = hr_to_float(next(data_iter)).to(accelerator.device).contiguous(memory_format=memory_format)
        lr_in, scale = degrade(hr, recipe.scales, recipe.degradation, seed=args.seed * 7919 + step, pre_upsampled=net.pre_upsampled)
        scale = scale or recipe.scales[0]
        gan_terms = {}
        d_loss_value = None
        with accelerator.autocast():
            if disc is not None:
                sr, gan_terms, d_loss_value = _gan_step(model, net, disc, d_opt, accelerator, lr_in, hr, scale, recipe)
            else:
                sr = model(lr_in)
            loss, parts = criterion(sr, hr, gan_terms)
        if not torch.isfinite(loss):
            accelerator.print(
                f"non-finite loss ({loss.item()}) at step {step} (terms {parts}); stopping. "
                f"The last good state is in {state_dir} (step {history.get('step', 0)}): "
                "lower --lr or check the data, then --resume."
            )
            return 3
        accelerator.backward(loss)
        if recipe.grad_clip:
            accelerator.clip_grad_norm_(model.parameters(), recipe.grad_clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        images_seen += hr.shape[0] * accelerator.num_processes
        elapsed = time.time() - t_start
        history["wall_s"] = wall_before + elapsed
        if step % args.log_every == 0 or step == args.steps:
            record = {"step": step, "loss": loss.item(), **parts, "img_per_s": images_seen / max(elapsed, 1e-9),
                      "lr": sched.get_last_lr()[0]}
            if d_loss_value is not None:
                record["d_loss"] = d_loss_value
            accelerator.log(record, step=step)
            bar.set_postfix(loss=f"{loss.item():.4f}", ips=f"{record['img_per_s']:.1f}")
            if is_main:
                with log_file.open("a") as fh:
                    fh.write(json.dumps(record) + "\n")
        bar.update(1)
        if val_hr is not None and (step % args.val_every == 0 or step == args.steps) and is_main:
            metrics = validate(net, val_hr, recipe.scales[-1])
            accelerator.log({f"val/{k}": v for k, v in metrics.items()}, step=step)
            history["last_val"] = {"step": step, **metrics}
            accelerator.print(f"step {step}: val " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
            if metrics["psnr_y"] > history["best_psnr"]:
                history["best_psnr"] = metrics["psnr_y"]
                history["best_val"] = {"step": step, **metrics}
                export(net, output / "best", recipe, args, history, blur_info, accelerator)
        out_of_time = args.max_time and (time.time() - t_start) > args.max_time * 60
        if step % args.save_every == 0 or stop["signal"] or out_of_time or step == args.steps:
            save_state(step)
        if stop["signal"] or out_of_time:
            why = stop["signal"] or f"--max-time {args.max_time} min"
            accelerator.print(f"stopped by {why} at step {step}; state saved in {state_dir}: resume with --resume")
            break
    bar.close()
    if is_main:
        export(net, output / "last", recipe, args, history, blur_info, accelerator)
        if args.push_to_hub and step >= args.steps:
            net.push_to_hub(args.push_to_hub, model_card_kwargs={"training": training_record(recipe, args, history, blur_info, accelerator)})
    accelerator.end_training()
    return 0


def _gan_step(model, net, disc, d_opt, accelerator, lr_in, hr, scale, recipe):
    """One discriminator update, then the generator's adversarial terms.

    The discriminator sees real and fake in one forward (DDP allows one forward per
    backward); the generator's terms call the unwrapped discriminator so its DDP hooks do
    not fire twice; its parameter grads from that pass are cleared before its next step.
    """
    from train.gan import discriminator_loss, generator_gan_terms

    multiscale = hasattr(net, "forward_multiscale")
    fakes = net.forward_multiscale(lr_in) if multiscale else [model(lr_in)]
    reals = [F.interpolate(hr, size=f.shape[-2:], mode="area") if f.shape[-1] != hr.shape[-1] else hr for f in fakes]
    d_loss = discriminator_loss(disc, [f.detach() for f in fakes], reals, recipe.gan.adversarial, multiscale)
    accelerator.backward(d_loss)
    d_opt.step()
    d_opt.zero_grad(set_to_none=True)
    terms = generator_gan_terms(accelerator.unwrap_model(disc), fakes, reals, recipe.gan.adversarial, multiscale)
    return fakes[-1], terms, float(d_loss.detach())


def _center_square(path: Path, size: int):
    import cv2

    from train.data import read_rgb

    image = read_rgb(path)
    if image is None:
        raise FileNotFoundError(f"validation image {path} is unreadable")
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    image = image[top : top + side, left : left + side]
    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA) if side != size else image
    return image.transpose(2, 0, 1).copy()


@torch.no_grad()
def validate(net, hr: torch.Tensor, scale: int) -> dict[str, float]:
    """PSNR/SSIM (Y, DIC protocol) and LPIPS of `net` on fixed validation faces."""
    from hub_models import metrics

    was_training = net.training
    net.eval()
    results: dict[str, list] = {}
    for chunk in hr.split(16):
        lr = (imresize(chunk, scale=1 / scale) * 255).round().clamp(0, 255) / 255
        sr = net.upscale(lr, scale=scale)
        for key, values in metrics.evaluate(sr, chunk, protocol="dic", scale=scale).items():
            results.setdefault(key, []).append(values)
    net.train(was_training)
    return {k: float(torch.cat(v).mean()) for k, v in results.items()}


def training_record(recipe, args, history, blur_info, accelerator) -> dict:
    device = accelerator.device
    hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    return {
        "datasets": ["utkface"],
        "data": f"{args.data} ({args.train_list or 'all images'}); {blur_info.get('rule')} ({blur_info.get('kept', '?')} of {blur_info.get('of', '?')} kept)",
        "steps": history.get("step"),
        "batch": f"{recipe.batch_size} x {accelerator.num_processes} process(es), HR crops {recipe.hr_size}x{recipe.hr_size}",
        "wall time": f"{history['wall_s'] / 3600:.2f} h",
        "hardware": f"{accelerator.num_processes} x {hardware}",
        "precision": f"{accelerator.mixed_precision}" + (", channels_last" if args.channels_last else ""),
        "recipe": {"losses": recipe.losses, "lr": recipe.lr, "betas": recipe.betas, "scales": recipe.scales, "degradation": recipe.degradation},
        "recipe sources": recipe.source,
        "warm start": args.init_from or "none",
        "best validation": history.get("best_val", "n/a"),
        "final validation": history.get("last_val", "n/a"),
    }


def export(net, folder: Path, recipe, args, history, blur_info, accelerator):
    net.save_pretrained(folder, model_card_kwargs={"training": training_record(recipe, args, history, blur_info, accelerator)})


if __name__ == "__main__":
    sys.exit(main())
