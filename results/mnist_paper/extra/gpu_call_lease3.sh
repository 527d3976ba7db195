#!/bin/bash
# Third lease (2026-11-27), one device call: (1) perf section (e), the training options on the GPU, which the first
# lease's call cut off; (2) the paper grid's ResNet-34 Bad Teaching cells again under the current defaults (official
# torchvision init of the random teacher, redraws, the "chance" check): seed 0, then seed 1's class 2 if time is left.
# Steps run one at a time (no two processes share the GPU, so every recorded time is uncontended).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 UNLEARNBENCH_DATA=/tmp/data UNLEARNBENCH_CACHE=/tmp/cache
START=$(date +%s); LIMIT=${LIMIT:-500}
left() { echo $(( LIMIT - ($(date +%s) - START) )); }
mkdir -p /tmp/data/MNIST/raw /tmp/res/logs && for f in .devdata/*.gz; do gunzip -c $f > /tmp/data/MNIST/raw/$(basename $f .gz); done
cp -r results/mnist_paper /tmp/res/mnist_paper && rm -rf /tmp/res/mnist_paper/extra /tmp/res/mnist_paper/report
pack() { tar czf $OUT/results.tar.gz -C /tmp res 2>/dev/null; }
{ date -u; nvidia-smi -L; python3 -c "import torch,timm,torchvision,numpy;print(torch.__version__,torchvision.__version__,timm.__version__,numpy.__version__)"; git rev-parse --short HEAD; } > /tmp/res/logs/env.txt 2>&1; cat /tmp/res/logs/env.txt
step() { local name=$1 t=$2; shift 2; [ $t -lt 20 ] && { echo "skip $name"; return; }; local T0=$(date +%s); echo "=== $name (timeout $t s) $(date -u +%T)"
  timeout $t "$@" > /tmp/res/logs/$name.txt 2>&1; local rc=$?; grep -v '%|' /tmp/res/logs/$name.txt | tail -30
  echo "[$name $(( $(date +%s)-T0 )) s, rc $rc]"; pack; }
step perf_options 170 python3 -m unlearnbench.perf --sections options --model resnet34 --options-per-class 6000 --steps 200 \
  --variants channels_last,bf16,bf16_channels_last,compile
S="python3 -m unlearnbench.sweep --config benchmarks/mnist_paper.toml --only model=resnet34 --only method=bad_teaching --results /tmp/res/mnist_paper --no-estimate"
step bt_seed0 $(( $(left) - 20 )) $S --only seed=0
step bt_seed1_class2 $(left) $S --only seed=1 --only forget_class=2
echo "[total $(( $(date +%s)-START )) s]"
