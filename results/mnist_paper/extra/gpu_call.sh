#!/bin/bash
# Session 2026-11-26 evening, one device call: issue-2 one-cell check (default recipe, full MNIST, resnet18), paper grid
# ResNet-34 seed 1 (fast methods first, then oracles + fine-tune), Bad Teaching epochs 2/3 and PBU MC Fisher on seed 1.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 UNLEARNBENCH_DATA=/tmp/data UNLEARNBENCH_CACHE=/tmp/cache
START=$(date +%s); LIMIT=${LIMIT:-535}
left() { echo $(( LIMIT - ($(date +%s) - START) )); }
mkdir -p /tmp/data/MNIST/raw /tmp/res/issue2 && for f in .devdata/*.gz; do gunzip -c $f > /tmp/data/MNIST/raw/$(basename $f .gz); done
cp -r results/mnist_paper /tmp/res/mnist_paper
pack() { tar czf $OUT/results.tar.gz -C /tmp res 2>/dev/null; }
{ date -u; nvidia-smi -L; python3 -c "import torch,timm;print(torch.__version__,timm.__version__)"; } > $OUT/env.txt 2>&1; cat $OUT/env.txt
mkdir -p /tmp/res/logs
step() { local name=$1 t=$2; shift 2; [ $t -lt 15 ] && { echo "skip $name"; return; }; local T0=$(date +%s); echo "=== $name (timeout $t s)"
  timeout $t "$@" > /tmp/res/logs/$name.txt 2>&1; local rc=$?; grep -v '%|' /tmp/res/logs/$name.txt | tail -25
  echo "[$name $(( $(date +%s)-T0 )) s, rc $rc]"; pack; }
R="python3 -m unlearnbench.run --dataset mnist --model resnet18 --forget-class 2 --seed 0 --results /tmp/res/issue2/runs.jsonl"
step i2_finetune 120 $R --method finetune
step i2_retrain 60 $R --method retrain
step i2_finetune_again 60 $R --method finetune
S="python3 -m unlearnbench.sweep --config benchmarks/mnist_paper.toml --only model=resnet34 --only seed=1 --no-estimate"
step paper_fast 180 $S --only method=original,fast_effective,bad_teaching,pbu --results /tmp/res/mnist_paper
step bt_e2 40 $S --only method=bad_teaching --set method.bad_teaching.epochs=2 --results /tmp/res/bt_epochs2
step bt_e3 40 $S --only method=bad_teaching --set method.bad_teaching.epochs=3 --results /tmp/res/bt_epochs3
step pbu_mc 60 $S --only method=pbu --set method.pbu.fisher=mc --results /tmp/res/pbu_mc
step paper_slow $(left) $S --only method=retrain,finetune --results /tmp/res/mnist_paper
echo "[total $(( $(date +%s)-START )) s]"
