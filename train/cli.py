"""The options of `python -m train.train`: what to train, on what, for how long, and how the
run is kept (states, validation, precision). Defaults come from the model's recipe
(train/recipes.py); what differs from it is recorded in the card (train/config.py).
"""

from __future__ import annotations

import argparse

from train.config import BENCHMARK_HR
from train.recipes import RECIPES


def parse_args(argv=None, description: str | None = None) -> argparse.Namespace:
    """The options of `python -m train.train` (`description`: the --help text above them)."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    p.add_argument("--clean-fraction", type=float, metavar="F",
                   help="real-world recipes: share of samples trained on the plain bicubic LR (default: the recipe's, 0)")
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
                        "sharpest faces rank checkpoints the way CelebA does (docs/training.md: Sharpness and validation)")
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
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the training step (accelerate's dynamo_backend inductor, as `accelerate launch "
                        "--dynamo_backend inductor`). On this CPU in bf16: AGRNet faster, RAFSR NaN gradients "
                        "(the run stops at step 1 and says so); fp32 gains little (bench.train_speed, docs/training.md)")
    p.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                   help="keep an exponential moving average of the generator weights (e.g. 0.999) and export it")
    p.add_argument("--max-time", type=float, default=0, help="stop cleanly (state saved) after this many minutes")
    p.add_argument("--push-to-hub", metavar="REPO_ID", help="push the final model (needs a token and network)")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)
