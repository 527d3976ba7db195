#!/bin/bash
# A time-boxed GPU run of the paper's MNIST block (e.g. a 15-minute rented GPU), one command (docs/gpu_lease.md):
#   (a) the machine (nvidia-smi, versions) and, briefly, perf sections (d) flops for ResNet-34, DenseNet-121 and
#       ConvNeXt-L (their measured img/s replace benchmarks/gpu_estimate.py's scaling) and (e) options for ResNet-34;
#   (b) as many remaining cells of benchmarks/mnist_paper.toml as fit, JOBS_PER_GPU at once on the GPU, into
#       results/mnist_paper (records are whole files: a cut leaves only finished cells), under a hard time limit.
# It commits nothing. With PACK=DIR, DIR/lease.tar.gz gathers the step logs and
# results/mnist_paper/{records,cells.json,logs} (unpack it in the root of the checkout that keeps the results; for a GPU
# machine whose disk does not outlive the run).
#
#   LIMIT=540 JOBS_PER_GPU=3 ONLY="--only model=resnet34" [SKIP_PERF=1] bash benchmarks/gpu_lease.sh
#
# LIMIT (s) bounds the whole script: 540 leaves ~3 minutes of a 15-minute rental for the machine's start (1-2 min)
# and the transfers; give the whole call a wall limit of LIMIT + 60. MNIST comes from $UNLEARNBENCH_DATA if it
# holds MNIST/raw, else from the gzipped files in .devdata/ (copied along: see docs/gpu_lease.md).
set -u
cd "$(dirname "$0")/.."
START=$(date +%s)
LIMIT=${LIMIT:-540}
N=${JOBS_PER_GPU:-3}
ONLY=${ONLY:---only model=resnet34}
PY=${PYTHON:-python3}
RESULTS=results/mnist_paper
LOGS=${LOGS:-/tmp/lease_logs}  # outside the results; file those worth keeping under results/mnist_paper/extra/
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 UNLEARNBENCH_CACHE=${UNLEARNBENCH_CACHE:-/tmp/cache}
left() { echo $(( LIMIT - ($(date +%s) - START) )); }
mkdir -p "$LOGS"

if [ ! -f "${UNLEARNBENCH_DATA:-/nonexistent}/MNIST/raw/train-images-idx3-ubyte" ]; then
  export UNLEARNBENCH_DATA=/tmp/data
  mkdir -p /tmp/data/MNIST/raw
  for f in .devdata/*.gz; do gunzip -c "$f" > "/tmp/data/MNIST/raw/$(basename "$f" .gz)" || exit 2; done
fi

# every sweep call writes the grid it ran over $RESULTS/sweep.toml: the committed one is put back after each step
cp $RESULTS/sweep.toml /tmp/sweep.toml.keep
pack() {
  cp /tmp/sweep.toml.keep $RESULTS/sweep.toml
  [ -n "${PACK:-}" ] && tar czf "$PACK/lease.tar.gz" -C "$(dirname "$LOGS")" "$(basename "$LOGS")" -C "$PWD" \
    $RESULTS/records $RESULTS/cells.json $( [ -d $RESULTS/logs ] && echo $RESULTS/logs ) 2>/dev/null
}
# step NAME SECONDS CMD...: run CMD under a hard limit, at most what is left but 15 s to pack (timeout signals its
# whole process group: the sweep's workers too), log it, pack
step() {
  local name=$1 t=$2; shift 2
  [ "$t" -gt $(( $(left) - 15 )) ] && t=$(( $(left) - 15 ))
  [ "$t" -lt 20 ] && { echo "=== skip $name: $t s left"; return; }
  local t0=$(date +%s); echo "=== $name (limit $t s) $(date -u +%T)"
  timeout --kill-after=10 "$t" "$@" > "$LOGS/$name.txt" 2>&1; local rc=$?
  grep -v '%|' "$LOGS/$name.txt" | tail -40
  echo "[$name: $(( $(date +%s) - t0 )) s, rc $rc]"; pack
}

{ date -u; nvidia-smi; $PY -c "import torch, torchvision, timm, numpy; print('torch', torch.__version__, \
'torchvision', torchvision.__version__, 'timm', timm.__version__, 'numpy', numpy.__version__)"; \
  git rev-parse --short HEAD 2>/dev/null; git status --short 2>/dev/null | head; } > "$LOGS/env.txt" 2>&1
cat "$LOGS/env.txt"

P="$PY -m unlearnbench.perf --steps 30"
if [ -z "${SKIP_PERF:-}" ]; then  # once per software/GPU is enough: later leases give the sweep these ~2 min
step perf_flops 75 bash -c "$P --sections flops --model resnet34; $P --sections flops --model densenet121; \
  $P --sections flops --model convnext_large --steps 10"
step perf_options 60 $P --sections options --model resnet34 --options-per-class 1000 \
  --variants channels_last,bf16_channels_last
fi
# the sweep gets what is left; a cut loses only the jobs in flight (records are atomic)
step sweep $(left) $PY -m unlearnbench.sweep --config benchmarks/mnist_paper.toml --results $RESULTS \
  --jobs-per-gpu "$N" --no-estimate $ONLY
ls $RESULTS/records | wc -l | xargs echo "records now:"
echo "[total $(( $(date +%s) - START )) s]"
