# shellcheck shell=bash disable=SC2034  # BIN, S, PY, HERE, ROOT are set for the scripts that source this
# Shared by the end-to-end tests tests/cli/*.sh. ctest starts each one (tests/CMakeLists.txt) as
#   bash tests/cli/NAME.sh BINARY SCRATCH_DIR [PYTHON]
# and each begins with
#   source "$(dirname "$0")/lib/common.sh"
#   cli_test_init "$@"                 # cli_test_init --python "$@" where PYTHON is required
#
# Offers:
#   BIN S PY HERE ROOT                 the binary (absolute path); the scratch directory, emptied and made the
#                                      working directory; PYTHON ("" when not given); tests/cli; the repository root
#   ok MESSAGE, fail MESSAGE           count a passed / failed check
#   check DESCRIPTION CMD...           passes when CMD succeeds (and returns whether it did)
#   show FILE...                       the last lines of each FILE, indented, to explain a failure
#   no_backtrace FILE...               succeeds when no FILE shows an uncaught exception, abort or backtrace
#   run_expect CODE CMD...             CMD exits CODE, no backtrace; its output stays in $S/out.txt and $S/err.txt
#   expect_ok CMD...                   run_expect 0 CMD...
#   expect_fail CODE PATTERN -- CMD... CMD exits CODE, stderr is exactly one line and contains PATTERN, no backtrace
#   cli_test_finish                    prints "N passed, M failed"; exits non-zero on any failure or on no pass
#   same_metrics RUN_A RUN_B           the two runs' metrics.jsonl hold the same records (wall-clock fields aside)
#   peak_mb CMD...                     runs CMD, prints its peak resident memory in MB (measured by $PY with
#                                      getrusage, not reported by the program); returns CMD's exit code
#   cycled_corpus                      ~60 KB from a 30-word vocabulary in a fixed cycle (bad_input, train_smoke)
#   generated_corpus SEED              ~70 KB from a 32-word vocabulary, pseudo-random (golden_loss, distributed)
#   triplet_corpus                     ~70 KB of three-word sentences over 8 words (resume_signal)
#   write_tiny_config FILE [SED-EXPR]  the 1-layer CPU config of bad_input and train_smoke, optionally edited
# The corpora are fixed bytes on every machine: the golden losses (tests/golden/tiny_losses.json) were computed
# on generated_corpus 7, so any change to these generators is a change to the golden numbers.

# Resolved while sourcing: the script may have been started by a path relative to a directory it leaves.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

# cli_test_init [--python] BINARY SCRATCH_DIR [PYTHON]
cli_test_init() {
  local python_arg='[PYTHON]'
  if [ "${1:-}" = --python ]; then
    python_arg=PYTHON
    shift
  fi
  if [ -z "${1:-}" ] || [ -z "${2:-}" ] || { [ "$python_arg" = PYTHON ] && [ -z "${3:-}" ]; }; then
    echo "usage: $(basename "$0") BINARY SCRATCH_DIR $python_arg" >&2
    exit 2
  fi
  BIN=$1
  case "$BIN" in /*) ;; *) BIN="$PWD/$BIN" ;; esac
  PY=${3:-}
  rm -rf "$2" && mkdir -p "$2" && cd "$2" || exit 1
  S=$PWD
  passed=0
  failed=0
}

ok() {
  passed=$((passed + 1))
  echo "ok:   $*"
}
fail() {
  failed=$((failed + 1))
  echo "FAIL: $*"
}
# Returns CMD's success, so that `check ... || show LOG` explains a failure.
check() {
  local what=$1
  shift
  if "$@"; then ok "$what"; else fail "$what"; return 1; fi
}
show() {
  local f
  for f in "$@"; do tail -8 "$f" | sed "s#^#      $(basename "$f")| #"; done
}

# same_metrics RUN_A RUN_B: the two runs' metrics.jsonl hold the same records, the wall-clock fields aside
same_metrics() {
  python3 - "$1/metrics.jsonl" "$2/metrics.jsonl" <<'PY'
import json, sys
def load(path):
    records = [json.loads(line) for line in open(path)]
    return [{k: v for k, v in r.items() if k not in ("tokens_per_s", "ms_per_step", "elapsed_s", "mfu")} for r in records]
sys.exit(0 if load(sys.argv[1]) == load(sys.argv[2]) else 1)
PY
}

no_backtrace() {
  ! grep -qE 'terminate called|Exception raised from|frame #[0-9]|[Bb]acktrace|Aborted|core dumped' "$@"
}

run_expect() {
  local code=$1
  shift
  "$@" >"$S/out.txt" 2>"$S/err.txt"
  local rc=$?
  if [ "$rc" -ne "$code" ]; then
    fail "exit $rc (expected $code): ${*#"$BIN"}"
    tail -20 "$S/err.txt" | sed 's/^/      stderr| /'
  elif ! no_backtrace "$S/out.txt" "$S/err.txt"; then
    fail "uncaught exception / backtrace: ${*#"$BIN"}"
  else
    ok "[$code] ${*#"$BIN"}"
  fi
}
expect_ok() { run_expect 0 "$@"; }

# PATTERN is a fixed string. One line of stderr: a user sees the cause, not a cascade of messages.
expect_fail() {
  local code=$1 pattern=$2
  shift 3
  "$@" >"$S/out.txt" 2>"$S/err.txt"
  local rc=$? problems=() lines p
  lines=$(grep -c . "$S/err.txt")
  [ "$rc" -eq "$code" ] || problems+=("exit code $rc, expected $code")
  [ "$lines" -eq 1 ] || problems+=("stderr has $lines non-empty lines, expected exactly 1")
  grep -qF -- "$pattern" "$S/err.txt" || problems+=("stderr does not mention '$pattern'")
  no_backtrace "$S/err.txt" "$S/out.txt" || problems+=("uncaught exception / backtrace in output")
  if [ ${#problems[@]} -eq 0 ]; then
    ok "[$code] ${*#"$BIN"}"
  else
    fail "${*#"$BIN"}"
    for p in "${problems[@]}"; do echo "      - $p"; done
    sed 's/^/      stderr| /' "$S/err.txt" | head -20
  fi
}

# A script with no passing check tested nothing: that fails too.
cli_test_finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
  exit
}

peak_mb() {
  "$PY" -c 'import resource, subprocess, sys
r = subprocess.run(sys.argv[1:]).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
sys.exit(r)' "$@"
}

# --- Corpora: deterministic, the same bytes on every machine ------------------------------------------------
cycled_corpus() {
  awk 'BEGIN {
    n = split("the lord said unto moses and aaron speak children of israel saying this is thing " \
              "which hath commanded when ye come into land give you shall keep sabbath", w, " ")
    line = ""
    for (i = 0; i < 11000; i++) {
      line = line w[(i * 7 + int(i / 13)) % n + 1] " "
      if (i % 12 == 11) { print line; line = "" }
    }
  }'
}

# A linear congruential generator started at SEED picks each word: less regular text than cycled_corpus, so a
# 30-step loss curve means something.
generated_corpus() {
  awk -v state="$1" 'BEGIN {
    n = split("in the beginning god created heaven and earth was without form void darkness upon face of deep " \
              "spirit moved waters said let there be light saw that it good divided from", w, " ")
    line = ""
    for (i = 0; i < 12000; i++) {
      state = (state * 1103515245 + 12345) % 2147483648
      line = line w[int(state / 65536) % n + 1] " "
      if (i % 11 == 10) { print line "."; line = "" }
    }
  }'
}

triplet_corpus() {
  awk 'BEGIN { split("alpha beta gamma delta epsilon zeta eta theta", w, " ");
    for (i = 0; i < 4000; i++) printf "%s %s %s.\n", w[i%8+1], w[(i*3)%8+1], w[(i*7)%8+1] }'
}

# --- Config -------------------------------------------------------------------------------------------------
# Small enough to prepare and train 4 steps in seconds on one thread; out_dir, cache and corpus under $S.
write_tiny_config() {
  cat >"$1" <<EOF
{
  "name": "tiny",
  "seed": 1,
  "out_dir": "$S/run",
  "device": "cpu",
  "threads": 1,
  "data": {
    "sources": ["$S/corpus.txt"],
    "dataset_dir": "$S/cache",
    "tokenizer": {"vocab_size": 300},
    "val_fraction": 0.05
  },
  "model": {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 32},
  "optim": {"lr": 0.001, "min_lr": 0.0001, "warmup_steps": 1},
  "train": {"batch_size": 4, "max_steps": 4, "log_every": 2, "eval_every": 2, "eval_batches": 2,
            "checkpoint_every": 2}
}
EOF
  if [ $# -ge 2 ]; then sed -i -e "$2" "$1"; fi
}
