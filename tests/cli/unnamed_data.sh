# Sourced by the CLI tests of mnist and resnet (which define fail).
# check_unnamed_data BINARY MODEL SOURCE PATTERN WORK: `BINARY train` and `BINARY evaluate
# --model MODEL` on a copy of the data folder SOURCE that lacks the test labels, given with
# --data and no --classes, must call it only "data", name the missing file, exit 1, and print
# nothing that matches PATTERN (the default data set's name and hints).
check_unnamed_data() {
  local binary=$1 model=$2 source=$3 pattern=$4 work=$5 command status
  mkdir -p "$work/partial"
  ln -s "$source"/train-* "$source"/t10k-images* "$work/partial/"
  for command in train evaluate; do
    status=0
    if [[ $command == train ]]; then
      "$binary" train --data "$work/partial" --out "$work/partial_run" >"$work/out" 2>"$work/err" ||
        status=$?
      grep -q "^loading data from $work/partial" "$work/out" ||
        fail "train names the data: $(cat "$work/out")"
    else
      "$binary" evaluate --data "$work/partial" --model "$model" --out "$work/partial_eval" \
        >"$work/out" 2>"$work/err" || status=$?
    fi
    [[ $status -eq 1 ]] || fail "$command with a missing file: status $status, want 1: $(cat "$work/err")"
    grep -q "data file t10k-labels-idx1-ubyte not found in folder '$work/partial'" "$work/err" ||
      fail "$command: message: $(cat "$work/err")"
    ! sed "s|$work|WORK|g" "$work/out" "$work/err" | grep -Eq "$pattern" ||
      fail "$command prints '$pattern' for unnamed data: $(cat "$work/out" "$work/err")"
  done
}
