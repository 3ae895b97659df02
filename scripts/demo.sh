#!/usr/bin/env bash
# `make demo` after set-up: the whole pipeline on the embedded demo data, on the CPU, in a few minutes.
#   demo-data -> convert (DALI shards) -> train recipes/demo.yaml -> eval (clean + Task 2 degradations
#   on the full test images, as the paper) -> the same eval degrading the model-size crops instead (the
#   old path, for contrast) -> report, then print the tables. Everything lands in runs/demo/
#   (gitignored); a rerun starts over.
set -euo pipefail
cd "$(dirname "$0")/.."

GF=.venv/bin/genimage-fast
RUN=runs/demo
DATA=$RUN/data
TASK2=none,lr:112,lr:64,jpeg:65,jpeg:30,blur:3,blur:5
[ -x "$GF" ] || { echo "demo: $GF is missing; run 'make setup' first" >&2; exit 1; }

start=$(date +%s)
step() { echo; echo "==> [$(( $(date +%s) - start ))s] $*"; }

rm -rf "$RUN"  # idempotent: every run regenerates data, records, model and results
mkdir -p "$RUN/logs"

step "demo data: 8 generators in the official layout -> $DATA/genimage"
"$GF" demo-data "$DATA/genimage"

step "convert to DALI webdataset shards -> $DATA/records"
"$GF" convert "$DATA/genimage" "$DATA/records" --format dali --no-progress

step "train recipes/demo.yaml on the CPU -> $RUN (log: $RUN/logs/train.log)"
"$GF" train recipes/demo.yaml --data "$DATA/records" --out "$RUN" 2>&1 | tee "$RUN/logs/train.log"

step "eval on the val split, clean and degraded at the source ($TASK2)"
"$GF" eval "$RUN" --data "$DATA/records" --degrade "$TASK2" --degrade-at source --out "$RUN" --save-predictions \
  > "$RUN/logs/eval.log"
tail -n 1 "$RUN/logs/eval.log"

step "the same eval degrading the model-size crop instead (--degrade-at crop, not the paper's) -> $RUN/eval-crop"
"$GF" eval "$RUN" --data "$DATA/records" --degrade "$TASK2" --degrade-at crop --out "$RUN/eval-crop" \
  > "$RUN/logs/eval-crop.log"
tail -n 1 "$RUN/logs/eval-crop.log"

step "report (paper layout, side by side with the published numbers) -> $RUN/report"
"$GF" report "$RUN/results.json" --out "$RUN/report" > "$RUN/logs/report.log"
tail -n 1 "$RUN/logs/report.log"

step "results ($RUN/results.md)"
cat "$RUN/results.md"
echo
.venv/bin/python - "$RUN" "$(( $(date +%s) - start ))" <<'PY'
import json, sys
run = sys.argv[1]
summary = json.load(open(f"{run}/summary.json"))
source, crop = (json.load(open(f"{run}/{p}results.json")) for p in ("", "eval-crop/"))
print("Task 2, mean accuracy (%) over the 8 subsets: degrading the test image (source) vs its crop")
print(f"{'spec':<9} {'source':>7} {'crop':>7}")
for spec in source["degrade"]:
    print(f"{spec:<9} {100 * source['accuracy'][spec]['mean']:>7.1f} {100 * crop['accuracy'][spec]['mean']:>7.1f}")
mean = summary["val_accuracy"]["mean"]
print(f"demo finished in {sys.argv[2]} s: mean validation accuracy {100 * mean:.1f}% "
      f"(training {summary['wall_seconds']:.0f} s, {summary['images_per_second']:.0f} images/s; "
      f"best.pt chosen on: {summary['selection']['set']}; eval scored {source['protocol']['checkpoint']})")
print("files: runs/demo/{summary.json,results.json,results.md,predictions.csv,eval-crop/,report/report.md}")
PY
