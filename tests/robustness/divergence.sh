#!/usr/bin/env bash
# Training that goes wrong stops with status 3 and a message that points only at checkpoints
# that exist: --lr 10 (the loss explodes to about 1e9 but stays finite), an SGD run whose
# loss turns NaN within the first epoch, and a run that diverges in epoch 2 after a good epoch 1
# (whose checkpoints it must name and leave as they were).
# Usage: divergence.sh MNIST_BINARY WORK_DIR   (needs MNIST_DIR; exits 77, skipped, without it)
set -euo pipefail
mnist=$1 work=$2
source "$(dirname "$0")/../require.sh"
require_mnist
rm -rf "$work" && mkdir -p "$work"
small=(--limit-train 1000 --val 500 --limit-test 500 --epochs 2)
fail() { echo "FAIL: $*"; exit 1; }
check_stopped() {  # NAME PATTERN: status 3, one line on stderr matching PATTERN, no checkpoint
  [[ $status -eq 3 ]] || { cat "$work/err"; fail "$1: status $status, want 3"; }
  [[ $(wc -l <"$work/err") -eq 1 ]] || { cat "$work/err"; fail "$1: stderr is not one line"; }
  grep -q -- "$2" "$work/err" || fail "$1: message: $(cat "$work/err")"
  grep -q "no checkpoint was written" "$work/err" || fail "$1: message does not say no checkpoint exists"
  ! grep -q "safetensors" "$work/err" || fail "$1: the message names a checkpoint that does not exist"
  [[ -z $(find "$work/$1" -name '*.safetensors' 2>/dev/null) ]] || fail "$1: a diverged epoch was saved"
}

status=0
"$mnist" train "${small[@]}" --lr 10 --out "$work/lr10" >/dev/null 2>"$work/err" || status=$?
check_stopped lr10 "training diverged in epoch 1: the mean training loss .* is far above 2.30"
echo "ok: --lr 10: $(cat "$work/err")"

status=0
"$mnist" train "${small[@]}" --optimizer sgd --lr 10 --momentum 0.999999 --batch 1 \
  --out "$work/nan" >/dev/null 2>"$work/err" || status=$?
check_stopped nan "epoch 1, batch [0-9]*: training diverged: the .* is -\?nan"
echo "ok: NaN in epoch 1: $(cat "$work/err")"

# Epoch 1 at the default rate, then the run's hp.lr set to 10 in its last checkpoint (the
# checksums cover the tensors, not the metadata) so that the resumed epoch 2 diverges.
"$mnist" train "${small[@]}" --stop-after 1 --out "$work/late" >/dev/null
/usr/bin/python3 - "$work/late/last.safetensors" <<'PY'
import json, struct, sys
path = sys.argv[1]
b = open(path, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
header = json.loads(b[8:8 + n])
header["__metadata__"]["hp.lr"] = "10"
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
open(path, "wb").write(struct.pack("<Q", len(text)) + text + b[8 + n:])
PY
sums() { md5sum "$work/late/best.safetensors" "$work/late/last.safetensors"; }
before=$(sums)
status=0
"$mnist" train --resume --out "$work/late" >/dev/null 2>"$work/err" || status=$?
[[ $status -eq 3 ]] || { cat "$work/err"; fail "late: status $status, want 3"; }
[[ $(wc -l <"$work/err") -eq 1 ]] || { cat "$work/err"; fail "late: stderr is not one line"; }
grep -q "diverged in epoch 2\|epoch 2, batch [0-9]*: training diverged" "$work/err" ||
  fail "late: message: $(cat "$work/err")"
grep -q "$work/late/last.safetensors holds epoch 1, $work/late/best.safetensors epoch 1" "$work/err" ||
  fail "late: the message does not name the checkpoints of epoch 1: $(cat "$work/err")"
[[ $(sums) == "$before" ]] || fail "late: the diverged run changed its checkpoints"
/usr/bin/python3 - "$work/late/best.safetensors" "$work/late/last.safetensors" <<'PY' ||
import json, struct, sys
for path in sys.argv[1:]:
    b = open(path, "rb").read()
    epoch = json.loads(b[8:8 + struct.unpack("<Q", b[:8])[0]])["__metadata__"]["epoch"]
    assert epoch == "1", f"{path} holds epoch {epoch}"
PY
  fail "late: a checkpoint does not hold epoch 1"
[[ $(wc -l <"$work/late/history.csv") -eq 2 ]] || fail "late: the diverged epoch is in history.csv"
echo "ok: diverged in epoch 2: $(cat "$work/err")"
echo "1 passed, 0 failed: divergence"
