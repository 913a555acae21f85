#!/usr/bin/env bash
# Data-parallel training of the MNIST CNN under mpirun: K = 1, 2 and 3 ranks (one thread each)
# end with the weights of the single process with 1 and 2 threads, bit for bit, after 200 steps
# with dropout and augmentation; a rank killed with SIGKILL ends the job within seconds and the
# run resumes with another K to the same bits; ranks given different flags or data, and more
# ranks than a batch has chunks, are refused with one clear line.
# Usage: mpi_train.sh MNIST_BINARY WORK_DIR MPIEXEC PART   (PART: bits, the identical weights,
# or faults, the kill and the refusals; MPIEXEC empty: minidl::mpi was not built; skipped then,
# and without MNIST; a failure under CI=true)
set -euo pipefail
mnist=$1 work=$2 mpiexec=${3:-} part=${4:-bits}
source "$(dirname "$0")/../require.sh"
[[ -n $mpiexec ]] || skip_or_fail "minidl::mpi was not built (CMake did not find MPI)"
require_mnist
rm -rf "$work" && mkdir -p "$work"
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
# The bits a run ends with: the checkpoint's tensors and the history without its timings.
same_run() {
  python3 - "$1" "$2" <<'PY'
import struct, sys
def tensors(path):
    data = open(path, "rb").read()
    return data[8 + struct.unpack("<Q", data[:8])[0]:]
def history(folder):
    return [line.rsplit(",", 1)[0] for line in open(folder + "/history.csv")]
a, b = sys.argv[1:3]
same = tensors(a + "/last.safetensors") == tensors(b + "/last.safetensors") and \
       history(a) == history(b) and len(history(a)) > 1
sys.exit(0 if same else 1)
PY
}
mpirun_k() {
  local k=$1
  shift
  OMP_NUM_THREADS=1 timeout 300 "$mpiexec" --oversubscribe --allow-run-as-root -np "$k" "$@"
}

# A small copy of MNIST (3000 training and 1000 test images, uncompressed), so that each of the
# runs below evaluates in a moment.
python3 - "$MNIST_DIR" "$work/data" <<'PY'
import gzip, os, struct, sys
src, dst = sys.argv[1:3]
os.makedirs(dst)
for stem, count in (("train", 3000), ("t10k", 1000)):
    for kind, header, size in (("images-idx3", 16, 784), ("labels-idx1", 8, 1)):
        data = gzip.open(f"{src}/{stem}-{kind}-ubyte.gz").read()
        head = bytearray(data[:header])
        head[4:8] = struct.pack(">I", count)
        open(f"{dst}/{stem}-{kind}-ubyte", "wb").write(bytes(head) + data[header:header + count * size])
PY
# 1200 images in batches of 12 (3 chunks of 4: one per rank for 3 ranks), 2 epochs: 200 steps.
common=(--data "$work/data" --limit-train 1200 --val 500 --batch 12 --epochs 2 --augment --seed 7)

"$mnist" train "${common[@]}" --threads 1 --out "$work/one" >"$work/one.txt"
if [[ $part == bits ]]; then
"$mnist" train "${common[@]}" --threads 2 --out "$work/two" >"$work/two.txt"
same_run "$work/one" "$work/two" || fail "1 and 2 threads end with different weights"
for k in 1 2 3; do
  mpirun_k "$k" "$mnist" train "${common[@]}" --threads 1 --out "$work/k$k" >"$work/k$k.txt" 2>&1 ||
    { cat "$work/k$k.txt" >&2; fail "mpirun -np $k failed"; }
  same_run "$work/one" "$work/k$k" || fail "$k ranks end with other weights than one process"
done
grep -q "data-parallel: 3 ranks" "$work/k3.txt" || fail "the 3-rank run does not say it is one"
[[ $(grep -o "epoch  [12]/2  train" "$work/k3.txt" | wc -l) == 2 ]] ||
  fail "the other ranks print too (or none does)"
for f in best.safetensors history.csv metrics.json loss_acc_curves.png confusion_matrix.png; do
  [[ -s $work/k3/$f ]] || fail "the 3-rank run did not write $f"
done

echo "mpi_train bits: all checks passed"
exit 0
fi

# A rank killed in epoch 2: every other rank ends within seconds, the checkpoint of epoch 1
# stays, and a resumed run on 3 ranks ends with the straight run's bits.
mpirun_k 2 "$mnist" train "${common[@]}" --threads 1 --out "$work/killed" >"$work/killed.txt" 2>&1 &
launcher=$!
for _ in $(seq 3000); do
  [[ -f $work/killed/history.csv && $(wc -l <"$work/killed/history.csv") -ge 2 ]] && break
  sleep 0.02
done
[[ $(wc -l <"$work/killed/history.csv") == 2 ]] || fail "epoch 1 did not end alone in time"
victim=""
for pid in $(pgrep -f "$mnist train.*--out $work/killed"); do  # this job only: other tests may run
  if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1"; then
    victim=$pid
  fi
done
[[ -n $victim ]] || fail "rank 1 not found"
kill -9 "$victim"
start=$SECONDS
status=0
wait "$launcher" || status=$?
(( SECONDS - start <= 20 )) || fail "the job took $((SECONDS - start)) s to end after a rank died"
[[ $status != 0 ]] || fail "mpirun exited 0 after a rank was killed"
[[ -z $(pgrep -f "$mnist train.*$work/killed") ]] || fail "ranks outlived the job"
ls "$work/killed"/*.tmp* >/dev/null 2>&1 && fail "a temporary file was left"
[[ $(wc -l <"$work/killed/history.csv") == 2 ]] || fail "the kill did not land in epoch 2"
mpirun_k 3 "$mnist" train --resume --out "$work/killed" >"$work/resumed.txt" 2>&1 ||
  { cat "$work/resumed.txt" >&2; fail "resuming on 3 ranks failed"; }
same_run "$work/one" "$work/killed" || fail "killed and resumed on 3 ranks: other weights"

# Refusals, one line each: different flags on one rank, data missing on one rank, too many ranks.
status=0
OMP_NUM_THREADS=1 timeout 120 "$mpiexec" --oversubscribe --allow-run-as-root \
  -np 1 "$mnist" train "${common[@]}" --out "$work/mismatch" : \
  -np 1 "$mnist" train "${common[@]}" --lr 0.002 --out "$work/mismatch" \
  >"$work/mismatch.txt" 2>&1 || status=$?
[[ $status == 2 ]] || { cat "$work/mismatch.txt" >&2; fail "mismatched flags: exit $status, not 2"; }
grep -q "rank 1: its run differs from rank 0's: lr=0.002 where rank 0 has lr=0.001" \
  "$work/mismatch.txt" || { cat "$work/mismatch.txt" >&2; fail "mismatched flags: no clear message"; }
[[ ! -e $work/mismatch/last.safetensors ]] || fail "a refused run trained"
status=0
OMP_NUM_THREADS=1 timeout 120 "$mpiexec" --oversubscribe --allow-run-as-root \
  -np 1 "$mnist" train "${common[@]}" --out "$work/nodata" : \
  -np 1 "$mnist" train "${common[@]}" --data "$work/no-such-folder" --out "$work/nodata" \
  >"$work/nodata.txt" 2>&1 || status=$?
[[ $status == 1 ]] || { cat "$work/nodata.txt" >&2; fail "data missing on a rank: exit $status"; }
grep -q "rank 1: .*no-such-folder" "$work/nodata.txt" ||
  { cat "$work/nodata.txt" >&2; fail "data missing on a rank: the message does not say where"; }
status=0
mpirun_k 3 "$mnist" train "${common[@]}" --batch 8 --out "$work/toomany" >"$work/toomany.txt" 2>&1 ||
  status=$?
[[ $status == 2 ]] || { cat "$work/toomany.txt" >&2; fail "3 ranks, batch 8: exit $status, not 2"; }
grep -q "3 ranks need at least 3 chunks of 4 images in every batch, but a batch has 8 images" \
  "$work/toomany.txt" || { cat "$work/toomany.txt" >&2; fail "3 ranks, batch 8: no clear message"; }
echo "mpi_train faults: all checks passed"
