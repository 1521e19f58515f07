#!/bin/bash
# PushT with 10,000 scripted episodes on one GPU machine, in one call of under 10 minutes:
#   1. CUDA smoke test: train two tiny runs (the PushT model and a larger one) on 32 episodes and
#      plan 2 episodes with each planner on the GPU; their steps/s set the step budgets below.
#   2. Collect 10,000 episodes (seeds 0-9999) with 16 processes.
#   3. Train three runs at once on the one GPU until LIMIT seconds are nearly spent:
#      A: the PushT recipe (64 px, 6-frame clips, batch 64), up to 8000 steps;
#      B: the same with batch 256; C: a larger model (embed 128, conv 32-64-128-128, predictor
#      128 wide, 3 deep) with batch 256.
#   4. Pack each run's latest checkpoint (weights and configs) into $OUT/run_{A,B,C}.tgz.
# Plan them anywhere: `jepaworld plan --run A --env jepaworld/PushT-v0 --out evalA`.
# Needs jepaworld with the [pusht] extra importable by $PY (or wheels in .whl/, installed to
# /tmp/site for a machine without a package index). Figures it gave: README, section PushT.
# Usage: OUT=dir [LIMIT=545] [DEV=cuda] [EPS=625] [NP=16] bash benchmarks/pusht_gpu.sh
set -u
T0=$(date +%s); LIMIT=${LIMIT:-545}; DEV=${DEV:-cuda}; EPS=${EPS:-625}; NP=${NP:-16}; SM=${SM:-300}; PY=${PY:-python3}
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1
el() { echo $(( $(date +%s) - T0 )); }
[ ! -d .whl ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=/tmp/site:$PWD
J="$PY -m jepaworld.cli"; W=${W:-/tmp/w}; mkdir -p $W
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc; free -g | head -2
$PY -c "import torch,gym_pusht,pymunk,jepaworld.envs.pusht;print(torch.__version__,torch.cuda.is_available() and torch.cuda.get_device_name())" || exit 4
fin() { tar -czf $OUT/logs.tgz -C $W $(cd $W && ls *.log) 2>/dev/null; }
A="--clip-frames 6 --model.smooth-weight 0 --model.action-dim 2 --device $DEV --workers 2 --log-every 50"
C="--model.embed-dim 128 --model.conv-channels 32 64 128 128 --model.pred-dim 128 --model.pred-depth 3"
echo "[$(el)] smoke"
for k in 0 1; do $J collect --env jepaworld/PushT-v0 --episodes 16 --seed $((500000+k*16)) --out $W/s$k > $W/smoke_c$k.log 2>&1 & done; wait
$J train --data $W/s0 --mix $W/s1 --out $W/sa --steps $SM --batch-size 256 $A > $W/smoke_a.log 2>&1 &
$J train --data $W/s0 --mix $W/s1 --out $W/sc --steps $SM --batch-size 256 $A $C > $W/smoke_c.log 2>&1 &
wait
for p in cem gradient mppi; do $J plan --run $W/sa --out $W/p_$p --env jepaworld/PushT-v0 --episodes 2 --media 1 --latency-repeats 2 --device $DEV --planner $p > $W/smoke_plan_$p.log 2>&1 & done; wait
tail -n 2 $W/smoke_*.log
for p in cem gradient mppi; do test -f $W/p_$p/results.json || { echo "plan $p failed"; fin; exit 5; }; done
for p in cem gradient mppi; do cp $W/p_$p/results.json $OUT/smoke_plan_$p.json; done
read RA RC < <($PY - <<PY
import json
def rate(r):
    m={d["step"]:d for d in map(json.loads,open(f"$W/{r}/metrics.jsonl"))}
    a,b=$SM//3//50*50,$SM
    return (b-a)/(m[b]["elapsed_s"]-m[a]["elapsed_s"])
print(f"{rate('sa'):.2f} {rate('sc'):.2f}")
PY
) || { echo "smoke train failed"; fin; exit 6; }
echo "[$(el)] smoke rates steps/s (batch 256, 2 at once): small $RA big $RC"
echo "[$(el)] collect"
for k in $(seq 0 $((NP-1))); do $J collect --env jepaworld/PushT-v0 --episodes $EPS --seed $((k*EPS)) --out $W/d$k > $W/c$k.log 2>&1 & done; wait
for k in $(seq 0 $((NP-1))); do test -f $W/d$k/manifest.json || { echo "collect $k failed"; tail -3 $W/c$k.log; fin; exit 7; }; done
MIX="--data $W/d0 --mix $(for k in $(seq 1 $((NP-1))); do printf "$W/d$k "; done)"
AV=$(( T0 + LIMIT - 45 - $(date +%s) ))
read SA SB SC < <($PY -c "a,c,t=$RA,$RC,$AV;s=lambda r:max(0,int(r*t*0.7//500*500));print(min(8000,s(a)),s(a),s(c))")
echo "[$(el)] train for ${AV}s: A $SA steps b64, B $SB b256, C(big) $SC b256"
PIDS=""
go() { local r=$1 n=$2 b=$3; shift 3; [ "$n" -gt 0 ] || return 0
  $J train $MIX --out $W/$r --steps $n --batch-size $b $A --data-cache-mb 12500 --checkpoint-every 500 "$@" > $W/train_$r.log 2>&1 & PIDS="$PIDS $!"; }
go A $SA 64; go B $SB 256; go C $SC 256 $C
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv -l 20 > $W/smi.log 2>&1 &
SMI=$!
alive() { for p in $PIDS; do kill -0 $p 2>/dev/null && return 0; done; return 1; }
while alive && [ $(date +%s) -lt $(( T0 + LIMIT - 25 )) ]; do sleep 3; done
kill $PIDS $SMI 2>/dev/null; sleep 2
echo "[$(el)] pack"
for r in A B C; do
  ck=$(ls -d $W/$r/checkpoints/step_* 2>/dev/null | tail -1); [ -n "$ck" ] || continue
  s=$(basename $ck); tail -n 1 $W/$r/metrics.jsonl
  tar -czf $OUT/run_$r.tgz -C $W $r/config.json $r/metrics.jsonl $r/checkpoints/$s/config.json $r/checkpoints/$s/model.safetensors $r/checkpoints/$s/metrics.jsonl
done
fin; ls -la $OUT; echo "[$(el)] done"
