#!/usr/bin/env bash
# The checks that need a GPU, in one go (docs/benchmarks.md, "On a GPU"):
#   1. the README's main job on CUDA (push_lite, --watchdog, a NaN injected at iteration 30);
#   2. the CUDA and NCCL tests (tests/openrl_ws/test_cuda.py, the NCCL tests in test_distributed.py);
#   3. the training benchmarks on the GPU: watched vs unwatched (bench.overhead), push_lite learning and
#      env-only throughput (bench.push_lite_learning), the resource sampler's CUDA/NVML cost (bench.resources).
# Each step has its own time limit and its own log, so one failure does not hide the others.
#
#     bash bench/gpu_check.sh [OUTDIR]        (default bench/results/gpu; PYTHON=python3 by default;
#                                              ONLY="learning overhead4096" runs just those steps)
set -u -o pipefail
out=${1:-bench/results/gpu}
py=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore

step() {  # step NAME SECONDS COMMAND...: run with a limit, log to $out/NAME.txt, show its tail
  local name=$1 limit=$2 start rc
  shift 2
  [[ -z "${ONLY:-}" || " $ONLY " == *" $name "* ]] || return 1
  echo "== $name: $*"
  start=$(date +%s)
  timeout "$limit" "$@" >"$out/$name.txt" 2>&1
  rc=$?
  echo "   rc $rc in $(($(date +%s) - start)) s" | tee -a "$out/steps.txt"
  tail -n 12 "$out/$name.txt"
  return $rc
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
$py -c "import sys, torch, openrl; print('python', sys.version.split()[0], 'torch', torch.__version__,
'cuda', torch.version.cuda, torch.cuda.get_device_name(0), 'openrl', openrl.__version__,
'nccl', torch.cuda.nccl.version())" | tee -a "$out/gpu.txt" || exit 1

step main 120 $py openrl_ws/train.py --watchdog --inject nan@30 --run_dir /tmp/gpu_check_main
step tests 200 $py -m pytest -q -p no:cacheprovider -rs tests/openrl_ws/test_cuda.py \
  tests/openrl_ws/test_distributed.py -k "cuda or nccl or gpu or two_ranks"
step learning 110 $py -m bench.push_lite_learning --minutes 1.5 --out "$out"
step overhead 200 $py -m bench.overhead --envs 64 512 --iterations 11 --repeats 2 &&
  cp bench/results/overhead.json "$out/overhead.json"
step overhead4096 150 $py -m bench.overhead --envs 4096 --iterations 3 --repeats 1 &&
  cp bench/results/overhead.json "$out/overhead4096.json"
step resources 60 $py -m bench.resources --out "$out/resources.json"
