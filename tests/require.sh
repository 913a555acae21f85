# Sourced by the test scripts that need something the machine may lack (MNIST, python3-torch).
# A missing requirement makes the test exit 77, which CTest reports as skipped (SKIP_RETURN_CODE);
# under CI=true it is a failure instead, because CI must run every test.

# ci_requires_everything: true when the CI variable asks for every test to run.
ci_requires_everything() {
  case ${CI:-} in
    "" | 0 | false | False | FALSE) return 1 ;;
    *) return 0 ;;
  esac
}

# skip_or_fail REASON: ends the test as skipped (exit 77), or as failed under CI=true.
skip_or_fail() {
  if ci_requires_everything; then
    echo "error: $1 (CI=true requires every test to run)" >&2
    exit 1
  fi
  echo "SKIPPED: $1"
  exit 77
}

require_mnist() {
  if [[ -z ${MNIST_DIR:-} ]]; then
    skip_or_fail "MNIST_DIR is not set; point it at the MNIST folder to run this test"
  fi
  if [[ ! -d $MNIST_DIR ]]; then
    skip_or_fail "MNIST_DIR=$MNIST_DIR is not a folder"
  fi
}

require_torch() {
  if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
    skip_or_fail "/usr/bin/python3 cannot import torch; install python3-torch"
  fi
}

# require_fashion: sets FASHION_DIR to $FASHION_MNIST_DIR, else to the folder of Debian's
# dataset-fashion-mnist, when it holds the training images.
require_fashion() {
  FASHION_DIR=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
  if [[ ! -f $FASHION_DIR/train-images-idx3-ubyte.gz && ! -f $FASHION_DIR/train-images-idx3-ubyte ]]; then
    skip_or_fail "no Fashion-MNIST in $FASHION_DIR; set FASHION_MNIST_DIR or apt-get install dataset-fashion-mnist"
  fi
}

# require_libtorch: Debian's libtorch-dev, which the LibTorch twins build against.
require_libtorch() {
  if [[ ! -f /usr/lib/$(gcc -dumpmachine)/cmake/Torch/TorchConfig.cmake ]]; then
    skip_or_fail "no libtorch-dev; apt-get install libtorch-dev"
  fi
}

# require_reference_blas: sets REFERENCE_BLAS_DIR to the folder of netlib's reference BLAS, which
# the comparisons with PyTorch are given on purpose to check that they refuse it.
require_reference_blas() {
  REFERENCE_BLAS_DIR=/usr/lib/$(gcc -dumpmachine)/blas
  if [[ ! -e $REFERENCE_BLAS_DIR/libblas.so.3 ]]; then
    skip_or_fail "netlib's reference BLAS is not installed; apt-get install libblas3"
  fi
}
