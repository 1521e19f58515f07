#!/bin/bash
# PushT on one GPU machine, in one call of under 10 minutes: collect with many processes, then
# train several runs at once on the one GPU, each with as many steps as its measured rate fits.
#   1. Smoke: collect 32 episodes and train every run's config at once for SM steps on them (the
#      CUDA path, and each run's steps/s with the others beside it); PLAN_SMOKE=1 also plans 2
#      episodes with each planner on the GPU.
#   2. Collect NP*EPS episodes (seeds 0 to NP*EPS-1) with NP processes.
#   3. Train the runs at once until LIMIT seconds are nearly spent; each run's --steps (the LR
#      schedule's length) is its smoke rate times the time left, times MARGIN, at most MAX.
#   4. Pack each run's latest checkpoint (weights and configs) into $OUT/run_NAME.tgz.
# Plan them anywhere: `jepaworld plan --run A --env jepaworld/PushT-v0 --out evalA`.
# Runs: lines "NAME BATCH MAX_STEPS [train options]" in $RUNS (default below), all sharing the
# PushT recipe's options ($BASE). Needs jepaworld with the [pusht] extra importable by $PY (or
# wheels in .whl/, installed to /tmp/site for a machine without a package index).
# Figures it gave: README, section PushT.
# COMPILE=reduce-overhead trains with `--compile reduce-overhead` (CUDA graphs: 5-8x faster steps
# in benchmarks/compile_speed.py on one H200, after 30-70 s of compiling; not yet run here).
# Usage: OUT=dir [LIMIT=545] [DEV=cuda] [EPS=250] [NP=16] [RUNS=...] [COMPILE=off] bash benchmarks/pusht_gpu.sh
set -u
T0=$(date +%s); LIMIT=${LIMIT:-545}; DEV=${DEV:-cuda}; EPS=${EPS:-250}; NP=${NP:-16}; SM=${SM:-150}
PY=${PY:-python3}; MARGIN=${MARGIN:-0.85}; PLAN_SMOKE=${PLAN_SMOKE:-0}; COMPILE=${COMPILE:-off}
BIG="--model.embed-dim 128 --model.conv-channels 32 64 128 128 --model.pred-dim 128 --model.pred-depth 3"
BIGGER="--model.embed-dim 192 --model.conv-channels 32 64 128 256 --model.pred-dim 192 --model.pred-depth 4"
VIT="--model.encoder vit --model.vit-dim 192 --model.vit-depth 6 --model.vit-heads 3 --model.vit-patch 8 --model.embed-dim 192 --model.pred-dim 192 --model.pred-depth 4"
RUNS=${RUNS:-"A 64 20000 $BIG
B 64 20000 $BIGGER
C 64 20000 $VIT"}
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1
el() { echo $(( $(date +%s) - T0 )); }
[ ! -d .whl ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=/tmp/site:$PWD
J="$PY -m jepaworld.cli"; W=${W:-/tmp/w}; mkdir -p $W
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc; free -g | head -2
$PY -c "import torch,gym_pusht,pymunk,jepaworld.envs.pusht;print(torch.__version__,torch.cuda.is_available() and torch.cuda.get_device_name())" || exit 4
fin() { tar -czf $OUT/logs.tgz -C $W $(cd $W && ls *.log) 2>/dev/null; }
BASE="--clip-frames 6 --model.smooth-weight 0 --model.action-dim 2 --device $DEV --workers 2 --log-every 50 --compile $COMPILE"
each() { while read -r -u 3 name batch max args; do [ -z "$name" ] || "$@" "$name" "$batch" "$max" "$args"; done 3<<< "$RUNS"; }
echo "[$(el)] smoke: $SM steps of every run at once"
for k in 0 1; do $J collect --env jepaworld/PushT-v0 --episodes 16 --seed $((500000+k*16)) --out $W/s$k > $W/smoke_c$k.log 2>&1 & done; wait
smoke() { $J train --data $W/s0 --mix $W/s1 --out $W/smoke_$1 --steps $SM --batch-size $2 $BASE $4 > $W/smoke_$1.log 2>&1 & }
each smoke; wait
if [ "$PLAN_SMOKE" = 1 ]; then
  first=$(echo "$RUNS" | awk 'NF {print $1; exit}')
  for p in cem gradient mppi; do $J plan --run $W/smoke_$first --out $W/p_$p --env jepaworld/PushT-v0 --episodes 2 --media 1 --latency-repeats 2 --device $DEV --planner $p > $W/smoke_plan_$p.log 2>&1 & done; wait
  for p in cem gradient mppi; do cp $W/p_$p/results.json $OUT/smoke_plan_$p.json || { echo "plan $p failed"; fin; exit 5; }; done
fi
rate() { $PY - "$W/smoke_$1/metrics.jsonl" $SM <<'PY'
import json, sys
m = {d["step"]: d for d in map(json.loads, open(sys.argv[1]))}
b = int(sys.argv[2]); a = b // 3 // 50 * 50
print(f"{(b - a) / (m[b]['elapsed_s'] - m[a]['elapsed_s']):.2f}")
PY
}
show_rate() { echo "  $1: $(rate $1 || echo failed) steps/s"; }
each show_rate | tee $W/rates.txt
grep -q failed $W/rates.txt && { echo "smoke train failed"; tail -n 5 $W/smoke_*.log; fin; exit 6; }
echo "[$(el)] collect $((NP*EPS)) episodes"
for k in $(seq 0 $((NP-1))); do $J collect --env jepaworld/PushT-v0 --episodes $EPS --seed $((k*EPS)) --out $W/d$k > $W/c$k.log 2>&1 & done; wait
for k in $(seq 0 $((NP-1))); do test -f $W/d$k/manifest.json || { echo "collect $k failed"; tail -3 $W/c$k.log; fin; exit 7; }; done
MIX="--data $W/d0 --mix $(for k in $(seq 1 $((NP-1))); do printf "$W/d$k "; done)"
AV=$(( T0 + LIMIT - 40 - $(date +%s) ))
[ "$AV" -gt 60 ] || { echo "no time left to train (${AV}s): raise LIMIT or collect fewer episodes"; fin; exit 8; }
echo "[$(el)] train for ${AV}s"
go() { local r=$(grep "^  $1:" $W/rates.txt | awk '{print $2}')
  local n=$($PY -c "print(max(0, min($3, int($r * $AV * $MARGIN) // 50 * 50)))")
  echo "  $1: $n steps, batch $2: $4"; [ "$n" -gt 0 ] || return 0
  $J train $MIX --out $W/$1 --steps $n --batch-size $2 $BASE --data-cache-mb 6000 --checkpoint-every 500 $4 > $W/train_$1.log 2>&1 & echo $! >> $W/pids; }
: > $W/pids; each go
PIDS=$(cat $W/pids)
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv -l 20 > $W/smi.log 2>&1 &
SMI=$!
alive() { for p in $PIDS; do kill -0 $p 2>/dev/null && return 0; done; return 1; }
while alive && [ $(date +%s) -lt $(( T0 + LIMIT - 20 )) ]; do sleep 3; done
kill $PIDS $SMI 2>/dev/null; sleep 2
echo "[$(el)] pack"
pack() { local ck=$(ls -d $W/$1/checkpoints/step_* 2>/dev/null | tail -1); [ -n "$ck" ] || return 0
  local s=$(basename $ck); echo "  $1: $(tail -n 1 $W/$1/metrics.jsonl)"
  tar -czf $OUT/run_$1.tgz -C $W $1/config.json $1/metrics.jsonl $1/checkpoints/$s/config.json $1/checkpoints/$s/model.safetensors $1/checkpoints/$s/metrics.jsonl; }
each pack
fin; ls -la $OUT; echo "[$(el)] done"
