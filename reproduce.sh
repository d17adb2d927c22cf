#!/usr/bin/env bash
# The whole method, offline, from nothing: tasks -> GPT runs -> preprocess -> Simfluence and
# GPTfluence -> held-out test -> results/<preset>/table.md (+ plots).
#   bash reproduce.sh GPU [preset]        preset: quick | default | paper (default: default)
# Every stage is skipped when its outputs exist, so an interrupted call resumes where it stopped.
# Settings of each preset are below; override any of them from the environment, e.g.
#   TASKS="rte sst2" RUNS=8 bash reproduce.sh 0 default
set -euo pipefail
cd "$(dirname "$0")"
source utils/device.sh
GPU="${1:-0}"
PRESET="${2:-default}"
case "$PRESET" in
  quick)    # a smoke test: minutes on 2 CPU cores
    : "${TASKS:=rte webnlg}" "${MODEL:=tiny}" "${RUNS:=6}" "${TEST_RUNS:=2}" "${VALID_NUM:=1}"
    : "${SHOT:=24}" "${SAMPLE:=20}" "${EPOCHS:=2}" "${N_TEST:=30}" "${MAKE_LR:=3e-4}"
    : "${MAX_EPOCH:=15}" "${PATIENCE:=5}" ;;
  default)  # all five tasks, a meaningful table, <= 30 minutes on 2 CPU cores
    : "${TASKS:=rte sst2 boolq webnlg wmt16_de_en}" "${MODEL:=small}" "${RUNS:=12}" "${TEST_RUNS:=3}"
    : "${VALID_NUM:=1}" "${SHOT:=100}" "${SAMPLE:=64}" "${EPOCHS:=2}" "${N_TEST:=50}" "${MAKE_LR:=1e-4}"
    : "${MAX_EPOCH:=40}" "${PATIENCE:=8}" ;;
  paper)    # the paper's sizes (32 runs: 25 train / 2 valid / 5 test; 96 steps): meant for a GPU
    : "${TASKS:=rte sst2 boolq webnlg wmt16_de_en}" "${MODEL:=small}" "${RUNS:=32}" "${TEST_RUNS:=5}"
    : "${VALID_NUM:=2}" "${SHOT:=200}" "${SAMPLE:=128}" "${EPOCHS:=3}" "${N_TEST:=}" "${MAKE_LR:=1e-4}"
    : "${MAX_EPOCH:=300}" "${PATIENCE:=10}" ;;
  *) echo "unknown preset '$PRESET' (quick, default, paper)" >&2; exit 2 ;;
esac
: "${BS:=4}" "${SIM_LR:=1e-3}" "${SIMFLUENCE_LR:=1e-2}" "${TRAIN_BS:=256}" "${SEED:=42}" "${DATA_SEED:=0}"
OUT="results/$PRESET"
WORK="$OUT/work"
mkdir -p "$WORK"
LOG="$OUT/reproduce.log"
pick_device "$GPU"
echo "device: $DEVICE" >>"$LOG"
SECONDS=0
step() { echo "[$(date +%H:%M:%S) +${SECONDS}s] $*" | tee -a "$LOG"; }
run() { "$@" 2>&1 | tee -a "$LOG"; }

n_test_flag=(); [ -n "$N_TEST" ] && n_test_flag=(--n_test "$N_TEST")
step "1/5 task files ($TASKS)"
run python3 utils/prepare_tasks.py --tasks "${TASKS// /,}" --out_dir "$WORK/data" --n_train "$SHOT" \
  "${n_test_flag[@]}" --seed "$DATA_SEED"

for task in $TASKS; do
  step "2/5 runs: $task ($RUNS runs, model $MODEL)"
  run python3 utils/make_runs.py --task "$task" --data_root "$WORK/data" "${n_test_flag[@]}" \
    --data_seed "$DATA_SEED" --model "$MODEL" --seeds "1-$RUNS" --shot "$SHOT" --sample "$SAMPLE" \
    --bs "$BS" --epochs "$EPOCHS" --lr "$MAKE_LR" --output_dir "$WORK/raw/$task" --device "$DEVICE" --no_progress
  step "3/5 preprocess: $task"
  case "$task" in
    webnlg|wmt16_de_en) pre=utils/construct_runs-data-metric.py; metrics="loss bleu rougeL" ;;
    *) pre=utils/construct_runs-data.py; metrics="loss" ;;
  esac
  run python3 "$pre" --raw_root "$WORK/raw/$task" --output_root "$WORK/runs" --task "$task" --no_progress
  python3 - "$WORK" "$task" "$RUNS" "$TEST_RUNS" <<'PY'
import glob, json, sys
work, task, runs, test_runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
dirs = {int(d.rsplit("_seed-", 1)[1]): d for d in glob.glob(f"{work}/runs/{task}/*_seed-*")}
missing = [s for s in range(1, runs + 1) if s not in dirs]
if missing:
    sys.exit(f"processed runs missing for seeds {missing} under {work}/runs/{task}")
seeds = sorted(dirs)[:runs]
entry = {"train": [dirs[s] for s in seeds[:runs - test_runs]], "test": [dirs[s] for s in seeds[runs - test_runs:]]}
path = f"{work}/data_paths_{task}.json"
json.dump({task: entry}, open(path, "w"), indent=1)
PY
  train_file=$(python3 - "$WORK" "$task" "$SHOT" "${N_TEST}" <<'PY'
import sys
sys.path.insert(0, ".")
from gptfluence.tasks import task_file_paths, PAPER_TEST_SIZES
work, task, shot, n_test = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
tr, ev = task_file_paths(f"{work}/data", task, shot, int(n_test) if n_test else PAPER_TEST_SIZES[task])
print(tr, ev)
PY
)
  read -r train_path eval_path <<<"$train_file"
  for metric in $metrics; do
    # Simfluence; GPTfluence as released (f = g); GPTfluence with the paper's separate projections (f != g)
    for spec in "original:$SIMFLUENCE_LR:" "enc_sim:$SIM_LR:" "enc_sim:$SIM_LR:--separate_proj"; do
      IFS=: read -r sim lr extra <<<"$spec"
      name="${sim}_${metric}_seed${SEED}"; [ -n "$extra" ] && name="${sim}_fg_${metric}_seed${SEED}"
      ck="$WORK/output/$task/$name/best-checkpoint.pt"
      if [ -e "$WORK/output/$task/$name/history.json" ]; then
        step "4/5 train $name on $task: done before, kept"
      else
        step "4/5 train $name on $task"
        run python3 train.py --sim_name "$sim" $extra --task "$task" --metric "$metric" \
          --data_paths_dict "$WORK/data_paths_$task.json" --train_data_path "$train_path" \
          --eval_data_path "$eval_path" --valid_num "$VALID_NUM" --lr "$lr" --train_bs "$TRAIN_BS" \
          --max_epoch "$MAX_EPOCH" --patience "$PATIENCE" --warmup_steps 100 --seed "$SEED" \
          --output_dir "$WORK/output" --run_name "$name" --device "$DEVICE" --resume --no_progress
      fi
      if [ ! -e "$WORK/test/$task/$name/metrics.json" ]; then
        step "5/5 test $sim on $task/$metric"
        if ! run python3 test.py --checkpoint "$ck" --save_dir "$WORK/test/$task/$name" --device "$DEVICE" \
            --no_progress; then
          # Simfluence refuses test runs holding ids it never trained on (too few runs for the pool size)
          [ "$sim" = original ] || exit 1
          step "Simfluence cannot simulate $task/$metric (ids it never saw, see above): left out of the table"
        fi
      fi
    done
  done
done
run python3 utils/make_tables.py --metrics_files "$WORK/test/*/*/metrics.json" --stds --out "$OUT/table.md"
mkdir -p "$OUT/plots"
for f in "$WORK"/test/*/*/pred_vs_gt_*.png; do
  [ -e "$f" ] || continue
  rel=${f#"$WORK/test/"}; cp "$f" "$OUT/plots/${rel//\//_}"
done
step "done in ${SECONDS}s: $OUT/table.md"
