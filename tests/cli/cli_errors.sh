#!/usr/bin/env bash
# The mnist command's errors: one readable line on stderr and the documented exit status
# (2 for a usage error, 1 for a bad file or folder).
# Usage: cli_errors.sh MNIST_BINARY WORK_DIR
set -uo pipefail
mnist=$1 work=$2
rm -rf "$work" && mkdir -p "$work"
failures=0

# expect STATUS PATTERN -- ARGS...: runs mnist ARGS, checks the exit status,
# that stderr is one line, and that it matches PATTERN.
expect() {
  local status=$1 pattern=$2
  shift 3
  "$mnist" "$@" >"$work/out" 2>"$work/err"
  local got=$?
  local lines where="$work/err"
  lines=$(wc -l <"$work/err")
  [[ $status -eq 0 ]] && where="$work/out"
  if [[ $got -ne $status ]] || ! grep -q -- "$pattern" "$where" || { [[ $status -ne 0 ]] && [[ $lines -ne 1 ]]; }; then
    echo "FAIL: mnist $* -> status $got (want $status), stderr ($lines lines):"
    cat "$work/err"
    failures=$((failures + 1))
  else
    echo "ok:   mnist $* -> $status: $(head -c 160 "$work/err")"
  fi
}

expect 2 "unknown command 'fly'" -- fly
expect 2 "unknown flag --lrate" -- train --lrate 0.1
expect 2 "\-\-epochs must be an integer from 1 to 10000, got 'many'" -- train --epochs many
expect 2 "\-\-lr must be a number" -- train --lr -1
expect 2 "\-\-optimizer must be one of adam, sgd, got 'rmsprop'" -- train --optimizer rmsprop
expect 2 "\-\-batch needs a value" -- train --batch
expect 1 "$work/nowhere" -- train --data "$work/nowhere" --out "$work/o1"
expect 2 "\-\-model FILE is required" -- evaluate
expect 2 "give at least one image file" -- predict --model x.safetensors
expect 1 "$work/missing.safetensors: file does not exist" -- predict --model "$work/missing.safetensors" a.png
echo "not a checkpoint" >"$work/bad.safetensors"
expect 1 "$work/bad.safetensors" -- evaluate --model "$work/bad.safetensors"
expect 1 "no checkpoint to resume from" -- train --resume --out "$work/o2"
expect 2 "give one of them" -- train --resume --overwrite --out "$work/o3"
expect 0 "^mnist (minidl [0-9][0-9.]*)$" -- --version
expect 0 "usage: mnist train" -- train --help
grep -q -- "--limit-train" "$work/out" || { echo "FAIL: train --help lacks --limit-train"; failures=$((failures + 1)); }

# No output file may appear after a failed run.
[[ ! -e "$work/o1" ]] || { echo "FAIL: a failed run created its output folder"; failures=$((failures + 1)); }

echo "$failures failure(s)"
[[ $failures -eq 0 ]]
