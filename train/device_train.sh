#!/usr/bin/env bash
# One prepared GPU call: train the models that need no perceptual network (L1/L2 recipes)
# side by side on one GPU for MINUTES each, and hand back their run folders as a few
# <= 15 MB archive parts under $OUT (the device tool returns at most 8 files of 16 MiB).
#
#   On this machine, once:   python -m train.pack_data ../shared/data/celeba_wild data_cache/celeba_wild --max-mb 11
#                            python -m train.pack_data ../shared/data/utkface data_cache/utkface --max-mb 11
#                            pip download --no-deps lpips==0.1.4 -d data_cache/wheels
#                            (checkout + data_cache must stay within the 64 MiB the device tool carries)
#   Device tool `run`:       bash train/device_train.sh 9      carry: ["data_cache"]
#   Back here:               cat <files_at>/runs.tgz.part-* | tar xzf -      # -> runs/dev-*/
#                            python -m train.ship runs/dev-agrnet-x8/best --name agrnet-x8 \
#                                --celeba ../shared/data/celeba_test1000/HR --utk ../shared/data/utkface
#
# JOBS (env) picks a subset, e.g. JOBS="agrnet-x8 vdsr-x4". TINY=1 runs the tiny test configs
# without warm starts (seconds on a CPU: how the test suite checks this script).
# The GAN stages (crlnet-x4/x8, AGRNet-HR) and MFFCN's full loss need the VGG16 perceptual weights
# (train/perceptual.py), which do not fit in the 64 MiB the device tool carries beside the data:
# a second call for them needs a smaller data copy plus $FACESR_CACHE/vgg16_imagenet.safetensors.
# CRLNet's L1 pre-training stage (crlnet-psnr-x*) needs no perceptual network and runs here.
set -u
MINUTES=${1:-9}
RUNS=${RUNS:-runs}
OUT=${OUT:-$RUNS/device_out}
DATA=${DATA:-data_cache/utkface}
WILD=${WILD:-data_cache/celeba_wild}  # the benchmark-framed faces; without them the jobs train on UTKFace alone
PY=${PYTHON:-python3}  # the device image's python3 holds torch
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
cd "$(dirname "$0")/.."

# name | model | scale ("-" = the recipe's) | warm start ("-" = none) | extra arguments
# SHARP: the latest CPU recipe (README, Training: sharpness and validation): crops near the
# CelebA test faces' scale, only the sharpest 40% of UTKFace's training faces, validation on the
# sharpest centre crops. The 32 MB pack already holds only the sharpest 6,018 of 9,304 training
# faces, so dropping 0.4 of it keeps about the same 3,600 faces as the CPU runs' 0.6 of all.
# SHARP128: BatchNorm nets (CRLNet, AGRNet) train on LR inputs of the benchmark's size, 128-px HR
# (README, Input size; AGRNet's encoder goes 128 -> 16 px, as in the paper).
# MIX (when $WILD is carried): the data_mix winner the shipped RAFSR/RDAN weights use, celeba_wild +
# UTKFace 1:1, benchmark framing for celeba_wild, validation on celeba_wild val at 128 px.
if [ -d "$WILD" ]; then
  DATA_ARGS="--data $WILD $DATA --data-weights 1 1 --val-data $WILD --val-count 100 --val-size 128"
  SHARP="--hr-size 96 --crop-range 0.75 0.85 0.85 1.0 --drop-blurry 0 0.4"
  SHARP128="--hr-size 128 --crop-range 0.75 0.85 0.85 1.0 --drop-blurry 0 0.4"
else
  DATA_ARGS="--data $DATA"
  SHARP="--hr-size 96 --crop-range 0.85 1.0 --drop-blurry 0.4 --val-size 104 --val-pick sharpest"
  SHARP128="--hr-size 128 --crop-range 0.57 0.8 --drop-blurry 0.4 --val-pick sharpest"
fi
L1_ONLY='--loss-weights {"perceptual_mse":0,"adversarial":0,"l1":1}'
# AGRNet-HR's L1 stage (its GAN terms dropped) at 128 px, widths that fit the checkout (train/plan.py)
AGRNET_HR_L1='--model-kwargs {"widths":[32,32,64,64]} --loss-weights {"adversarial":0,"feature_matching":0,"perceptual":0,"l1":1}'
# MFFCN's pixel-loss stage (10 L2 + TV; the VGG terms need the perceptual weights, see above)
MFFCN_PIXEL='--loss-weights {"perceptual":0,"texture":0}'
ALL_JOBS="
agrnet-x8|agrnet|8|-|--workers 4 $SHARP128
agrnet-hr-128-pre|agrnet_hr|-|-|--workers 4 --batch-size 8 --lr 2e-4 $AGRNET_HR_L1 $SHARP128
mffcn|mffcn|-|checkpoints/mffcn|--workers 4 --batch-size 16 $SHARP --val-size 96 $MFFCN_PIXEL
vdsr-x4|vdsr|4|checkpoints/vdsr-x4|--workers 2 $SHARP
rdan-x4|rdan|4|checkpoints/rdan-x4|--workers 2 $SHARP
srcnn-x4|srcnn|4|checkpoints/srcnn-x4|--workers 2 --lr 1e-3 $SHARP
rafsr-x4|rafsr|4|checkpoints/rafsr-x4|--workers 2 --lr 1e-4 --lr-halve-every 20000 $SHARP
rafsr-x8|rafsr|8|checkpoints/rafsr-x8|--workers 2 --lr 1e-4 --lr-halve-every 20000 $SHARP
crlnet-psnr-x4|crlnet|4|checkpoints/crlnet-psnr-x4|--workers 2 --lr 1e-4 --lr-halve-every 20000 $L1_ONLY $SHARP128
crlnet-psnr-x8|crlnet|8|checkpoints/crlnet-psnr-x8|--workers 2 --lr 1e-4 --lr-halve-every 20000 $L1_ONLY $SHARP128
"
WANT=${JOBS:-$(echo "$ALL_JOBS" | cut -d'|' -f1 | xargs)}
mkdir -p "$OUT" "$RUNS"
if [ -d data_cache/wheels ]; then  # packages the device image lacks (e.g. lpips), carried as wheels
  "$PY" -m pip install -q --no-index --no-deps data_cache/wheels/*.whl >"$RUNS/dev-pip.log" 2>&1
fi
# -- the environment first: a missing package, GPU or data file fails here within seconds, not
# after the slot is spent (train/device_check.py; CPU_OK=1 or TINY=1: no GPU needed)
fail() { { echo "device_train.sh: $*"; echo "nothing was trained"; } | tee "$OUT/summary.txt" >&2; exit 2; }
command -v "$PY" >/dev/null 2>&1 || fail "python '$PY' not found (set PYTHON=)"
known=$(echo "$ALL_JOBS" | cut -d'|' -f1 | xargs)
for job in $WANT; do
  case " $known " in *" $job "*) ;; *) fail "unknown job '$job' in JOBS (known: $known)" ;; esac
done
inits=()
if [ "${TINY:-0}" != 1 ]; then
  while IFS='|' read -r name _ _ init _; do
    case " $WANT " in *" $name "*) [ -n "$name" ] && [ "$init" != "-" ] && inits+=("$init") ;; esac
  done <<<"$ALL_JOBS"
fi
cpu_ok=()
{ [ "${TINY:-0}" = 1 ] || [ "${CPU_OK:-0}" = 1 ]; } && cpu_ok=(--cpu-ok)
if ! "$PY" -m train.device_check --data "$DATA" "${cpu_ok[@]}" --init "${inits[@]}" >"$RUNS/dev-check.txt" 2>&1 \
   || { [ -d "$WILD" ] && ! "$PY" -m train.device_check --data "$WILD" "${cpu_ok[@]}" >>"$RUNS/dev-check.txt" 2>&1; }; then
  fail "environment check failed:
$(cat "$RUNS/dev-check.txt")"
fi
[ -d "$WILD" ] && echo "data: $WILD + $DATA 1:1" >>"$RUNS/dev-check.txt" || echo "data: $DATA alone ($WILD not carried)" >>"$RUNS/dev-check.txt"

{ date; nvidia-smi -L 2>/dev/null || echo "no GPU: $(nproc) CPUs"; "$PY" -c "import torch; print('torch', torch.__version__)"; cat "$RUNS/dev-check.txt"; } \
  >"$RUNS/dev-summary.txt" 2>&1

pids=()
names=()
while IFS='|' read -r name model scale init extra; do
  [ -z "$name" ] && continue
  case " $WANT " in *" $name "*) ;; *) continue ;; esac
  scale_arg=()
  [ "$scale" != "-" ] && scale_arg=(--scale "$scale")
  # shellcheck disable=SC2206  # DATA_ARGS holds several arguments (paths without spaces)
  args=(--model "$model" "${scale_arg[@]}" $DATA_ARGS --train-list train.txt --val-list val.txt
        --steps 10000000 --output "$RUNS/dev-$name" --max-time "$MINUTES" --val-every 500
        --save-every 500 --no-progress)
  tiny=()
  if [ "${TINY:-0}" = 1 ]; then
    tiny=(--tiny --steps 3 --hr-size 48 --val-size 48 --batch-size 2 --workers 0 --threads 1 --val-every 2 --val-count 2
          --save-every 2)
  elif [ "$init" != "-" ]; then
    args+=(--init-from "$init")
  fi
  # shellcheck disable=SC2086  # $extra holds several arguments; later ones win (tiny last)
  "$PY" -m train.train "${args[@]}" $extra "${tiny[@]}" >"$RUNS/dev-$name.log" 2>&1 &
  pids+=($!)
  names+=("$name")
done <<<"$ALL_JOBS"

status=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}"
  rc=$?
  [ "$rc" -ne 0 ] && status=1
  { echo "== ${names[$i]}: exit $rc"; tail -n 4 "$RUNS/dev-${names[$i]}.log"; } >>"$RUNS/dev-summary.txt"
done
cp "$RUNS/dev-summary.txt" "$OUT/summary.txt"
# best/ and last/ folders, logs, the training curves; not the optimiser state (too large to send back)
base=$(basename "$RUNS")
(cd "$RUNS/.." && tar -czf - "$base"/dev-summary.txt "$base"/dev-*.log \
   $(ls -d "$base"/dev-*/best "$base"/dev-*/last "$base"/dev-*/train_log.jsonl 2>/dev/null)) \
  | split -b 15M - "$OUT/runs.tgz.part-"
ls -l "$OUT" >>"$OUT/summary.txt"
cat "$OUT/summary.txt"
exit $status
