#!/usr/bin/env bash
# The main job end to end on real public data from data/samples (no server to install,
# no key; models are the offline ones packaged in PyPI wheels): import several formats,
# report on data quality, curate web text, score and sample it (Density, Ask-LLM),
# export SFT and DPO files, synthesise and judge answers, fine-tune with TRL, evaluate
# before and after, and start the annotation app on a demo project.
# DEMO_SERVE=0 skips keeping the app running at the end (it is still started and checked).
set -euo pipefail
cd "$(dirname "$0")/.."
WS="${1:-demo-workspace}"
S=data/samples
OUT="$WS/exports"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

rm -rf "$WS"
step "workspace"
gristmill init "$WS"
export GRISTMILL_WORKSPACE="$WS"

step "import: SFT conversations (LIMA, Alpaca-format with history)"
gristmill import "$S/lima/lima.json" --as lima
step "import: ShareGPT chats and tool calls"
gristmill import "$S/llamafactory_demos/glaive_toolcall_en_demo.json" --as toolcalls
step "import: preference pairs (Anthropic HH-RLHF transcripts; 4 broken rows are quarantined)"
gristmill import "$S/hh_rlhf/harmless-base-test.jsonl.gz" --as hh-rlhf
step "import: eval sets (GSM8K, a folder of MMLU CSVs)"
gristmill import "$S/gsm8k/test.jsonl" --as gsm8k
gristmill import "$S/mmlu_subset/test" --as mmlu
step "import: web documents (Dolma Common Crawl, gzip) and agent traces (tau-bench)"
gristmill import "$S/dolma_cc_samples" --as web --include "*.jsonl" --include "*.json.gz"
gristmill import "$S/tau_bench_trajectories/gpt-4o-airline.json.gz" --as agent-runs

step "datasets"
gristmill ls

step "quality reports"
gristmill report lima
gristmill report hh-rlhf
gristmill report gsm8k

step "SQL over the workspace"
gristmill query "SELECT len(messages) AS turns, count(*) AS conversations FROM lima GROUP BY 1 ORDER BY 1"

step "curate web text: language, Gopher, C4, FineWeb rules, exact + MinHash dedup, PII"
gristmill curate examples/curate-web.yaml --input web --output web-clean --workers 2 --report

step "score: Density (RACE sketch over MiniLM embeddings) and Ask-LLM (SmolLM2, P(yes))"
gristmill score web-clean --by density
gristmill score web-clean --by ask_llm
step "sample: keep the best half by Ask-LLM; a 30% density sample for coverage, with plots"
gristmill sample web-clean --by ask_llm --rate 0.5 -o web-ask-llm
gristmill sample web-clean --by density --rate 0.3 --seed 0 -o web-density --plot

step "export: SFT (TRL conversational messages, seeded 95/5 split keeping each prompt on one side)"
gristmill export lima --format trl-lm --out "$OUT/lima-sft" --split train=0.95,validation=0.05 --seed 0
gristmill export lima --format openai-chat --out "$OUT/lima-openai.jsonl"
step "export: DPO (TRL preference with explicit prompt, OpenAI preference)"
gristmill export hh-rlhf --format trl-preference --out "$OUT/hh-dpo" --split train=0.9,test=0.1
gristmill export hh-rlhf --format openai-preference --out "$OUT/hh-openai-preference.jsonl"

step "synthetic data and AI feedback (teacher, judge, cached rerun, DPO pairs)"
examples/synth_demo.sh "$WS-synth"
export GRISTMILL_WORKSPACE="$WS"

step "train: SFT with LoRA on LIMA through TRL (a few steps of the packaged SmolLM2)"
gristmill sample lima --size 64 --by random --seed 0 -o lima-64
gristmill train sft --data lima-64 --model smollm2 --max-steps 3 --batch-size 2 \
  --max-length 128 --lora r=8,alpha=16,targets=q_proj,v_proj --threads 2 \
  --output "$WS/runs/demo-sft"

step "evaluate: OpenBookQA (log-likelihood multiple choice) before and after, compared"
gristmill eval run openbookqa --model smollm2 --sample 40 --name eval-base
gristmill eval run openbookqa --model "$WS/runs/demo-sft" --sample 40 --name eval-sft
gristmill eval compare eval-base eval-sft

step "where everything is"
cat <<EOT
workspace:        $WS   (GRISTMILL_WORKSPACE=$WS gristmill ls)
quality reports:  $WS/datasets/lima/v1/report.html
                  $WS/datasets/hh-rlhf/v1/report.html
                  $WS/datasets/gsm8k/v1/report.html
quarantine:       $WS/quarantine/   (every refused row with file, line and reason)
SFT files:        $OUT/lima-sft/{train,validation}.jsonl   $OUT/lima-openai.jsonl
DPO files:        $OUT/hh-dpo/{train,test}.jsonl           $OUT/hh-openai-preference.jsonl
curation:         $WS/datasets/web-clean/v1/  (gristmill curate --explain ID shows why a page went)
samples:          $WS/datasets/web-density/v1/sample.html (score histograms, embedding map)
fine-tuned model: $WS/runs/demo-sft/ (run_card.json: data lineage, hyper-parameters, losses)
EOT

step "annotation app: demo projects (rank HH-RLHF pairs, rate LIMA answers)"
PORT="${DEMO_PORT:-8000}"
gristmill serve --demo --port "$PORT" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -fs -o /dev/null "http://127.0.0.1:$PORT/login" && break
  kill -0 $SERVER 2>/dev/null || { echo "the app did not start" >&2; exit 1; }
  sleep 0.5
done
curl -fs -o /dev/null "http://127.0.0.1:$PORT/login" || { echo "the app did not answer" >&2; exit 1; }
if [ "${DEMO_SERVE:-1}" = 1 ] && [ -t 0 ]; then
  echo "the app is running at http://127.0.0.1:$PORT (Ctrl-C stops it)"
  wait $SERVER
else
  echo "the app answered at http://127.0.0.1:$PORT; stopping it (run 'gristmill serve --demo' to keep it)"
fi
