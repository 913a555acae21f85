#!/usr/bin/env bash
# Downloads the four MNIST files into DIR and verifies the md5 of their
# decompressed bytes (mirrors recompress the .gz files, so the .gz checksums differ).
#
# Usage: scripts/download_mnist.sh DIR
#   MNIST_MIRROR=URL   download from URL/<file>.gz instead of the default mirrors
#                      (any URL curl understands, file:///path included)
# Files already in DIR with the right content (.gz or uncompressed) are kept.
# On failure: one line on stderr, exit status 1, and nothing new left in DIR (a folder the
# script created is removed again).
set -euo pipefail

if [ $# -ne 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
  echo "usage: $0 DIR   (downloads MNIST into DIR; MNIST_MIRROR=URL overrides the mirror)" >&2
  exit 2
fi
dir=$1

if [ -n "${MNIST_MIRROR:-}" ]; then
  mirrors=("${MNIST_MIRROR%/}")
else
  mirrors=(https://ossci-datasets.s3.amazonaws.com/mnist
           https://storage.googleapis.com/cvdf-datasets/mnist)
fi

expected_md5() {
  case $1 in
    train-images-idx3-ubyte) echo 6bbc9ace898e44ae57da46a324031adb ;;
    train-labels-idx1-ubyte) echo a25bea736e30d166cdddb491f175f624 ;;
    t10k-images-idx3-ubyte) echo 2646ac647ad5339dbf082846283269ea ;;
    t10k-labels-idx1-ubyte) echo 27ae3e4e09519cfbb04c329615203637 ;;
  esac
}

md5_stdin() {
  if command -v md5sum >/dev/null 2>&1; then md5sum | cut -d' ' -f1; else md5 -q; fi
}

# md5 of the decompressed content of a .gz file; empty unless gzip accepts it
# cleanly (gzip only warns about trailing garbage, which minidl's reader refuses).
gz_md5() {
  local sum
  if sum=$(set -o pipefail; gzip -dc -- "$1" 2>/dev/null | md5_stdin); then echo "$sum"; fi
}

command -v curl >/dev/null 2>&1 || { echo "error: curl is needed to download MNIST" >&2; exit 1; }

# A failed download leaves nothing behind: not the files it fetched, not a folder it created.
created_dir=0
[ -d "$dir" ] || created_dir=1
mkdir -p -- "$dir"
fetched=()
part=""
cleanup() {
  [ -z "$part" ] || rm -f -- "$part"
  if [ "$ok_all" != 1 ]; then
    for f in "${fetched[@]}"; do rm -f -- "$f"; done
    [ "$created_dir" = 0 ] || rmdir -- "$dir" 2>/dev/null || true
  fi
}
ok_all=0
trap cleanup EXIT

for name in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  want=$(expected_md5 "$name")
  gz=$dir/$name.gz
  if [ -f "$gz" ] && [ "$(gz_md5 "$gz")" = "$want" ]; then
    echo "$gz: present, checksum OK"
    continue
  fi
  if [ -f "$dir/$name" ] && [ "$(md5_stdin <"$dir/$name")" = "$want" ]; then
    echo "$dir/$name: present, checksum OK"
    continue
  fi
  # Each mirror's failure is kept short and reported once, in the final message.
  reasons=""
  part=$gz.part
  for mirror in "${mirrors[@]}"; do
    url=$mirror/$name.gz
    if ! why=$(curl -fL --retry 2 --connect-timeout 20 -sS -o "$part" "$url" 2>&1); then
      why=${why//$'\n'/ }
      reasons+="${reasons:+; }$url: ${why#curl: }"
      continue
    fi
    got=$(gz_md5 "$part")
    if [ "$got" = "$want" ]; then
      mv -f -- "$part" "$gz"
      fetched+=("$gz")
      echo "$gz: downloaded, checksum OK"
      continue 2
    fi
    reasons+="${reasons:+; }$url: wrong content (md5 of the decompressed data ${got:-unavailable, not a valid gzip file}, expected $want)"
  done
  removed=""
  ((${#fetched[@]} == 0)) || removed=" (the files fetched before it are removed again)"
  echo "error: MNIST could not be downloaded into $dir ($reasons)$removed; check the network, set" \
       "MNIST_MIRROR to a mirror holding the .gz files, or copy the four files into $dir" >&2
  exit 1
done
ok_all=1
echo "MNIST is ready in $dir (use --data $dir or MNIST_DIR=$dir)"
