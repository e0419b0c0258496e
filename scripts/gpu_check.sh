#!/usr/bin/env bash
# The GPU check, in two halves: `pack` here (the development machine: Debian's libraries, the build), `run` on a
# GPU machine that has python3 with torch 2.11.0+cu130 but none of Debian's -dev packages and no network.
#
#   bash scripts/gpu_check.sh pack [BUNDLE]      build, prepare the KJV, and gather into BUNDLE (default
#                                                gpu-bundle/, ≈ 30 MB): the binaries, the shared libraries they
#                                                need that are not LibTorch's, configs and the prepared data
#   bash scripts/gpu_check.sh pack [BUNDLE] --no-build   the same from the build already in $SSMAX_BUILD_DIR
#                                                (default build/; the tests use it)
#   bash scripts/gpu_check.sh run [BUNDLE]       on the GPU machine, from the repository root (≤ 8 minutes):
#     1. every CUDA test of ssmax_tests (each test with "Cuda" in its name; none filtered out) and Devices.*
#     2. bench of the paper-162m shape (12L/12H/768, T=1024, vocab 50257), bf16, batch 16: tokens/s, MFU against
#        the H200's 989 TFLOP/s dense bf16, peak GPU memory, per normalizer; then the cost of document masking
#        (documents of ~256 tokens, unmasked and masked) and scripts/bench_document_mask.py on the device
#     3. `train` of the same shape (KJV, 8192-token BPE) for 50 bf16 steps on CUDA, checkpointed; then that
#        checkpoint resumed on the CPU for 2 steps, exported, evaluated and sampled from on the CPU
#     4. the same training through torchrun with one rank: c10d's ProcessGroupNCCL on GPU 0 (Gloo in a dry run),
#        20 steps, compared with 20 steps in a plain process. World size 1 proves the NCCL group forms, the
#        gradient buckets and all-reduces run on the GPU and the numbers match; not the speed or correctness of a
#        real multi-GPU reduction (one machine with one GPU cannot show that)
#   bash scripts/gpu_check.sh run --dry-run      the same plumbing on this machine's CPU at a tiny size (the CUDA
#                                                tests skip themselves); tests/cli/gpu_check_dry_run.sh runs it in CI
#   bash scripts/gpu_check.sh study [BUNDLE]     on the GPU machine: studies/manuals-h100.json end to end (three
#                                                normalizers × 2 seeds, needle finetune, the paper's evaluations) on
#                                                the manuals dataset the bundle carries, cut at $SSMAX_STUDY_LIMIT_S
#                                                (default 450) seconds; the report and logs go to $OUT/study/
#   bash scripts/gpu_check.sh study --dry-run    the same study file scaled down (steps, lengths, trials) on the CPU,
#                                                on the KJV prepared at a small vocabulary; CI runs it
#   pack … --no-study                            leave the manuals dataset out (CI: no 70 MB of downloads)
# `run` exits non-zero when any step fails (a test, a command, or torchrun's losses differing from the plain run's by
# more than the stated tolerance), after running every step and naming the failed ones in its last line.
# The binaries are built here and carried (the GPU machine's glibc and libstdc++ are newer, its LibTorch is the
# same 2.11.0 build): they find LibTorch through the python3 that has torch there. Reports go to stdout and,
# when set, to $OUT/gpu_check.log. $SSMAX_GPU_CHECK_WORK (default /tmp/ssmax-gpu-check) holds the runs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/env.sh
mode=${1:-}
bundle=gpu-bundle
dry_run=0
build=1
with_study=1
shift || true
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry_run=1 ;;
    --no-build) build=0 ;;
    --no-study) with_study=0 ;;
    -*) echo "gpu_check: unknown option $arg (allowed: --dry-run for run/study, --no-build and --no-study for" \
             "pack)" >&2; exit 2 ;;
    *) bundle=$arg ;;
  esac
done
bundle=$(realpath -m "$bundle")
check_vocab=8192  # the KJV's BPE vocabulary for the training check (4 MB of text does not fill 50257)

pack() {
  local build_dir=${SSMAX_BUILD_DIR:-build}  # where --no-build takes the binaries from
  if [ "$build" -eq 1 ]; then bash scripts/build.sh ssmax-gpt ssmax_spm ssmax_tests; build_dir=build; fi
  bash scripts/fetch_kjv.sh
  ./build/ssmax-gpt prepare configs/paper-162m.json --set data.tokenizer.vocab_size=$check_vocab \
    --set data.dataset_dir="$bundle/data/cache"
  rm -rf "$bundle/bin" "$bundle/lib" && mkdir -p "$bundle/bin" "$bundle/lib" "$bundle/data"
  cp "$build_dir/ssmax-gpt" "$build_dir/ssmax_tests" "$build_dir/libssmax_spm.so" "$bundle/bin/"
  cp data/kjv.txt "$bundle/data/"
  local torch_env=$SSMAX_TORCH_ENV
  # Every shared library the binaries load, except LibTorch and CUDA's (the GPU machine's torch brings those)
  # and the C runtime (newer there).
  ldd "$build_dir/ssmax-gpt" "$build_dir/ssmax_tests" "$build_dir/libssmax_spm.so" | awk '/=> \// {print $3}' | sort -u |
    grep -v -e "^$torch_env/" -e '/libc\.so' -e '/libm\.so' -e '/libstdc++' -e '/libgcc_s' -e '/ld-linux' \
            -e '/libpthread' -e '/libdl\.so' -e '/librt\.so' -e '/libutil\.so' -e '/libcuda' -e 'cuda-13' -e '/libnv' |
    while read -r lib; do cp -L "$lib" "$bundle/lib/"; done
  rm -rf "$bundle/data/manuals"
  if [ "$with_study" -eq 1 ]; then pack_study_data; fi
  echo "gpu_check pack: $bundle is $(du -sh "$bundle" | cut -f1) ($(ls "$bundle/lib" | wc -l) libraries)"
}

# The dataset directory a `prepare` log names (its last "dataset DIR: vocab …" line).
prepared_dir() { sed -nE 's/.*dataset ([^:]+): vocab.*/\1/p' "$1" | tail -n 1; }

# The study's dataset, prepared here (the GPU machine has neither the Debian packages nor the time to tokenize):
# 32 M tokens are 64 MB as uint16, 18 MB once xz'd, which keeps the bundle under the 64 MiB a device call carries.
pack_study_data() {
  bash scripts/fetch_manuals.sh
  local dir
  ./build/ssmax-gpt prepare configs/manuals-h100.json --set data.dataset_dir=data/cache 2>&1 | tee "$bundle/prepare.log"
  dir=$(prepared_dir "$bundle/prepare.log")
  rm -f "$bundle/prepare.log"
  [ -f "$dir/meta.json" ] || { echo "gpu_check pack: cannot find the prepared manuals dataset ($dir)" >&2; return 1; }
  mkdir -p "$bundle/data/manuals"
  cp "$dir/meta.json" "$dir/tokenizer.model" "$dir"/val-*.bin "$bundle/data/manuals/"
  for shard in "$dir"/train-*.bin; do xz -T0 -6 -c "$shard" >"$bundle/data/manuals/$(basename "$shard").xz"; done
}

# The bundle's binaries find LibTorch through the python3 that has torch (the GPU machine's, or in a dry run the
# project's environment). Sets python, bin and work for the caller.
bundle_env() {
  python=${SSMAX_GPU_PYTHON:-python3}
  [ "$dry_run" -eq 1 ] && python=$SSMAX_TORCH_PYTHON
  local torch_lib
  torch_lib=$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null |
              tail -n 1)
  export LD_LIBRARY_PATH="$bundle/lib:$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export SSMAX_SPM_SHIM="$bundle/bin/libssmax_spm.so"
  bin="$bundle/bin/ssmax-gpt" work=${SSMAX_GPU_CHECK_WORK:-/tmp/ssmax-gpu-check}
}

run() {
  local log=${OUT:-$bundle}/gpu_check.log
  exec > >(tee "$log") 2>&1
  local python bin work
  bundle_env
  local failed=()
  # step NAME CMD...: runs CMD (its output shown), records NAME as failed when it exits non-zero, and goes on.
  step() {
    local name=$1
    shift
    if ! "$@"; then
      failed+=("$name")
      echo "!! FAILED: $name"
    fi
  }
  rm -rf "$work" && mkdir -p "$work"
  local device=cuda steps=50 resume_to=52 shape=() cpu_threads=0
  if [ "$dry_run" -eq 1 ]; then
    device=cpu steps=4 resume_to=5
    shape=(--set model.n_layer=2 --set model.n_head=2 --set model.n_embd=64 --set model.block_size=64
           --set model.mlp_hidden=128 --set train.batch_size=2)
  fi
  echo "== gpu_check $(date -u +%FT%TZ) on $(hostname): $(nvidia-smi -L 2>/dev/null | head -n 1 || echo 'no nvidia-smi')"
  "$python" -c 'import torch; print("torch", torch.__version__, "cuda available:", torch.cuda.is_available())'
  local t0=$SECONDS

  echo "== 1. every CUDA test (CUDA vs CPU, kernels vs their composite forms, …) and device-independent checkpoints"
  step "1. CUDA tests" "$bundle/bin/ssmax_tests" --gtest_filter='*Cuda*:*Cuda*.*:Devices.*:Precision.*' \
    --gtest_brief=0

  echo "== 2. bench: paper-162m shape, bf16, batch 16 × 1024 tokens"
  step "2. bench" "$bin" bench configs/paper-162m.json --set device=$device --set train.grad_accum_steps=1 \
    --set data.dataset_dir="$bundle/data/cache" --steps 10 --warmup 3 --peak-tflops 989 "${shape[@]}"
  echo "-- document masking (docs/documents.md): the same bench on documents of ~256 tokens, unmasked then masked"
  for mask in false true; do
    step "2. bench documents (mask $mask)" "$bin" bench configs/paper-162m.json --set device=$device \
      --set train.grad_accum_steps=1 --normalizers softmax,ssmax --steps 5 --warmup 2 --peak-tflops 989 \
      --document-tokens 256 --set model.attention.document_mask=$mask "${shape[@]}"
  done
  step "2. attention kernels with documents" "$python" scripts/bench_document_mask.py --device $device \
    --reps "$([ "$dry_run" -eq 1 ] && echo 1 || echo 20)"

  echo "== 3. train $steps bf16 steps on $device (KJV, BPE $check_vocab), checkpoint, resume on the CPU"
  local common=(--set data.sources="$bundle/data/kjv.txt" --set data.dataset_dir="$bundle/data/cache"
                --set data.tokenizer.vocab_size=$check_vocab --set out_dir="$work/run")
  step "3. train on $device" "$bin" train configs/paper-162m.json "${common[@]}" "${shape[@]}" --set device=$device \
    --set train.grad_accum_steps=1 --set train.max_steps=$steps --set train.log_every=10 --set train.eval_every=$steps \
    --set train.eval_batches=4 --set train.checkpoint_every=$steps
  echo "-- resume on the CPU (fp32) to step $resume_to"
  step "3. resume on the CPU" "$bin" train --resume "$work/run" --set device=cpu --set train.precision=fp32 \
    --set threads=$cpu_threads --set train.max_steps=$resume_to --set train.log_every=1
  local checkpoint
  checkpoint="$work/run/checkpoints/step_$(printf %08d $steps).pt"
  echo "-- the $device-written checkpoint ($(ls "$work/run/checkpoints" 2>/dev/null | grep -c '\.pt$') kept) on the CPU"
  step "3. export" "$bin" export "$checkpoint" --out "$work/model.safetensors"
  step "3. eval" "$bin" eval "$checkpoint" --device cpu --lengths 256 --batches 1 --out "$work/eval"
  step "3. generate" "$bin" generate "$checkpoint" --device cpu --prompt "In the beginning" --max-new-tokens 12 --seed 1
  echo "== 4. torchrun, 1 rank ($([ $device = cuda ] && echo NCCL || echo Gloo)) vs a plain process: 20 steps each"
  local short=(--set device=$device --set train.grad_accum_steps=1 --set train.max_steps=20 --set train.log_every=10
               --set train.eval_every=20 --set train.eval_batches=4 --set train.checkpoint_every=20)
  step "4. plain run" "$bin" train configs/paper-162m.json "${common[@]}" "${shape[@]}" "${short[@]}" \
    --set out_dir="$work/plain"
  step "4. torchrun, 1 rank" "$python" -m torch.distributed.run --standalone --nproc-per-node 1 --no-python "$bin" \
    train configs/paper-162m.json "${common[@]}" "${shape[@]}" "${short[@]}" --set out_dir="$work/nccl"
  # One rank all-reduces its own gradients (a sum over one, divided by one): the same numbers as the plain run, up
  # to the float rounding of the flattened buckets; 1e-5 of the loss is far below any real disagreement.
  step "4. torchrun equals plain" "$python" - "$work/plain/metrics.jsonl" "$work/nccl/metrics.jsonl" <<'PY'
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:])
pairs = [(x[k], y[k]) for x, y in zip(a, b) for k in ("train_loss", "val_loss") if x.get(k) is not None]
worst = max((abs(x - y) / abs(x) for x, y in pairs), default=float("inf"))
print(f"torchrun 1 rank vs plain: {len(pairs)} losses, largest relative difference {worst:.3g} (tolerance 1e-5); "
      f"sync_ms {[r.get('sync_ms') for r in b if r.get('sync_ms') is not None]}")
sys.exit(0 if len(pairs) >= 2 and worst <= 1e-5 else 1)
PY
  if ((${#failed[@]})); then
    echo "== gpu_check FAILED in $((SECONDS - t0)) s: ${failed[*]}"
    return 1
  fi
  echo "== gpu_check passed in $((SECONDS - t0)) s"
}

study() {
  local report=${OUT:-$bundle}/study
  mkdir -p "$report"
  exec > >(tee "$report/gpu_study.log") 2>&1
  local python bin work
  bundle_env
  work="$work-study"
  rm -rf "$work" && mkdir -p "$work"
  echo "== gpu_check study $(date -u +%FT%TZ) on $(hostname): $(nvidia-smi -L 2>/dev/null | head -n 1 || echo 'no nvidia-smi')"
  local t0=$SECONDS dataset sets=() jobs=3 limit=${SSMAX_STUDY_LIMIT_S:-450}
  if [ "$dry_run" -eq 1 ]; then
    # The plumbing at a toy size: the KJV at a small vocabulary stands in for the manuals (not downloaded in CI).
    "$bin" prepare configs/manuals-h100.json --set data.sources="$bundle/data/kjv.txt" \
      --set data.dataset_dir="$work/cache" --set data.tokenizer.vocab_size=512 >"$work/prepare.log" 2>&1 ||
      { cat "$work/prepare.log"; echo "== gpu_check study FAILED: preparing the dry run's data"; return 1; }
    dataset=$(prepared_dir "$work/prepare.log")
    sets=(--set device=cpu --set threads=1 --set train.precision=fp32 --set model.n_layer=1 --set model.n_head=2
          --set model.n_embd=32 --set model.mlp_hidden=64 --set model.block_size=128 --set train.batch_size=2)
    jobs=1
  else
    # The train shard travels xz'd: unpacked here with python's lzma (the GPU machine may lack xz).
    dataset="$work/manuals"
    mkdir -p "$dataset"
    cp "$bundle/data/manuals/meta.json" "$bundle/data/manuals/tokenizer.model" "$bundle/data/manuals"/val-*.bin \
      "$dataset/" || { echo "== gpu_check study FAILED: the bundle has no manuals dataset (pack without --no-study)"; return 1; }
    "$python" -c 'import lzma, shutil, sys
for path in sys.argv[2:]:
    with lzma.open(path) as src, open(sys.argv[1] + "/" + path.rsplit("/", 1)[1][:-3], "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 24)' "$dataset" "$bundle/data/manuals"/train-*.bin.xz
    sets=(--set device=cuda)
  fi
  # The study file with its out_dir in the work directory; a dry run scales its steps, lengths and trials down.
  "$python" - studies/manuals-h100.json "$work/study.json" "$work/study" "$dry_run" <<'PY'
import json, sys
spec = json.load(open(sys.argv[1]))
spec["config"] = sys.argv[1].replace("studies/", "configs/")
spec["out_dir"] = sys.argv[3]
if sys.argv[4] == "1":
    spec["set"] = {"train.max_steps": 4, "train.log_every": 2, "train.eval_every": 4, "train.eval_batches": 1,
                   "train.checkpoint_every": 4}
    for stage in spec["finetune"]:
        stage["steps"], stage["lengths"] = 3, [128]
        stage["set"].update({"train.batch_size": 2, "train.log_every": 1, "train.eval_every": 3,
                             "train.eval_batches": 1, "train.checkpoint_every": 3})
    spec["long_context"].update({"lengths": [128, 256], "windows": 1})
    spec["needle"].update({"lengths": [128, 256], "depths": [0, 1], "trials": 1})
    spec["attention"].update({"lengths": [128, 256], "trials": 1})
json.dump(spec, open(sys.argv[2], "w"), indent=1)
PY
  sets+=(--set data.prepared="$dataset")
  echo "== study $work/study.json on dataset $dataset, --jobs $jobs, cut at $limit s"
  local rc=0
  timeout --signal=INT --kill-after=30 "$limit" "$bin" study "$work/study.json" --jobs $jobs "${sets[@]}" || rc=$?
  echo "== study exited $rc after $((SECONDS - t0)) s; the report from what is on disk:"
  "$bin" study "$work/study.json" --report-only "${sets[@]}" || { [ "$rc" -ne 0 ] || rc=1; }
  cp "$work/study"/report.* "$work/study"/study.log "$report/" 2>/dev/null || true
  cp -r "$work/study/logs" "$work/study/figures" "$report/" 2>/dev/null || true
  if [ "$rc" -ne 0 ]; then
    echo "== gpu_check study FAILED or cut short (exit $rc) in $((SECONDS - t0)) s; partial report in $report"
    return 1
  fi
  echo "== gpu_check study passed in $((SECONDS - t0)) s; report in $report"
}

case "$mode" in
  pack) pack ;;
  run) run ;;
  study) study ;;
  *) echo "usage: bash scripts/gpu_check.sh pack [BUNDLE] [--no-build] [--no-study] | run [BUNDLE] [--dry-run] |" \
          "study [BUNDLE] [--dry-run]" >&2; exit 2 ;;
esac
