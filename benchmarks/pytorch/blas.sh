#!/usr/bin/env bash
# Which BLAS a torch process ran on, from the 'libraries ...' line it printed
# (torch_libraries.py; benchmarks/libtorch/epoch.cpp prints the same line).
# A comparison with PyTorch on netlib's reference BLAS says nothing about
# PyTorch, so compare.sh and layers.py refuse one.
#
# Sourced (compare.sh and the other comparisons): defines is_reference_blas and blas_refusal.
# Run as a command (torch_libraries.py): blas.sh NAME 'libraries ...' exits 1 with the
# refusal on stderr, 0 when the BLAS is an optimised one.

# netlib's reference BLAS: a libblas.so* that is not the front of an optimised
# BLAS (Debian's OpenBLAS and BLIS each ship a libblas.so.3 that links them).
is_reference_blas() {
  [[ $(basename "$1") == libblas.so* ]] &&
    ! readelf -d "$1" 2>/dev/null | grep -qiE 'NEEDED.*(openblas|blis|mkl)'
}

# blas_refusal NAME LINE: prints why the program NAME, whose libraries line is
# LINE, cannot be compared, and fails; succeeds silently when it can.
blas_refusal() {
  local blas path paths
  blas=${2#* blas=}
  blas=${blas%% *}
  if [[ $2 != "libraries "* || $blas == "$2" ]]; then
    echo "$1 printed no 'libraries' line: cannot tell which BLAS it ran on"
    return 1
  fi
  if [[ $blas == none ]]; then
    echo "refusing to compare: $1 mapped no BLAS library, so which one it ran on cannot be told"
    return 1
  fi
  IFS=, read -ra paths <<<"$blas"
  for path in "${paths[@]}"; do
    if is_reference_blas "$path"; then
      echo "refusing to compare: $1 ran on netlib's reference BLAS ($path), not OpenBLAS; select OpenBLAS with update-alternatives --config libblas.so.3-$(gcc -dumpmachine)"
      return 1
    fi
  done
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  [[ $# == 2 ]] || {
    echo "usage: $0 NAME 'libraries ...'" >&2
    exit 2
  }
  reason=$(blas_refusal "$1" "$2") || {
    echo "$reason" >&2
    exit 1
  }
fi
