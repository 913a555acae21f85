#!/usr/bin/env bash
# What `mnist train` does with its output folder and --resume, run as a user would:
# a second run into a busy folder, a folder holding a finished run, --overwrite, evaluate's
# own folder, hyper-parameters refused on --resume, the data folder remembered, --threads.
# Usage: cli_run_folder.sh MNIST_BINARY WORK_DIR   (needs MNIST_DIR; exits 77, skipped, without it)
set -euo pipefail
mnist=$1 work=$2
source "$(dirname "$0")/../require.sh"
require_mnist
rm -rf "$work" && mkdir -p "$work"
small=(--limit-train 1500 --val 500 --limit-test 500 --epochs 2 --seed 3)
fail() { echo "FAIL: $*"; exit 1; }
# status_of CMD...: runs CMD with stdout and stderr in $work/out and $work/err, prints the status.
status_of() { "$@" >"$work/out" 2>"$work/err" && echo 0 || echo $?; }
one_line() { [[ $(wc -l <"$work/err") -eq 1 ]] || { cat "$work/err"; fail "stderr is not one line"; }; }

# 1. A second run into a folder another run is writing into is refused (exit 2), and the first
#    run finishes undisturbed.
"$mnist" train "${small[@]}" --out "$work/a" >"$work/a.log" 2>&1 &
first=$!
for _ in $(seq 1200); do
  [[ -e $work/a/train.lock ]] && break
  kill -0 "$first" 2>/dev/null || break
  sleep 0.05
done
[[ -e $work/a/train.lock ]] || fail "the first run never locked its folder"
got=$(status_of "$mnist" train "${small[@]}" --out "$work/a")
[[ $got == 2 ]] || { cat "$work/err"; fail "second run into a busy folder: status $got, want 2"; }
grep -q "another training run (process $first) is writing into this folder" "$work/err" || fail "message: $(cat "$work/err")"
one_line
wait "$first" || { cat "$work/a.log"; fail "the first run failed"; }
[[ $(wc -l <"$work/a/history.csv") -eq 3 ]] || fail "the first run's history is not 2 epochs"
[[ ! -e $work/a/train.lock ]] || fail "the lock file stayed after the run"
echo "ok: a second run into a busy folder is refused with status 2"

# 2. A folder holding a finished run is refused and left as it was.
sums() { (cd "$work/a" && md5sum -- *) ; }
before=$(sums)
got=$(status_of "$mnist" train "${small[@]}" --seed 4 --out "$work/a")
[[ $got == 2 ]] || fail "new run into a finished run's folder: status $got, want 2"
grep -q "already holds a training run" "$work/err" && grep -q -- "--overwrite" "$work/err" || fail "message: $(cat "$work/err")"
one_line
[[ $(sums) == "$before" ]] || fail "the refused run changed the folder"
echo "ok: a finished run is not overwritten"

# 3. evaluate writes into a folder of its own, never over a training run's pictures.
got=$(status_of "$mnist" evaluate --model "$work/a/best.safetensors" --out "$work/a")
[[ $got == 2 ]] || fail "evaluate into a training run's folder: status $got, want 2"
grep -q "holds a training run" "$work/err" || fail "message: $(cat "$work/err")"
(cd "$work" && "$mnist" evaluate --model a/best.safetensors --limit-test 500 >/dev/null)
[[ -s $work/evaluation/confusion_matrix.png ]] || fail "evaluate's default folder lacks its pictures"
# Its own pictures are not a training run: evaluating again into that folder works.
got=$(cd "$work" && status_of "$mnist" evaluate --model a/best.safetensors --limit-test 500)
[[ $got == 0 ]] || fail "a second evaluate into its own folder: status $got, want 0"
[[ $(sums) == "$before" ]] || fail "evaluate changed the training run's folder"
echo "ok: evaluate keeps to its own folder"
# A new run into a folder of evaluate's pictures is refused, and not told to --resume: there is
# no checkpoint to resume from.
got=$(status_of "$mnist" train "${small[@]}" --out "$work/evaluation")
[[ $got == 2 ]] || fail "new run into evaluate's folder: status $got, want 2"
grep -q "confusion_matrix.png, wrong_predictions.png" "$work/err" && grep -q -- "--overwrite" "$work/err" ||
  fail "message: $(cat "$work/err")"
! grep -q -- "--resume" "$work/err" || fail "suggests --resume with no checkpoint: $(cat "$work/err")"
one_line
echo "ok: a folder of pictures only is refused without a --resume hint"

# 4. --resume refuses a hyper-parameter it would not apply; an unchanged one is accepted.
got=$(status_of "$mnist" train --resume --lr 0.5 --out "$work/a")
[[ $got == 2 ]] || fail "--resume --lr 0.5: status $got, want 2"
grep -q -- "--lr 0.5 (the run's is 0.001)" "$work/err" || fail "message: $(cat "$work/err")"
one_line
got=$(status_of "$mnist" train --resume --augment --batch 32 --out "$work/a")
[[ $got == 2 ]] && grep -q -- "--augment 1 (the run's is 0)" "$work/err" && grep -q -- "--batch 32" "$work/err" ||
  fail "--resume --augment --batch 32: status $got: $(cat "$work/err")"
[[ $(sums) == "$before" ]] || fail "a refused --resume changed the folder"
echo "ok: --resume refuses hyper-parameters it would not apply"

# 5. --overwrite removes the old run's files first: a new run stopped after epoch 1 leaves no
#    metrics or pictures of the old one beside its checkpoints.
"$mnist" train "${small[@]}" --seed 4 --stop-after 1 --overwrite --out "$work/a" >/dev/null
for f in metrics.json confusion_matrix.png wrong_predictions.png; do
  [[ ! -e $work/a/$f ]] || fail "$f of the old run is still there after --overwrite"
done
[[ $(wc -l <"$work/a/history.csv") -eq 2 ]] || fail "the new run's history is not 1 epoch"
echo "ok: --overwrite leaves nothing of the old run"

# 6. --resume trains on the data folder the run started with, whatever MNIST_DIR says now;
#    --threads above the machine's cores is capped with a warning.
mkdir -p "$work/digits"
ln -s "$MNIST_DIR"/* "$work/digits/"
"$mnist" train "${small[@]}" --data "$work/digits" --stop-after 1 --out "$work/b" >/dev/null
cores=$(nproc)
MNIST_DIR=$work/nowhere "$mnist" train --resume --threads 1000 --out "$work/b" >"$work/out" 2>"$work/err" ||
  { cat "$work/err"; fail "resume without --data did not find the run's data folder"; }
grep -q "loading data from $work/digits" "$work/out" || fail "resume did not use the run's data folder"
grep -q "warning: --threads 1000 is more than the $cores cores of this machine; using $cores" "$work/err" ||
  fail "no warning for --threads 1000: $(cat "$work/err")"
grep -q "threads=$cores\$" "$work/out" || fail "--threads 1000 was not capped to $cores"
[[ $(wc -l <"$work/b/history.csv") -eq 3 ]] || fail "the resumed run did not finish its 2 epochs"
echo "ok: --resume remembers the data folder; --threads is capped to $cores"

# 7. A run whose folder is deleted under it, and made again by a second run, stops at its next
#    epoch's end without writing there, and leaves that folder alone: the lock file and the
#    folder are the second run's now.
"$mnist" train --limit-train 6000 --val 500 --limit-test 500 --epochs 30 --seed 5 --out "$work/c" \
  >"$work/c_old.txt" 2>&1 &
old=$!
# Wait for the last file of the first epoch (its line is printed before the files are
# written): deleted earlier, the folder could get that file back from the first run after the
# second run made it again, and the second run would then rightly refuse it.
until [[ -e $work/c/loss_acc_curves.png ]]; do
  kill -0 $old 2>/dev/null || fail "the first run ended before it wrote its first epoch"
  sleep 0.05
done
# The first run may be writing its files while they are deleted, and rm then finds the folder
# not empty: delete until it is gone.
for ((try = 0; ; ++try)); do
  rm -rf "$work/c" 2>/dev/null && break
  ((try < 100)) || fail "could not delete $work/c under the running first run"
  sleep 0.05
done
"$mnist" train --limit-train 6000 --val 500 --limit-test 500 --epochs 1 --seed 6 --out "$work/c" \
  >"$work/c_new.txt" 2>&1 &
new=$!
until [[ -e $work/c/train.lock ]]; do
  kill -0 $new 2>/dev/null || { cat "$work/c_new.txt"; fail "the second run ended before it locked"; }
  sleep 0.05
done
# The first run stops by itself after the epoch it is in (its 30 epochs would take minutes).
for ((try = 0; try < 3000; ++try)); do
  kill -0 $old 2>/dev/null || break
  sleep 0.1
done
if kill -0 $old 2>/dev/null; then
  kill -TERM $old
  wait $old || true
  fail "the first run went on training after its folder was deleted and made again"
fi
status=0
wait $old || status=$?
[[ $status -eq 1 ]] || { cat "$work/c_old.txt"; fail "the first run ended with status $status, not 1"; }
grep -q "c: the output folder was deleted or replaced while this run was using it" "$work/c_old.txt" ||
  { cat "$work/c_old.txt"; fail "the first run did not say why it stopped"; }
wait $new || { cat "$work/c_new.txt"; fail "the second run failed beside the stopped first one"; }
[[ -s $work/c/best.safetensors && -s $work/c/metrics.json ]] || fail "the second run's files are missing"
# The folder's history is the second run's one epoch, not the first run's.
[[ $(wc -l <"$work/c/history.csv") -eq 2 ]] || { cat "$work/c/history.csv"; fail "the folder's history is not the second run's"; }
grep -q '"seed": 6' "$work/c/metrics.json" || fail "the folder's metrics are not the second run's"
echo "ok: a run whose folder was made again by another run stops without writing there"
echo "1 passed, 0 failed: cli_run_folder"
