#!/usr/bin/env bash
# The versions of the run state `mnist train` keeps in its checkpoints (run.version), as
# --resume reads them: a newer version than the program's is refused, and a version-0
# checkpoint (no run.version, run.data_dir, run.classes or hp.lr_decay) continues the run
# exactly, on the data folder the command line gives.
# Usage: cli_run_state.sh MNIST_BINARY WORK_DIR   (needs MNIST_DIR and /usr/bin/python3; exits
# 77, skipped, without them)
set -euo pipefail
mnist=$1 work=$2
source "$(dirname "$0")/../require.sh"
require_mnist
[[ -x /usr/bin/python3 ]] || skip_or_fail "no /usr/bin/python3 to edit checkpoints with"
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }

source "$(dirname "$0")/edit_metadata.sh"
metadata_value() {  # metadata_value FILE KEY
  /usr/bin/python3 - "$1" "$2" <<'EOF'
import json, struct, sys
blob = open(sys.argv[1], "rb").read()
size = struct.unpack("<Q", blob[:8])[0]
print(json.loads(blob[8:8 + size])["__metadata__"][sys.argv[2]])
EOF
}
tensors_of() {  # tensors_of FILE: the bytes of its tensors, without the header
  /usr/bin/python3 - "$1" <<'EOF'
import hashlib, struct, sys
blob = open(sys.argv[1], "rb").read()
print(hashlib.sha256(blob[8 + struct.unpack("<Q", blob[:8])[0]:]).hexdigest())
EOF
}

# One epoch of a two-epoch run, stopped as if interrupted, in a data folder of its own, then
# three copies of it: the run resumed as it is (the reference), and two with edited versions.
small=(--limit-train 1500 --val 500 --limit-test 500 --epochs 2 --seed 3)
mkdir -p "$work/digits"
ln -s "$MNIST_DIR"/* "$work/digits/"
"$mnist" train "${small[@]}" --data "$work/digits" --stop-after 1 --out "$work/run" >/dev/null
for copy in newer v0; do cp -r "$work/run" "$work/$copy"; done
"$mnist" train --resume --out "$work/run" >/dev/null
version=$(metadata_value "$work/run/last.safetensors" run.version)
[[ $version =~ ^[0-9]+$ ]] || fail "run.version is not a number: '$version'"

# 1. A run state newer than the program's is refused with status 1, naming both versions, and
#    the folder is left as it was.
newer=$((version + 1))
edit_metadata "$work/newer/last.safetensors" "run.version=$newer"
sums() { (cd "$work/newer" && md5sum -- *); }
before=$(sums)
status=0
"$mnist" train --resume --out "$work/newer" >"$work/out" 2>"$work/err" || status=$?
[[ $status == 1 ]] || { cat "$work/err"; fail "resume from run state version $newer: status $status, want 1"; }
grep -q "run state version $newer is newer than this program's ($version); use the minidl that wrote it" \
  "$work/err" || fail "message: $(cat "$work/err")"
[[ $(sums) == "$before" ]] || fail "the refused resume changed the folder"
echo "ok: run state version $newer is refused by a program of version $version"

# 2. Version 0: the keys later versions added are absent. The run continues on the data folder
#    MNIST_DIR names (version 0 did not store its own) at a constant learning rate, to the same
#    weights as the run resumed from its own checkpoint.
edit_metadata "$work/v0/last.safetensors" -run.version -run.data_dir -run.classes -hp.lr_decay
"$mnist" train --resume --out "$work/v0" >"$work/out" 2>"$work/err" ||
  { cat "$work/err"; fail "resume from a version-0 run state failed"; }
grep -q "loading MNIST from $MNIST_DIR\$" "$work/out" || fail "version 0 did not train on MNIST_DIR: $(cat "$work/out")"
[[ $(wc -l <"$work/v0/history.csv") -eq 3 ]] || fail "the version-0 run did not finish its 2 epochs"
[[ $(tensors_of "$work/v0/last.safetensors") == $(tensors_of "$work/run/last.safetensors") ]] ||
  fail "the version-0 run ended with other weights than the run resumed from its own checkpoint"
echo "ok: a version-0 run state continues the run exactly"
echo "1 passed, 0 failed: cli_run_state"
