#!/usr/bin/env bash
# Downloads the four MNIST files into DIR and verifies the md5 of their
# decompressed bytes (mirrors recompress the .gz files, so the .gz checksums differ).
#
# Usage: scripts/download_mnist.sh DIR
#   MNIST_MIRROR=URL   download from URL/<file>.gz instead of the default mirrors
#                      (any URL curl understands, file:///path included)
# Files already in DIR with the right content (.gz or uncompressed) are kept.
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
mkdir -p -- "$dir"
part=""
trap '[ -z "$part" ] || rm -f -- "$part"' EXIT

failed=0
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
  [ ! -f "$gz" ] || echo "$gz: present but its content has the wrong checksum; downloading it again"

  ok=0
  part=$gz.part
  for mirror in "${mirrors[@]}"; do
    url=$mirror/$name.gz
    echo "downloading $url"
    if ! curl -fL --retry 2 --connect-timeout 20 -sS -o "$part" "$url"; then
      echo "warning: could not download $url" >&2
      continue
    fi
    got=$(gz_md5 "$part")
    if [ "$got" = "$want" ]; then
      mv -f -- "$part" "$gz"
      echo "$gz: checksum OK"
      ok=1
      break
    fi
    echo "warning: $url: md5 of the decompressed data is ${got:-unavailable (not a valid gzip file)}, expected $want" >&2
  done
  rm -f -- "$part"
  part=""
  if [ $ok = 0 ]; then
    echo "error: no valid $name.gz from: ${mirrors[*]}" >&2
    failed=1
  fi
done

if [ $failed = 1 ]; then
  echo "error: MNIST is incomplete in $dir. Check the network, or set MNIST_MIRROR to another" \
       "mirror holding the .gz files, or copy the four files into $dir yourself." >&2
  exit 1
fi
echo "MNIST is ready in $dir (use --data $dir or MNIST_DIR=$dir)"
