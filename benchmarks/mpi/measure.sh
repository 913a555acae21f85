#!/usr/bin/env bash
# The measurements docs/distributed.md asks for, one line each: the step time of the MNIST CNN
# and of ResNet-20 in one process with 2 threads and on 1 and 2 ranks of one thread (over shared
# memory, then over TCP loopback), the time and bandwidth of one exchange of the gradients' sums
# over both transports, and PyTorch DDP on gloo for comparison. Run it on a quiet machine.
# Usage: benchmarks/mpi/measure.sh BUILD_DIR [STEPS]   (STEPS 50 by default; 2 to try it)
set -euo pipefail
build=$1 steps=${2:-50}
bin=$build/benchmarks/mpi_step
[[ -x $bin ]] || { echo "measure.sh: $bin is missing (build the mpi_step target; it needs MPI)" >&2; exit 1; }
here=$(dirname "$0")
mpi=(mpirun --oversubscribe --bind-to none)
[[ $(id -u) == 0 ]] && mpi+=(--allow-run-as-root)
warmup=$(( steps < 5 ? 1 : 5 ))

for model in mnist resnet; do
  batch=64
  [[ $model == resnet ]] && batch=128
  args=(step --model "$model" --batch "$batch" --steps "$steps" --warmup "$warmup")
  echo "== $model, one process, 2 threads"
  OMP_NUM_THREADS=2 "$bin" "${args[@]}"
  for k in 1 2; do
    echo "== $model, $k rank(s) of 1 thread, shared memory"
    OMP_NUM_THREADS=1 "${mpi[@]}" -np "$k" "$bin" "${args[@]}"
    echo "== $model, $k rank(s) of 1 thread, TCP loopback"
    OMP_NUM_THREADS=1 "${mpi[@]}" --mca btl tcp,self -np "$k" "$bin" "${args[@]}"
  done
done

# The gradient states of the MNIST CNN and of ResNet-20, and one BatchNorm state of 64 channels.
for bytes in 1686568 1088744 12288; do
  echo "== exchange of $bytes bytes, 2 ranks, shared memory"
  "${mpi[@]}" -np 2 "$bin" exchange --bytes "$bytes" --repeats "$steps"
  echo "== exchange of $bytes bytes, 2 ranks, TCP loopback"
  "${mpi[@]}" --mca btl tcp,self -np 2 "$bin" exchange --bytes "$bytes" --repeats "$steps"
done

if /usr/bin/python3 -c "import torch.distributed as d; assert d.is_gloo_available()" 2>/dev/null; then
  echo "== PyTorch, one process, 2 threads"
  /usr/bin/python3 "$here/ddp_gloo.py" --world 1 --threads 2 --steps "$steps"
  echo "== PyTorch DDP on gloo, 2 processes of 1 thread"
  /usr/bin/python3 "$here/ddp_gloo.py" --world 2 --threads 1 --steps "$steps"
else
  echo "== PyTorch DDP on gloo: not available here (python3-torch without gloo)"
fi
