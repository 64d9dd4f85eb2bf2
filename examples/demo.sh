#!/usr/bin/env bash
# The main job end to end on real public data from data/samples (no server, no key):
# import several formats, report on data quality, export SFT and DPO training files.
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

step "export: SFT (TRL conversational messages, seeded 95/5 split keeping each prompt on one side)"
gristmill export lima --format trl-lm --out "$OUT/lima-sft" --split train=0.95,validation=0.05 --seed 0
gristmill export lima --format openai-chat --out "$OUT/lima-openai.jsonl"
step "export: DPO (TRL preference with explicit prompt, OpenAI preference)"
gristmill export hh-rlhf --format trl-preference --out "$OUT/hh-dpo" --split train=0.9,test=0.1
gristmill export hh-rlhf --format openai-preference --out "$OUT/hh-openai-preference.jsonl"

step "where everything is"
cat <<EOT
workspace:        $WS   (GRISTMILL_WORKSPACE=$WS gristmill ls)
quality reports:  $WS/datasets/lima/v1/report.html
                  $WS/datasets/hh-rlhf/v1/report.html
                  $WS/datasets/gsm8k/v1/report.html
quarantine:       $WS/quarantine/   (every refused row with file, line and reason)
SFT files:        $OUT/lima-sft/{train,validation}.jsonl   $OUT/lima-openai.jsonl
DPO files:        $OUT/hh-dpo/{train,test}.jsonl           $OUT/hh-openai-preference.jsonl
EOT
