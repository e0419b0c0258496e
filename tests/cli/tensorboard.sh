#!/usr/bin/env bash
# TensorBoard, read by TensorBoard itself (EventAccumulator from the tensorboard package, installed by
# scripts/test.sh): every scalar of metrics.jsonl is in the run's event file with its value, at its step, once —
# also after a resume from an earlier checkpoint, which cuts off what was written after it (no stale or doubled
# steps), and after a resume that finds the event file torn, overwritten or damaged (one warning; the file made
# whole again, so the resumed run's steps are read after those before the damage), or metrics.jsonl torn.
# Usage: bash tests/cli/tensorboard.sh BINARY SCRATCH_DIR PYTHON
set -u
source "$(dirname "$0")/lib/common.sh"
cli_test_init --python "$@"

cycled_corpus >"$S/corpus.txt"
CFG="$S/tiny.json"
write_tiny_config "$CFG"
common=(--set model.attention.normalizer=ssmax_bias --set train.max_steps=8 --set train.log_every=2
        --set train.eval_every=4 --set train.checkpoint_every=4 --set train.keep_last=5)

# same_as_metrics RUN_DIR [LOST]: TensorBoard's reader finds exactly metrics.jsonl's scalars; LOST ("6-8,16-16")
# lists the steps whose records a damaged event file lost.
# shellcheck disable=SC2317  # called through check
same_as_metrics() {
  "$PY" - "$1" "${2:-}" <<'PY'
import json, math, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
run = sys.argv[1]
lost = [tuple(map(int, r.split("-"))) for r in sys.argv[2].split(",") if r]
records = [json.loads(l) for l in open(f"{run}/metrics.jsonl") if l.strip()]
expected = {}
def put(tag, step, value):
    if value is not None and not any(lo <= step <= hi for lo, hi in lost):
        expected.setdefault(tag, []).append((step, value))
for r in records:
    put("val/loss", r["step"], r.get("val_loss"))
    if r.get("train_loss") is None:
        continue
    put("train/loss", r["step"], r["train_loss"])
    put("train/lr", r["step"], r["lr"])
    put("train/grad_norm", r["step"], r.get("grad_norm"))
    put("train/tokens_per_s", r["step"], r.get("tokens_per_s"))
    put("train/mfu", r["step"], r.get("mfu"))
    for name in ("s", "b"):
        for i, layer in enumerate(r.get(name) or []):
            for j, v in enumerate(layer["heads"]):
                put(f"normalizer/{name}/layer{i}/head{j}", r["step"], v)
acc = EventAccumulator(run, size_guidance={"scalars": 0})
acc.Reload()
found = {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
errors = []
if set(found) != set(expected):
    errors.append(f"tags differ: only in the file {sorted(set(found) - set(expected))}, "
                  f"only in metrics.jsonl {sorted(set(expected) - set(found))}")
for tag, want in expected.items():
    got = found.get(tag, [])
    if [s for s, _ in got] != [s for s, _ in want]:
        errors.append(f"{tag}: steps {[s for s, _ in got]}, metrics.jsonl {[s for s, _ in want]}")
    elif any(not math.isclose(g, w, rel_tol=1e-6, abs_tol=1e-7) for (_, g), (_, w) in zip(got, want)):
        errors.append(f"{tag}: values {got} vs {want}")  # float32 in the event file
# The file itself, event by event as written (the accumulator above would hide a stale step by purging it): every
# tag's steps strictly increase, so a resume left nothing behind from the steps it trained again.
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
last = {}
for event in EventFileLoader(f"{run}/events.out.tfevents.ssmax-gpt").Load():
    for value in event.summary.value:
        if event.step <= last.get(value.tag, -1):
            errors.append(f"{value.tag}: step {event.step} written after step {last[value.tag]} (stale or doubled)")
        last[value.tag] = event.step
print(f"      {len(found)} tags, {sum(len(v) for v in found.values())} points")
for e in errors[:8]:
    print("      -", e)
sys.exit(1 if errors else 0)
PY
}

run_expect 0 "$BIN" train "$CFG" "${common[@]}"
check "the run directory has the event file" test -s "$S/run/events.out.tfevents.ssmax-gpt"
check "TensorBoard reads every scalar of metrics.jsonl, at its step, once" same_as_metrics "$S/run"

# Resume from step 4 after the run reached step 8: steps 6 and 8 are trained again, and must appear once each.
rm "$S/run/checkpoints/step_00000008."*
run_expect 0 "$BIN" train --resume "$S/run"
check "after a resume from step 4 each step is there once, with the resumed run's values" same_as_metrics "$S/run"

# --- The event file torn, overwritten or damaged before a resume ------------------------------------------------
EVENTS=$S/run/events.out.tfevents.ssmax-gpt
# record_at FILE STEP: the byte where the first record of STEP (or a later step) begins.
record_at() {
  "$PY" - "$1" "$2" <<'PY'
import struct, sys
from tensorboard.compat.proto.event_pb2 import Event
data, at = open(sys.argv[1], "rb").read(), 0
while at < len(data):
    (length,) = struct.unpack("<Q", data[at:at + 8])
    if Event.FromString(data[at + 12:at + 12 + length]).step >= int(sys.argv[2]):
        break
    at += 16 + length
print(at)
PY
}
warnings() { grep -c '\[warning\]' "$S/run/train.log"; }
# resume_warns MAX_STEPS TEXT: the resume to MAX_STEPS succeeds with exactly one warning, saying TEXT.
resume_warns() {
  local before
  before=$(warnings)
  run_expect 0 "$BIN" train --resume "$S/run" --set train.max_steps="$1"
  check "  ... one warning ($(($(warnings) - before)) in train.log)" test "$(($(warnings) - before))" -eq 1
  check "  ... saying: $2" grep -qF -- "$2" "$S/err.txt" || show "$S/err.txt"
}

# Torn 7 bytes into the first record of step 6; the run resumes from its checkpoint at step 8.
truncate -s $(($(record_at "$EVENTS" 6) + 7)) "$EVENTS"
resume_warns 12 "$EVENTS: its last record was torn off mid-write (7 bytes at byte"
check "torn event file: TensorBoard reads the steps before the tear and after the resume" same_as_metrics "$S/run" 6-8

# Overwritten with text from its first byte: moved aside, kept as it was, and a new file started.
yes "not an event file" | head -c "$(stat -c %s "$EVENTS")" >"$S/garbage"
cp "$S/garbage" "$EVENTS"
resume_warns 16 "$EVENTS: not a TensorBoard event file from its first byte (no valid record there); moved it to"
check "  ... to events.damaged-1, byte for byte" cmp -s "$S/garbage" "$S/run/events.damaged-1"
check "garbage event file: TensorBoard reads the resumed run's steps in a new file" same_as_metrics "$S/run" 0-12

# One byte of the first record of step 16 changed: the records before it are copied into a new file.
at=$(($(record_at "$EVENTS" 16) + 20))
printf 'X' | dd of="$EVENTS" bs=1 seek="$at" conv=notrunc status=none
resume_warns 20 "$EVENTS: damaged at byte $((at - 20)) of"
check "  ... moved to events.damaged-2" test -s "$S/run/events.damaged-2"
check "damaged event file: TensorBoard reads the steps before the damage and after the resume" \
  same_as_metrics "$S/run" 0-12,16-16

# metrics.jsonl torn in its last line: cut off, so the resumed run's first record does not join it.
truncate -s -10 "$S/run/metrics.jsonl"
resume_warns 24 "$S/run/metrics.jsonl: its last line was torn off mid-write"
check "torn metrics.jsonl: every line is a whole record" \
  "$PY" -c 'import json, sys; [json.loads(l) for l in open(sys.argv[1])]' "$S/run/metrics.jsonl"

cli_test_finish
