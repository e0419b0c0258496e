#!/usr/bin/env bash
# End-to-end: a miniature study (tiny model, 3 variants including a normalizer switch, 2 seeds, both finetune stages,
# long-context loss at two RoPE θ scales, needle and attention) is interrupted, resumed and finished, sequentially
# and with --jobs 2; its report's numbers equal those recomputed from the run directories by an independent script.
# Usage: bash tests/cli/study.sh BINARY SCRATCH_DIR PYTHON
set -u
source "$(dirname "$0")/lib/common.sh"
cli_test_init --python "$@"

generated_corpus 7 >"$S/corpus.txt"
write_tiny_config "$S/config.json" \
  's/"block_size": 32}/"block_size": 32, "position": "rope"}/; s/"max_steps": 4/"max_steps": 200/; s/"checkpoint_every": 2/"checkpoint_every": 50/; s/"eval_every": 2/"eval_every": 50/'
write_study() {  # write_study FILE OUT_DIR
  cat >"$1" <<JSON
{"name": "mini", "config": "$S/config.json", "out_dir": "$2", "seeds": [1, 2],
 "variants": [{"name": "softmax", "set": {"model.attention.normalizer": "softmax"}},
              {"name": "ssmax", "set": {"model.attention.normalizer": "ssmax"}},
              {"name": "switched", "set": {"model.attention.normalizer": "softmax"},
               "switch": {"at_step": 100, "set": {"model.attention.normalizer": "ssmax"}}}],
 "finetune": [{"task": "repeat", "steps": 4, "lengths": [32], "lm_weight": 1,
               "set": {"train.eval_every": 2, "train.checkpoint_every": 2}},
              {"task": "needle", "steps": 4, "lengths": [128], "lm_weight": 1,
               "set": {"train.eval_every": 2, "train.checkpoint_every": 2}}],
 "long_context": {"lengths": [32, 64], "rope_theta_scales": [1, 50], "windows": 2},
 "needle": {"lengths": [128, 192], "depths": [0, 1], "trials": 2},
 "attention": {"lengths": [128], "trials": 2}}
JSON
}
write_study "$S/study.json" "$S/seq"
write_study "$S/study_jobs.json" "$S/jobs"

# Interrupted, sequentially: SIGINT once the first run has a checkpoint.
interrupt_when() {  # interrupt_when FILE_GLOB CMD...: run CMD in the background, SIGINT it once FILE_GLOB exists
  local glob=$1
  shift
  "$@" >"$S/run.out" 2>"$S/run.err" &
  local pid=$!
  for _ in $(seq 1 600); do
    compgen -G "$glob" >/dev/null && break
    sleep 0.05
  done
  kill -INT "$pid"
  wait "$pid"
}
interrupt_when "$S/seq/runs/softmax-seed1/checkpoints/step_00000050.json" "$BIN" study "$S/study.json"
rc=$?
check "SIGINT exits 130 (got $rc)" test "$rc" -eq 130 || show "$S/run.err"
check "the interrupted study says how to continue" grep -q "run the same command again to continue" "$S/run.err"
check "it wrote a partial report" grep -q "Status: PARTIAL" "$S/seq/report.md"
check "the cut run kept a checkpoint" bash -c "compgen -G '$S/seq/runs/softmax-seed1/checkpoints/step_*.json' >/dev/null"
no_backtrace "$S/run.err" && ok "no backtrace after SIGINT" || fail "backtrace after SIGINT"

run_expect 0 "$BIN" study "$S/study.json"
check "resumed study is complete" grep -q '"complete": true' "$S/seq/report.json"
check "it resumed the cut run rather than restarting it" grep -q "resumed $S/seq/runs/softmax-seed1 from" "$S/err.txt"
check "the switch happened at step 100" grep -q "switched-seed1 switches at step 100: model.attention.normalizer=ssmax" \
  "$S/err.txt"
run_expect 0 "$BIN" study "$S/study.json"
check "a finished study trains and evaluates nothing" grep -q "42 tasks (42 done already)" "$S/err.txt"
check "... and runs no task" bash -c "! grep -q '== study mini:' '$S/err.txt'"

# The same study with --jobs 2, interrupted in the middle of its first runs, then finished.
interrupt_when "$S/jobs/runs/ssmax-seed1/checkpoints/step_00000050.json" "$BIN" study "$S/study_jobs.json" --jobs 2
rc=$?
check "--jobs 2: SIGINT exits 130 (got $rc)" test "$rc" -eq 130 || show "$S/run.err"
check "--jobs 2: each run logs to its own file" test -s "$S/jobs/logs/softmax-seed1.log"
run_expect 0 "$BIN" study "$S/study_jobs.json" --jobs 2
check "--jobs 2: complete after the rerun" grep -q '"complete": true' "$S/jobs/report.json"

# The report is self-contained and its numbers are those of the run directories.
check "report.html inlines its figures" grep -q 'src="data:image/png;base64,' "$S/seq/report.html"
check "report.html links no file" bash -c "! grep -q 'src=\"figures/' '$S/seq/report.html'"
check "report.md links its figures" test -s "$S/seq/figures/pretraining_loss.png"
"$PY" - "$S/seq" "$S/jobs" >"$S/recompute.out" 2>&1 <<'PY'
import glob, json, math, os, sys

def last_val(run):
    val = None
    for line in open(os.path.join(run, "metrics.jsonl")):
        rec = json.loads(line)
        if "val_loss" in rec:
            val = rec["val_loss"]
    return val

def mean(v): return sum(v) / len(v)
def std(v):
    m = mean(v)
    return math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))

study = sys.argv[1]
report = json.load(open(os.path.join(study, "report.json")))
variants = ["softmax", "ssmax", "switched"]
seeds = [1, 2]
problems = []
def close(what, a, b, tol=1e-9):
    if a is None or b is None or abs(a - b) > tol * max(1.0, abs(b)):
        problems.append(f"{what}: report {a} vs recomputed {b}")

finals = {}
for entry in report["variants"]:
    v = entry["name"]
    finals[v] = [last_val(os.path.join(study, "runs", f"{v}-seed{s}")) for s in seeds]
    close(f"{v} final val mean", entry["final_val_loss"]["mean"], mean(finals[v]))
    close(f"{v} final val std", entry["final_val_loss"]["std"], std(finals[v]))

for scale in ["1", "50"]:
    for length in ["32", "64"]:
        for v in variants:
            losses = []
            for s in seeds:
                ev = json.load(open(os.path.join(study, "evals", f"long_context-theta_x{scale}", f"{v}-seed{s}", "eval.json")))
                losses += [r["loss"] for r in ev["results"] if str(r["length"]) == length]
            close(f"long context {scale}/{length}/{v}", report["long_context"][scale][length][v]["mean"], mean(losses))

for v in variants:
    successes = trials = 0
    for s in seeds:
        nd = json.load(open(os.path.join(study, "evals", "needle", f"{v}-seed{s}", "needle.json")))
        res = nd["results"][0]
        for d in range(len(nd["depths"])):
            for l, length in enumerate(nd["lengths"]):
                if length > res["block_size"]:
                    successes += round(res["exact"][d][l] * nd["trials"])
                    trials += nd["trials"]
    close(f"needle beyond successes {v}", report["needle"][v]["beyond_successes"], successes)
    close(f"needle beyond trials {v}", report["needle"][v]["beyond_trials"], trials)

# Welch's t and Holm's step-down, recomputed from the report's own p-values.
tests = report["tests"]
for t in tests:
    if t["topic"] == "final validation loss":
        a, b = finals[t["a"]], finals[t["b"]]
        va, vb = std(a) ** 2 / len(a), std(b) ** 2 / len(b)
        if va + vb > 0:
            close(f"t {t['b']}-{t['a']}", t["t"], (mean(b) - mean(a)) / math.sqrt(va + vb), 1e-6)
ps = [(t["p"], i) for i, t in enumerate(tests) if t["p"] is not None]
ps.sort()
running = 0.0
for k, (p, i) in enumerate(ps):
    running = max(running, min(1.0, (len(ps) - k) * p))
    close(f"holm {i}", tests[i]["p_holm"], running, 1e-9)

# --jobs 2 (one thread per run, like the sequential study) gives the same numbers.
other = json.load(open(os.path.join(sys.argv[2], "report.json")))
for a, b in zip(report["variants"], other["variants"]):
    close(f"--jobs 2 {a['name']}", b["final_val_loss"]["mean"], a["final_val_loss"]["mean"], 0)
if problems:
    print("\n".join(problems))
    sys.exit(1)
print("report numbers match the run directories")
PY
check "report numbers equal those recomputed from the run directories" grep -q "report numbers match" \
  "$S/recompute.out" || show "$S/recompute.out"

# Usage errors: one line, exit 2.
expect_fail 2 "no such study file" -- "$BIN" study "$S/none.json"
expect_fail 2 "--jobs 0: must be >= 1" -- "$BIN" study "$S/study.json" --jobs 0
echo '{"config": "x.json", "seeds": [1], "seeds": [2]}' >"$S/dup.json"
expect_fail 2 "key 'seeds' appears twice" -- "$BIN" study "$S/dup.json"
run_expect 0 "$BIN" study "$S/study.json" --report-only
check "--report-only rewrites the report" test -s "$S/seq/report.html"
check "--report-only says how many runs it reported on" grep -q "report from the 6 of 6 runs on disk" "$S/err.txt" ||
  show "$S/err.txt"
# Nothing on disk: a report of nothing would read as a study that found nothing; refused, and nothing is created.
"$PY" -c "import json; s = json.load(open('$S/study.json')); s['out_dir'] = '$S/never-ran'; json.dump(s, open('$S/never.json', 'w'))"
expect_fail 1 "is on disk under $S/never-ran; run" -- "$BIN" study "$S/never.json" --report-only
check "--report-only of a study never run creates nothing" test ! -e "$S/never-ran"
# The study file changed after the study finished (another model shape): neither continued nor reported on.
"$PY" -c "import json; s = json.load(open('$S/study.json')); s['variants'][1]['set']['model.n_embd'] = 48; json.dump(s, open('$S/changed.json', 'w'))"
cp "$S/seq/report.md" "$S/report-before.md"
expect_fail 2 "$S/seq/runs/ssmax-seed1 holds a run whose model.n_embd differ" -- "$BIN" study "$S/changed.json"
expect_fail 2 "model.n_embd differ from what $S/changed.json gives now" -- "$BIN" study "$S/changed.json" --report-only
check "the report of the runs on disk is left as it was" cmp -s "$S/seq/report.md" "$S/report-before.md"

# The single-purpose commands group several checkpoints into variants (seeds averaged), as compare does.
runs=("$S/seq/runs/softmax-seed1" "$S/seq/runs/softmax-seed2" "$S/seq/runs/ssmax-seed1" "$S/seq/runs/ssmax-seed2")
run_expect 0 "$BIN" eval "${runs[@]}" --lengths 32,64 --batches 2 --threads 1 --out "$S/group-eval"
check "eval groups 4 runs into 2 variants of 2" "$PY" -c "
import json, sys
r = json.load(open('$S/group-eval/eval.json'))
assert [len(v['checkpoints']) for v in r['variants']] == [2, 2], r['variants']
assert r['results'][0]['variant'] == 'normalizer=softmax' and r['results'][-1]['variant'] == 'normalizer=ssmax'"
tuned=("$S/seq/runs/softmax-seed1-ft-needle" "$S/seq/runs/softmax-seed2-ft-needle" "$S/seq/runs/ssmax-seed1-ft-needle")
run_expect 0 "$BIN" needle "${tuned[@]}" --lengths 128 --depths 0,1 --trials 1 --threads 1 --out "$S/group-needle"
check "needle draws one heatmap per variant" test -s "$S/group-needle/needle_normalizer_softmax.png" -a \
  "$(find "$S/group-needle" -name '*.png' | wc -l)" -eq 2
run_expect 0 "$BIN" attention "${tuned[@]}" --length 128 --trials 1 --threads 1 --out "$S/group-attention"
check "attention draws one heatmap per variant and keeps every checkpoint" "$PY" -c "
import json, os
r = json.load(open('$S/group-attention/attention_L128_d50.json'))
assert len(r['results']) == 3 and len(r['variants']) == 2, r['variants']
assert os.path.exists('$S/group-attention/attention_L128_d50_normalizer_softmax.png')"

cli_test_finish
