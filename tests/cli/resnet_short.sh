#!/usr/bin/env bash
# The resnet command's short run, as CI can afford it: a ResNet-8 of width 4 on 200
# Fashion-MNIST images for 2 epochs, with random erasing, writes every output; --stop-after 1
# then --resume (with another thread count) ends with the bits of the straight run; 1 and 2
# threads give the same bits; a checkpoint from before random erasing and zero-initialised
# residual branches resumes without them;
# SIGTERM stops it cleanly; a bad flag is one line and exit 2; evaluate reads the checkpoint.
# Usage: resnet_short.sh RESNET_BINARY WORK_DIR   (needs Fashion-MNIST: FASHION_MNIST_DIR or
# Debian's dataset-fashion-mnist; skipped without it, a failure under CI=true)
set -euo pipefail
resnet=$1 work=$2
source "$(dirname "$0")/../require.sh"
source "$(dirname "$0")/unnamed_data.sh"
source "$(dirname "$0")/edit_metadata.sh"
require_fashion
rm -rf "$work" && mkdir -p "$work"
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
# The tensors of a checkpoint (the bytes after its JSON header), whose metadata holds times.
same_tensors() {
  python3 - "$1" "$2" <<'PY'
import struct, sys
def tensors(path):
    data = open(path, "rb").read()
    return data[8 + struct.unpack("<Q", data[:8])[0]:]
a, b = (tensors(p) for p in sys.argv[1:3])
sys.exit(0 if a == b and len(a) > 0 else 1)
PY
}

# The runs compared below erase rectangles too (off by default), so that erasing is covered by
# the comparisons of threads and --resume.
no_erasing=(--data "$FASHION_DIR" --limit-train 200 --limit-test 300 --val 100 --epochs 2
            --depth 8 --width 4 --batch 50 --seed 5)
common=("${no_erasing[@]}" --erase 0.5)

# A straight run writes every output, and reports with Fashion-MNIST's class names.
"$resnet" train "${common[@]}" --threads 2 --out "$work/straight" >"$work/straight.txt"
for f in best.safetensors last.safetensors history.csv metrics.json loss_acc_curves.png \
         confusion_matrix.png wrong_predictions.png; do
  [[ -s $work/straight/$f ]] || fail "the run did not write $f"
done
[[ $(wc -l <"$work/straight/history.csv") == 3 ]] || fail "history.csv does not hold 2 epochs"
grep -q '"test_accuracy"' "$work/straight/metrics.json" || fail "metrics.json lacks the accuracy"
grep -q '"train_seconds_per_epoch"' "$work/straight/metrics.json" ||
  fail "metrics.json lacks the seconds per epoch"
grep -q '"test_accuracy_mirror_averaged"' "$work/straight/metrics.json" ||
  fail "metrics.json lacks the accuracy averaged with the mirror images"
grep -q "averaged with its mirror image: test accuracy" "$work/straight.txt" ||
  fail "the report lacks the accuracy averaged with the mirror images"
grep -q "loading Fashion-MNIST from" "$work/straight.txt" || fail "the run does not name its data"
grep -Eq "true (T-shirt/top|Trouser|Pullover|Dress|Coat|Sandal|Shirt|Sneaker|Bag|Ankle boot) predicted as" \
  "$work/straight.txt" || fail "the most confused pairs are not named by class"
echo "ok: a short run writes checkpoints, history, metrics and the three pictures"

# One thread: the same weights, batch-norm buffers and optimizer state, bit for bit.
"$resnet" train "${common[@]}" --threads 1 --out "$work/one" >/dev/null
same_tensors "$work/straight/last.safetensors" "$work/one/last.safetensors" ||
  fail "1 and 2 threads give different checkpoints"
echo "ok: 1 and 2 threads give the same bits"

# Stopped after epoch 1, resumed with one thread: the bits of the straight run.
"$resnet" train "${common[@]}" --threads 2 --stop-after 1 --out "$work/resumed" >"$work/stop.txt"
grep -q "stopping after epoch 1" "$work/stop.txt" || fail "--stop-after 1 did not stop"
[[ ! -e $work/resumed/metrics.json ]] || fail "a stopped run wrote metrics.json"
same_tensors "$work/straight/last.safetensors" "$work/resumed/last.safetensors" &&
  fail "epoch 1 already equals epoch 2: the comparison below would prove nothing"
"$resnet" train --resume --threads 1 --out "$work/resumed" >"$work/resume.txt"
grep -q "resuming .* after epoch 1" "$work/resume.txt" || fail "the run did not resume"
same_tensors "$work/straight/last.safetensors" "$work/resumed/last.safetensors" ||
  fail "the resumed run differs from the straight one"
same_tensors "$work/straight/best.safetensors" "$work/resumed/best.safetensors" ||
  fail "the resumed run's best checkpoint differs from the straight one's"
echo "ok: --stop-after 1 and --resume end with the bits of the straight run"

# A run written before random erasing and zero-initialised residual branches existed has
# neither hp.erase nor hp.zero_init_residual in its metadata: it resumes as a run without
# either, and ends with the bits of such a run.
"$resnet" train "${no_erasing[@]}" --threads 2 --out "$work/plain" >/dev/null
"$resnet" train "${no_erasing[@]}" --threads 2 --stop-after 1 --out "$work/older" >/dev/null
edit_metadata "$work/older/last.safetensors" -hp.erase -hp.zero_init_residual
"$resnet" train --resume --threads 2 --out "$work/older" >"$work/older.txt"
grep -q "resuming .* after epoch 1" "$work/older.txt" || fail "the older run did not resume"
same_tensors "$work/plain/last.safetensors" "$work/older/last.safetensors" ||
  fail "a run without hp.erase did not resume as one without erasing"
grep -q '"zero_init_residual": 0' "$work/older/metrics.json" ||
  fail "a run without hp.zero_init_residual did not resume as one without it"
same_tensors "$work/plain/last.safetensors" "$work/straight/last.safetensors" &&
  fail "erasing changed nothing: the comparison above would prove nothing"
echo "ok: a checkpoint written before random erasing and zero_init_residual resumes without them"

# SIGTERM in epoch 2 stops between two steps: exit 143, the last checkpoint named, no
# temporary file, the command to continue.
"$resnet" train "${common[@]}" --limit-train 3000 --out "$work/term" >"$work/term.txt" \
  2>"$work/term.err" &
pid=$!
until grep -q "^epoch  1/" "$work/term.txt" 2>/dev/null; do
  kill -0 $pid 2>/dev/null || fail "the run ended before its first epoch was reported"
  sleep 0.05
done
kill -TERM $pid
status=0
wait $pid || status=$?
[[ $status == 143 ]] || fail "SIGTERM: exit $status, not 143"
grep -q "stopped by SIGTERM during epoch 2; .*last.safetensors holds epoch 1" "$work/term.err" ||
  fail "SIGTERM: unclear message: $(cat "$work/term.err")"
grep -q "continue with: resnet train --resume --out $work/term" "$work/term.err" ||
  fail "SIGTERM: no command to continue"
compgen -G "$work/term/*.tmp*" >/dev/null && fail "SIGTERM left a temporary file"
echo "ok: SIGTERM stops the run between steps, keeping epoch 1"

# A resumed run keeps its hyper-parameters: another --lr is refused.
status=0
"$resnet" train --resume --lr 0.5 --out "$work/resumed" 2>"$work/err" >/dev/null || status=$?
[[ $status == 2 ]] || fail "--resume with another --lr exited $status, not 2"
grep -q -- "--lr 0.5 (the run's is 0.1)" "$work/err" || fail "unclear refusal: $(cat "$work/err")"
status=0
"$resnet" train --resume --erase 0.25 --out "$work/resumed" 2>"$work/err" >/dev/null || status=$?
[[ $status == 2 ]] || fail "--resume with another --erase exited $status, not 2"
grep -q -- "--erase 0.25 (the run's is " "$work/err" || fail "unclear refusal: $(cat "$work/err")"
status=0
"$resnet" train --resume --zero-init-residual --out "$work/resumed" 2>"$work/err" >/dev/null ||
  status=$?
[[ $status == 2 ]] || fail "--resume with --zero-init-residual exited $status, not 2"
grep -q -- "--zero-init-residual 1 (the run's is 0)" "$work/err" ||
  fail "unclear refusal: $(cat "$work/err")"
echo "ok: --resume refuses another --lr, --erase or --zero-init-residual"

# A bad flag or value: one line, exit 2, no folder.
for bad in "--lrate 1" "--depth 10" "--optimizer adam" "--erase 1.5"; do
  status=0
  # shellcheck disable=SC2086
  "$resnet" train --data "$FASHION_DIR" $bad --out "$work/bad" 2>"$work/err" >/dev/null || status=$?
  [[ $status == 2 ]] || fail "'$bad' exited $status, not 2"
  [[ $(wc -l <"$work/err") == 1 ]] || fail "'$bad' printed more than one line: $(cat "$work/err")"
  [[ ! -e $work/bad ]] || fail "'$bad' created the output folder"
done
echo "ok: bad flags are one line and exit 2: $(cat "$work/err")"

# evaluate reads the checkpoint (its depth and width from the run state).
"$resnet" evaluate --data "$FASHION_DIR" --model "$work/straight/best.safetensors" \
  --out "$work/eval" >"$work/eval.txt"
grep -q "test accuracy" "$work/eval.txt" || fail "evaluate printed no accuracy"
grep -q "averaged with its mirror image: test accuracy" "$work/eval.txt" ||
  fail "evaluate printed no accuracy averaged with the mirror images"
[[ -s $work/eval/confusion_matrix.png && -s $work/eval/wrong_predictions.png ]] ||
  fail "evaluate did not draw its pictures"
echo "ok: evaluate reads the checkpoint"

# --data elsewhere than the default folder, without --classes: train and evaluate call it
# "data", not Fashion-MNIST, when a file is missing (here the test labels).
check_unnamed_data "$resnet" "$work/straight/best.safetensors" "$FASHION_DIR" "Fashion" "$work"
echo "ok: a folder given with --data alone is called data"
