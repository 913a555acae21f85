#!/usr/bin/env bash
# Kills `mnist train` with SIGKILL during its second epoch, resumes it, and
# requires the final weights to equal those of a run never interrupted.
# Usage: kill_resume.sh MNIST_BINARY WORK_DIR   (needs MNIST_DIR; exits 77, skipped, without it)
set -euo pipefail
mnist=$1 work=$2
source "$(dirname "$0")/../require.sh"
require_mnist
rm -rf "$work" && mkdir -p "$work"
args=(--limit-train 3000 --val 1000 --limit-test 500 --epochs 3 --seed 11)

"$mnist" train "${args[@]}" --out "$work/straight" >/dev/null

"$mnist" train "${args[@]}" --out "$work/killed" >"$work/killed.log" 2>&1 &
pid=$!
# Wait (up to 10 minutes, for a loaded machine) for epoch 1 to be written,
# then kill somewhere inside epoch 2.
rows() { if [[ -f "$work/killed/history.csv" ]]; then wc -l <"$work/killed/history.csv"; else echo 0; fi; }
for _ in $(seq 12000); do
  [[ $(rows) -ge 2 ]] && break
  kill -0 "$pid" 2>/dev/null || { echo "FAIL: the run ended before its first epoch:"; cat "$work/killed.log"; exit 1; }
  sleep 0.05
done
[[ $(rows) -ge 2 ]] || { echo "FAIL: no epoch finished within 10 minutes"; kill -9 "$pid"; exit 1; }
sleep 0.3
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
epochs_done=$(($(rows) - 1))
echo "killed after $epochs_done completed epoch(s)"
[[ $epochs_done -lt 3 ]] || { echo "FAIL: the run finished before it could be killed"; exit 1; }

"$mnist" train --resume --out "$work/killed" >/dev/null
python3 - "$work/straight/last.safetensors" "$work/killed/last.safetensors" <<'PY'
import struct, sys
def tensors(path):
    b = open(path, "rb").read()
    return b[8 + struct.unpack("<Q", b[:8])[0]:]
a, b = (tensors(p) for p in sys.argv[1:3])
assert a == b, "the resumed run's weights differ from the uninterrupted run's"
print(f"resumed run identical to the uninterrupted one ({len(a)} bytes of tensors)")
PY
echo "1 passed, 0 failed: kill_resume"
