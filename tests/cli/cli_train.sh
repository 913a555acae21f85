#!/usr/bin/env bash
# A short real training run on MNIST, then --resume equality and predict.
# Usage: cli_train.sh MNIST_BINARY WORK_DIR   (needs MNIST_DIR; exits 77, skipped, without it)
set -euo pipefail
mnist=$1 work=$2
source "$(dirname "$0")/../require.sh"
require_mnist
rm -rf "$work" && mkdir -p "$work"
common=(--limit-train 2000 --val 1000 --limit-test 2000 --epochs 2 --seed 5)

# 1. Uninterrupted: two epochs; every output file appears.
"$mnist" train "${common[@]}" --out "$work/full" | tail -12
for f in best.safetensors last.safetensors history.csv metrics.json loss_acc_curves.png confusion_matrix.png wrong_predictions.png; do
  [[ -s "$work/full/$f" ]] || { echo "FAIL: $f missing"; exit 1; }
done
python3 -c "import json,sys; m=json.load(open(sys.argv[1])); assert 0.8 < m['test_accuracy'] <= 1, m['test_accuracy']; assert len(m['confusion_matrix']) == 10" "$work/full/metrics.json"

# 2. Interrupted after epoch 1 (one thread), resumed (two threads): the same weights, bit for bit.
"$mnist" train "${common[@]}" --out "$work/resumed" --stop-after 1 --threads 1 >/dev/null
"$mnist" train --resume --out "$work/resumed" --threads 2 >/dev/null
# Compare the data buffers (everything after the JSON header: the tensors).
python3 - "$work/full/last.safetensors" "$work/resumed/last.safetensors" <<'PY'
import struct, sys
def tensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    return b[8 + n:]
a, b = (tensors(p) for p in sys.argv[1:3])
assert len(a) == len(b) > 1_000_000, (len(a), len(b))
assert a == b, "resumed run differs from the uninterrupted one"
print(f"resume: {len(a)} bytes of weights and optimizer state identical")
PY

# 3. evaluate reproduces the test accuracy of metrics.json.
"$mnist" evaluate --model "$work/full/best.safetensors" --limit-test 2000 --out "$work/eval" | tee "$work/eval.txt" | head -1
want=$(python3 -c "import json,sys; print('%.4f' % json.load(open(sys.argv[1]))['test_accuracy'])" "$work/full/metrics.json")
grep -q "test accuracy $want" "$work/eval.txt" || { echo "FAIL: evaluate disagrees with metrics.json ($want)"; exit 1; }
# 4. predict on test images written out as PNG files the way a user would
#    draw them: dark ink on white, three times larger. The chosen images are
#    the first 20 of the test set; the short-trained model must get >= 15.
python3 - "$MNIST_DIR" "$work/png" <<'PY'
import gzip, os, struct, sys, zlib
folder, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
def read(stem):
    for name in (stem + ".gz", stem):
        p = os.path.join(folder, name)
        if os.path.exists(p):
            data = open(p, "rb").read()
            return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
images, labels = read("t10k-images-idx3-ubyte"), read("t10k-labels-idx1-ubyte")
def png(path, w, h, rows):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\0" + bytes(r) for r in rows)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
for i in range(20):
    px = images[16 + 784 * i: 16 + 784 * (i + 1)]
    rows = [[255 - px[(r // 3) * 28 + c // 3] for c in range(84)] for r in range(84)]
    png(os.path.join(out, f"{i:02d}_label{labels[8 + i]}.png"), 84, 84, rows)
PY
"$mnist" predict --model "$work/full/best.safetensors" "$work"/png/*.png | tee "$work/predict.txt" | head -3
right=$(sed -n 's/.*_label\([0-9]\)\.png: \([0-9]\) .*/\1 \2/p' "$work/predict.txt" | awk '$1 == $2' | wc -l)
echo "predict: $right of 20 PNG digits classified as their label"
[[ $right -ge 15 ]] || { echo "FAIL: predict got only $right of 20"; exit 1; }
echo "1 passed, 0 failed: cli_train"
