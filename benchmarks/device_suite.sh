#!/usr/bin/env bash
# One-shot accelerator figures on a bare GPU machine, each measurement its own process and timeout.
#
#   bash benchmarks/device_suite.sh [--smoke]      # results under $OUT (default /tmp/device_suite)
#
# In priority order (a later kill still leaves the earlier results in $OUT):
#   0. env: benchmarks/device_env.py (repo + .devdeps/ on sys.path after site-packages; what is missing)
#   1. llama2_7b (32 layers, bf16, random) decode: mathjax Sampler, then transformers.generate, in
#      separate processes; 256 samples x 512 new tokens of one 128-token prompt (EOS ignored),
#      temperature 0.7; tokens/s, first-run time, memory roofline (benchmarks/accelerator_sampling.py).
#      If mathjax times out at 512 new tokens it is re-measured at 128, and transformers uses the same.
#   2. GRPO rollout + update on qwen2_5_math_1_5b shapes (random, local tokenizer; benchmarks/grpo_setup.py)
#      with scripts/train_rl.py and configs/qwen2_5_math_1_5b_grpo.py; stopped once the steps are logged.
#   3. scripts/validate_device.py --train_layers=8 --sample_layers=16.
# --smoke: the same pipeline on tiny shapes (JAX_PLATFORMS=cpu works), ~2-3 minutes on 2 cores.
# Budget: SUITE_BUDGET_S (default 530 s, 220 with --smoke) for everything; each step gets
# min(its timeout, what is left). $OUT/summary.txt collects one line per result; $OUT/<step>.log the logs.
set -u
SMOKE=0
[[ "${1:-}" == "--smoke" ]] && SMOKE=1
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=${OUT:-/tmp/device_suite}
mkdir -p "$OUT"
START=$SECONDS
BUDGET=${SUITE_BUDGET_S:-$([[ $SMOKE == 1 ]] && echo 220 || echo 530)}
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2 TOKENIZERS_PARALLELISM=false
PY=${PYTHON:-$(command -v python3 || command -v python)}
SUMMARY=$OUT/summary.txt
STEPS=$OUT/steps.jsonl

left() { echo $((BUDGET - (SECONDS - START))); }
note() { echo "$*" | tee -a "$SUMMARY"; }

# run NAME LIMIT CMD...: the command under min(LIMIT, left - 5) s, its whole process group killed
# at the limit; output to $OUT/NAME.log (absl INFO/WARNING lines filtered from the console).
run() {
  local name=$1 limit=$2
  shift 2
  local avail=$(($(left) - 5))
  ((avail < limit)) && limit=$avail
  if ((limit < 15)); then
    note "[$name] SKIPPED: $(left)s of the budget left"
    echo "{\"step\": \"$name\", \"rc\": \"skipped\"}" >>"$STEPS"
    return 99
  fi
  echo "=== [$name] timeout ${limit}s ($(left)s left): $(echo "$*" | tr -s ' \n' ' ' | cut -c1-240)"
  local t0=$SECONDS
  timeout -s KILL "$limit" "$@" 2>&1 | tee "$OUT/$name.log" | grep --line-buffered -vE '^[IWE][0-9]{4} |^\s*$'
  local rc=${PIPESTATUS[0]}
  echo "{\"step\": \"$name\", \"rc\": $rc, \"seconds\": $((SECONDS - t0)), \"limit\": $limit}" >>"$STEPS"
  ((rc == 137 || rc == 124)) && note "[$name] TIMED OUT after ${limit}s"
  ((rc != 0 && rc != 137 && rc != 124)) && note "[$name] FAILED rc=$rc: $(grep -E 'Error|error|Exception' "$OUT/$name.log" | tail -1 | cut -c1-300)"
  return "$rc"
}

echo "device suite: smoke=$SMOKE budget=${BUDGET}s out=$OUT $(date -u +%FT%TZ)" | tee "$SUMMARY"
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi") | tee -a "$SUMMARY"

# ---- 0. environment ----
run env 90 "$PY" benchmarks/device_env.py --json_out="$OUT/env.json"
EXTRA_PATH=$(grep '^PYTHONPATH=' "$OUT/env.log" | tail -1 | cut -d= -f2-)
[[ -n "$EXTRA_PATH" ]] && export PYTHONPATH="$EXTRA_PATH${PYTHONPATH:+:$PYTHONPATH}"
grep -E 'MISSING' "$OUT/env.log" | sed 's/^/[env] /' | tee -a "$SUMMARY"

# ---- 1. 7B decode: mathjax vs transformers ----
if [[ $SMOKE == 1 ]]; then
  SAMP=(--preset=tiny --prompt_len=16 --num_samples=16 --batch_size=16 --temperature=0.7)
  NEW=32 NEW_FALLBACK=8 T_MJ=60 T_MJ2=40 T_HF=60 SLABEL="sample tiny"
else
  SAMP=(--preset=llama2_7b --prompt_len=128 --num_samples=256 --batch_size=256 --temperature=0.7)
  NEW=512 NEW_FALLBACK=128 T_MJ=200 T_MJ2=120 T_HF=130 SLABEL=7B
fi
run sample_mathjax "$T_MJ" "$PY" benchmarks/accelerator_sampling.py --side=mathjax "${SAMP[@]}" \
  --max_new_tokens=$NEW --repeats=1 --json_out="$OUT/sample_mathjax.json"
rc=$?
if ((rc == 137 || rc == 124)); then
  NEW=$NEW_FALLBACK
  note "[sample_mathjax] retrying with $NEW new tokens per sample"
  run sample_mathjax_fallback "$T_MJ2" "$PY" benchmarks/accelerator_sampling.py --side=mathjax "${SAMP[@]}" \
    --max_new_tokens=$NEW --repeats=1 --json_out="$OUT/sample_mathjax.json"
fi
[[ -f "$OUT/sample_mathjax.json" ]] && grep -h '^mathjax:' "$OUT"/sample_mathjax*.log | tail -1 | sed "s/^/[$SLABEL] /" | tee -a "$SUMMARY"
run sample_transformers "$T_HF" "$PY" benchmarks/accelerator_sampling.py --side=transformers "${SAMP[@]}" \
  --max_new_tokens=$NEW --json_out="$OUT/sample_transformers.json"
[[ -f "$OUT/sample_transformers.json" ]] && grep -h '^transformers:\|OOM' "$OUT/sample_transformers.log" | sed "s/^/[$SLABEL] /" | tee -a "$SUMMARY"
if [[ -f "$OUT/sample_mathjax.json" && -f "$OUT/sample_transformers.json" ]]; then
  "$PY" benchmarks/accelerator_sampling.py --compare="$OUT/sample_mathjax.json,$OUT/sample_transformers.json" 2>&1 |
    grep '^ratio' | sed "s/^/[$SLABEL] /" | tee -a "$SUMMARY"
fi

# ---- 2. GRPO rollout + update (scripts/train_rl.py as a user runs it) ----
GRPO_IN=/tmp/device_suite_grpo_inputs
if [[ $SMOKE == 1 ]]; then
  GPRESET=tiny GSTEPS=3 PPS=4 PPS_FALLBACK=2 GRP=4 GNEW=16 GSEQ=48 OVERLONG=8 T_SET=60 T_GRPO=60
else
  GPRESET=qwen2_5_math_1_5b GSTEPS=3 PPS=16 PPS_FALLBACK=8 GRP=8 GNEW=512 GSEQ=640 OVERLONG=512 T_SET=90 T_GRPO=180
fi
# grpo_run NAME PROMPTS_PER_STEP: train_rl in its own process group, stopped (SIGKILL: no final
# checkpoint save) as soon as metrics.jsonl holds GSTEPS lines.
grpo_run() {
  local name=$1 pps=$2 wd=/tmp/device_suite_grpo_$1
  rm -rf "$wd"
  run "$name" "$T_GRPO" bash -c '
    "$0" scripts/train_rl.py --config=configs/qwen2_5_math_1_5b_grpo.py --workdir="$1" \
      --config.init_from="$2/model" --config.data.train_files="$2/train.jsonl" --config.steps="$3" \
      --config.rl.prompts_per_step="$4" --config.rl.group_size="$5" --config.rl.max_new_tokens="$6" \
      --config.seq_len="$7" --config.rl.overlong_buffer="$8" --config.rl.drop_equal_groups=False \
      --config.tensorboard=False --config.checkpoint_every=0 --config.eval_every=0 &
    pid=$!
    while kill -0 $pid 2>/dev/null; do
      if [[ -f "$1/metrics.jsonl" && $(wc -l <"$1/metrics.jsonl") -ge $3 ]]; then
        echo "all $3 steps logged: stopping before the final checkpoint save"; kill -KILL $pid; wait $pid; exit 0
      fi
      sleep 1
    done
    wait $pid' "$PY" "$wd" "$GRPO_IN" "$GSTEPS" "$pps" "$GRP" "$GNEW" "$GSEQ" "$OVERLONG"
  local rc=$?
  cp -f "$wd/metrics.jsonl" "$OUT/$name.metrics.jsonl" 2>/dev/null
  "$PY" - "$wd/metrics.jsonl" "$OUT/$name.json" "$pps" "$GRP" "$GNEW" "$GSEQ" "$GPRESET" <<'EOF' | tee -a "$SUMMARY"
import json, sys
path, out, pps, grp, new, seq, preset = sys.argv[1:]
try:
    rows = [json.loads(l) for l in open(path) if l.strip()]
except FileNotFoundError:
    rows = []
keys = ["step_seconds", "rollout_seconds", "update_seconds", "tokens_per_sec", "rollout_tokens_per_sec",
        "response_length", "truncated_fraction"]
steady = rows[1:] or rows
mean = {k: sum(r.get(k, 0) for r in steady) / len(steady) for k in keys} if steady else {}
json.dump({"preset": preset, "prompts_per_step": int(pps), "group_size": int(grp), "max_new_tokens": int(new),
           "seq_len": int(seq), "steps": rows, "mean_after_first": mean, "first_step_seconds":
           rows[0]["step_seconds"] if rows else None}, open(out, "w"), indent=1)
for r in rows:
    print(f"[grpo] step {r['step']}: {r['step_seconds']:.1f}s (rollout {r['rollout_seconds']:.1f}s at "
          f"{r.get('rollout_tokens_per_sec', 0):,.0f} tok/s, update {r['update_seconds']:.1f}s), "
          f"{r['tokens_per_sec']:,.0f} tok/s, len {r['response_length']:.0f}")
if mean:
    print(f"[grpo] {preset} {pps}x{grp} samples x <= {new} tokens, seq {seq}: after step 1 "
          f"{mean['step_seconds']:.1f}s/step (rollout {mean['rollout_seconds']:.1f}s, update "
          f"{mean['update_seconds']:.1f}s), {mean['tokens_per_sec']:,.0f} tok/s over the step")
else:
    print(f"[grpo] {preset} {pps}x{grp}: no step logged")
EOF
  return $rc
}
run grpo_setup "$T_SET" "$PY" benchmarks/grpo_setup.py --preset=$GPRESET --out_dir=$GRPO_IN &&
  grep -h '^grpo inputs' "$OUT/grpo_setup.log" | sed 's/^/[grpo] /' | tee -a "$SUMMARY"
if [[ -f "$GRPO_IN/model/config.json" ]]; then
  grpo_run grpo "$PPS"
  rc=$?
  if ((rc != 0 && rc != 137 && rc != 124)) && grep -qiE 'RESOURCE_EXHAUSTED|out of memory' "$OUT/grpo.log"; then
    note "[grpo] out of memory at $PPS prompts/step; retrying at $PPS_FALLBACK"
    grpo_run grpo_fallback "$PPS_FALLBACK"
  fi
fi

# ---- 3. accelerator check ----
if [[ $SMOKE == 1 ]]; then
  VAL=(--train_layers=1 --sample_layers=1 --train_batch=1 --seq_len=64) T_VAL=30  # its 8192^3 matmul: times out on CPU
else
  VAL=(--train_layers=8 --sample_layers=16) T_VAL=150
fi
run validate "$T_VAL" "$PY" scripts/validate_device.py "${VAL[@]}" --json_out="$OUT/validate.json"
grep -E '^\| ' "$OUT/validate.log" | sed 's/^/[validate] /' | tee -a "$SUMMARY"

echo
echo "===== summary ($((SECONDS - START))s of ${BUDGET}s) ====="
cat "$SUMMARY"
echo "steps:"
cat "$STEPS"
