#!/usr/bin/env bash
# A small synthetic run on the packaged offline model (SmolLM2-135M-Instruct, in-process;
# no server, no key): answers with two candidates per MT-Bench question, a judge's
# ratings read from its next-token probabilities (G-Eval's weighted mean: a 135M model
# seldom writes valid JSON, but its score-digit probabilities still rate), a cached rerun
# that costs no model call, DPO pairs from the ratings, and a stratified sample for
# people to verify.
# Usage: examples/synth_demo.sh [WORKSPACE]   (gristmill on PATH, e.g. .venv/bin)
set -euo pipefail
cd "$(dirname "$0")/.."
WS="${1:-synth-demo-workspace}"
S=data/samples

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

rm -rf "$WS"
gristmill init "$WS" >/dev/null
export GRISTMILL_WORKSPACE="$WS"
gristmill import "$S/fastchat_mtbench/mt_bench_question.jsonl" --as mtbench >/dev/null

step "synth generate: 2 candidates for 2 MT-Bench questions (sampled, seeds recorded)"
gristmill synth generate mtbench --limit 2 -n 2 --max-tokens 24 --threads 1 -q

step "synth judge: helpfulness 0-4 as the probability-weighted mean of the score digit"
gristmill synth judge mtbench-gen --dimensions helpfulness --verdict logprobs --threads 1 -q

step "the same run again: answered by the cache"
gristmill synth judge mtbench-gen --dimensions helpfulness --verdict logprobs --threads 1 -q \
  -o mtbench-gen-judged-again

step "run card (model, prompts, parameters, counts, failures, tokens)"
gristmill synth card mtbench-gen-judged --failures 1

step "ratings -> DPO pairs with margins (ties and unrated records are counted, not lost)"
gristmill export mtbench-gen-judged --format trl-preference --pairs ratings \
  --out "$WS/exports/dpo.jsonl" --overwrite

step "a stratified sample for people to verify, and its annotation question"
gristmill synth verify-sample mtbench-gen-judged --per-stratum 1 \
  --questions-out "$WS/verify-question.json"
