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

The script reads top to bottom: options (train/cli.py) -> recipe and data sources
(train/config.py) -> accelerator, Trainer (train/trainer.py: model, optimisers, losses, EMA)
-> resume (train/state.py) -> data and validation faces -> the loop (one step, log, guard,
validate, save) -> export with the training record (train/record.py).
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from pathlib import Path

import torch

import hub_models
from hub_models.evaluation import score
from train.cli import parse_args
from train.config import configure, default_precision, precision_name, validation_crop, validation_size
from train.data import (FaceCrops, MixedCrops, StepSampler, center_square, drop_blurriest, hr_to_float, list_images,
                        sharpest, sharpness)
from train.degrade import validation_inputs
from train.distributed import batchnorm_count, global_mean
from train.guard import DivergenceGuard
from train.record import RunContext, export, training_record
from train.state import check_state, resume_state, run_identity, save_training_state, state_candidates, truncate_log
from train.trainer import Trainer

EXIT_NONFINITE = 3
EXIT_DIVERGED = 4
EXIT_SIGNAL_BASE = 128  # + the signal's number: 130 SIGINT, 143 SIGTERM


@torch.no_grad()
def validate(net, lr: torch.Tensor, hr: torch.Tensor, scale: int) -> dict[str, float]:
    """The card protocol's scores (`hub_models.evaluation.score`: PSNR/SSIM on Y, DIC protocol,
    LPIPS) of `net` on the fixed validation faces, as an fp32 upscale in PyTorch (an ONNX engine
    would re-export the changing weights at every validation)."""
    was_training, mode, backend = net.training, net.inference_mode, net.inference_backend
    net.eval()
    net.inference_mode, net.inference_backend = "fp32", "torch"
    try:
        return score(net, lr, hr, scale, protocol="dic")
    finally:
        net.train(was_training)
        net.inference_mode, net.inference_backend = mode, backend


# measured (bench.train_speed, docs/training.md): inductor's bf16 backward on the CPU gives RAFSR NaN
# gradients in its first step, while AGRNet trains faster compiled and its gradients stay finite
COMPILE_BF16_HINT = (" With --compile and bf16 this is likely inductor's bf16 backward (RAFSR's gradients turn NaN "
                     "on the CPU with torch 2.14.1): drop --compile, or add --mixed-precision no.")


def main(argv=None) -> int:
    args = parse_args(argv, description=__doc__)
    if args.threads:
        torch.set_num_threads(args.threads)
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    recipe, sources = configure(args)
    output = Path(args.output)
    if args.grad_accum < 1:
        raise SystemExit(f"--grad-accum must be >= 1, got {args.grad_accum}")
    try:
        guard = DivergenceGuard(args.diverge_factor, args.diverge_steps, args.diverge_window,
                                args.diverge_grad_factor) if args.diverge_factor else None
    except ValueError as err:
        raise SystemExit(f"--diverge-*: {err}") from None
    listed = [list_images(source["folder"], args.train_list) for source in sources]

    # -- accelerator, model ---------------------------------------------------------------
    mixed = args.mixed_precision or os.environ.get("ACCELERATE_MIXED_PRECISION") or default_precision()
    # without cpu=True, accelerate treats processes launched on a machine without CUDA (e.g.
    # `accelerate launch --multi_gpu --num_processes 2` on a CPU box) as independent
    # single-process runs; with it they form one gloo process group (MULTI_CPU)
    launched = int(os.environ.get("WORLD_SIZE") or 0)  # set by torchrun / accelerate launch
    accelerator = Accelerator(mixed_precision=mixed, log_with="tensorboard", project_dir=str(output / "logs"),
                              cpu=not torch.cuda.is_available(), gradient_accumulation_steps=args.grad_accum,
                              dynamo_backend="inductor" if args.compile else None)  # None: accelerate's launch flag
    if launched and launched != accelerator.num_processes:
        raise SystemExit(f"{launched} processes were launched but accelerate formed a group of {accelerator.num_processes}")
    is_main = accelerator.is_main_process
    print(f"process {accelerator.process_index} of {accelerator.num_processes} on {accelerator.device}, "
          f"precision {precision_name(accelerator.mixed_precision)}", flush=True)
    set_seed(args.seed)

    trainer = Trainer(recipe, accelerator, init_from=args.init_from, channels_last=args.channels_last,
                      model_kwargs=json.loads(args.model_kwargs) if args.init_from else None,  # checked against its config
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

    # -- resume ---------------------------------------------------------------------------
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
        accelerator.print(f"--resume: no state in {output / 'state'}, starting from step 0")
    history["val_size"] = val_size
    if is_main:
        dropped = truncate_log(output / "train_log.jsonl", start_step)
        if dropped:
            accelerator.print(f"train_log.jsonl: {dropped} line(s) past step {start_step} removed (written after the "
                              f"state this run continues from)")

    # -- data -----------------------------------------------------------------------------
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
        val = validation_faces(args, sources, recipe, val_size)
        # the reference the validation figures are read against (the log's val lines, the card)
        history["val_bicubic"] = validate(hub_models.get_class("bicubic")(scale=val[2]), *val)
        accelerator.print("validation bicubic: " + ", ".join(f"{k} {v:.4f}" for k, v in history["val_bicubic"].items()))

    if is_main:
        output.mkdir(parents=True, exist_ok=True)
        accelerator.init_trackers("train", config={"model": recipe.model, "batch": recipe.batch_size, "lr": recipe.lr,
                                                   "processes": accelerator.num_processes, "precision": accelerator.mixed_precision})

    # -- the loop, stoppable by SIGTERM / SIGINT ------------------------------------------
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


def validation_faces(args, sources, recipe, val_size: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(LR, HR, scale) of the run's fixed validation faces: --val-count of --val-list (the first,
    or the sharpest centre crops), centre squares at the training face scale, `val_size` px."""
    val_paths = list_images(args.val_data or args.data[0], args.val_list)
    if args.val_pick == "first":
        val_paths = val_paths[: args.val_count]
    crops = [center_square(p, val_size, validation_crop(args, sources, recipe)) for p in val_paths]
    if args.val_pick == "sharpest":
        crops = [crops[i] for i in sharpest([sharpness(c) for c in crops], args.val_count)]
    return validation_inputs(torch.stack([hr_to_float(torch.from_numpy(c)) for c in crops]), recipe)


def _stop_data_workers(loader) -> None:
    """Join the data workers now: they ignore SIGTERM (below), so after an error the exit-time
    terminate() of multiprocessing could not end them and the crashed run hung in wait()."""
    iterator = getattr(loader, "_iterator", None)  # persistent workers keep theirs on the loader
    if iterator is not None and hasattr(iterator, "_shutdown_workers"):
        iterator._shutdown_workers()


def _loop(args, recipe, accelerator, trainer, loader, val, history, start_step, output, context, stop,
          guard: DivergenceGuard | None = None) -> int:
    """Steps from `start_step` to --steps: the (accumulated) batch, one check that every
    process's loss is finite, the update, the log line, the divergence guard, validation (and
    best/), the state; then last/. Returns the exit code."""
    is_main = accelerator.is_main_process
    state_dir = output / "state"
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
                            + _last_good(state_dir, history) + ": lower --lr or check the data, then --resume."
                            + (COMPILE_BF16_HINT if args.compile and accelerator.mixed_precision == "bf16" else ""))
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
                accelerator.print(_divergence_advice(output, trainer, guard, step, verdict))
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
    code, status = 0, {"ended": "finished", "step": step, "steps": args.steps}
    if step < args.steps and flags[1]:
        name = stop["signal"] or "SIGTERM"  # another process received it
        code = EXIT_SIGNAL_BASE + int(signal.Signals[name])
        status.update(ended="signal", signal=stop["signal"])
    elif step < args.steps:
        status.update(ended="max_time", max_time=args.max_time)
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


def _divergence_advice(output: Path, trainer, guard: DivergenceGuard, step: int, verdict: str) -> str:
    """What stopped the run and how to go on: a lower --lr from best/ or a checkpoint, or a
    kept state from before the rise."""
    kept = ", ".join(f"{f.name}/ (step {check_state(f)[0]['step']})" for f in state_candidates(output)
                     if check_state(f)[0])
    again = [f"--init-from {output / 'best'}"] if (output / "best").is_dir() else []
    again.append("--init-from a shipped checkpoint" if again else "from scratch or a shipped checkpoint")
    return (f"stopped at step {step}: {verdict}. The learning rate is too high for this run: lower --lr "
            f"(now {trainer.lr_at(step - 1):g}), e.g. by 3-10x, and start again ({' or '.join(again)}, "
            f"new --output)" + (f", or --resume --resume-changed if a kept state predates step {guard.rise_step} "
                                f"(kept: {kept})" if kept else "") + ". last/ is not exported.")


def _last_good(state_dir: Path, history: dict) -> str:
    if "step" in history:
        return f"The last good state is in {state_dir} (step {history['step']})"
    return "No state was saved yet"


def _ignore_stop_signals(_worker_id: int) -> None:
    """Data workers leave SIGTERM/SIGINT to the main process, which saves and stops cleanly
    (`pkill -f train.py` reaches the workers too; a worker killed first crashed the run)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


if __name__ == "__main__":
    sys.exit(main())
