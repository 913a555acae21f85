"""minidl's ONNX files judged by other engines: onnx.checker and OpenCV's dnn module.

Usage: export_engines.py ONNX_TOOL MNIST CHECKPOINT WORK_DIR

ONNX_TOOL writes each test network as WORK_DIR/<case>.onnx with minidl's input and
output beside it; `mnist export` writes CHECKPOINT (a trained CNN) too. Every file must
pass onnx.checker (with shape inference), and OpenCV must compute minidl's outputs to
float tolerance; on 300 MNIST test images, the trained CNN and a ResNet-8 must predict
the same classes. Exits 77 (skipped) without onnx, cv2 or MNIST_DIR, 1 under CI=true.
"""
import os
import subprocess
import sys

from test_setup import skip_or_fail


try:
    import cv2
    import numpy as np
    import onnx
    import safetensors_np
except ImportError as e:
    skip_or_fail(f"{e.name} is missing: apt-get install python3-onnx python3-opencv python3-numpy")

tool, mnist, checkpoint, work = (os.path.abspath(a) for a in sys.argv[1:5])
if not os.path.isdir(os.environ.get("MNIST_DIR", "")):
    skip_or_fail("MNIST_DIR is not set to the MNIST folder")
os.makedirs(work, exist_ok=True)
subprocess.run([tool, "cases", work, checkpoint], check=True)
cli_file = os.path.join(work, "cli_mnist_cnn.onnx")
subprocess.run([mnist, "export", "--model", checkpoint, "--onnx", cli_file], check=True,
               stdout=subprocess.DEVNULL)

failures = []
# The command writes the file the library writes.
if open(cli_file, "rb").read() != open(os.path.join(work, "mnist_cnn.onnx"), "rb").read():
    failures.append("mnist export: the file differs from export_model's")

# mnist evaluate and predict read the exported file as they read the checkpoint.
def mnist_output(*args):
    run = subprocess.run([mnist, *args], capture_output=True, text=True, cwd=work)
    return run.returncode, run.stdout.splitlines()[:1] if run.returncode == 0 else run.stderr


from_onnx = mnist_output("evaluate", "--model", cli_file, "--limit-test", "1000", "--out", "eval_onnx")
from_checkpoint = mnist_output("evaluate", "--model", checkpoint, "--limit-test", "1000", "--out", "eval_checkpoint")
print(f"mnist evaluate: {from_onnx[1]} from the ONNX file, {from_checkpoint[1]} from the checkpoint")
if from_onnx[0] != 0 or from_onnx != from_checkpoint:
    failures.append("mnist evaluate: the ONNX file and the checkpoint disagree")
images = safetensors_np.load(os.path.join(work, "mnist_cnn.safetensors"))[0]["x"][:3]
pngs = []
for i, image in enumerate(images):
    pngs.append(os.path.join(work, f"digit{i}.png"))
    cv2.imwrite(pngs[-1], np.round((image[0] * 0.5 + 0.5) * 255).astype(np.uint8))
predicted = [mnist_output("predict", "--model", m, *pngs) for m in (cli_file, checkpoint)]
if predicted[0][0] != 0 or predicted[0] != predicted[1]:
    failures.append(f"mnist predict: {predicted[0]} from the ONNX file, {predicted[1]} from the checkpoint")
bad = os.path.join(work, "truncated.onnx")
open(bad, "wb").write(open(cli_file, "rb").read()[:5000])
status, message = mnist_output("evaluate", "--model", bad, "--out", "eval_bad")
if status != 1 or message.count("\n") != 1 or bad not in message:
    failures.append(f"mnist evaluate of a truncated ONNX file: exit {status}, {message!r}")

cases = ["conv_pool", "gelu", "gelu_tanh", "silu", "tanh", "sigmoid", "relu", "softmax", "head",
         "branches", "mnist_cnn", "resnet"]
for case in cases:
    path = os.path.join(work, case + ".onnx")
    try:
        onnx.checker.check_model(onnx.load(path), full_check=True)
    except Exception as e:  # the checker raises several types
        failures.append(f"{case}: onnx.checker: {str(e).splitlines()[0]}")
        continue
    tensors, _ = safetensors_np.load(os.path.join(work, case + ".safetensors"))
    x, y = tensors["x"], tensors["y"]
    net = cv2.dnn.readNetFromONNX(path)
    net.setInput(x)
    got = net.forward()
    if got.shape != y.shape:
        failures.append(f"{case}: OpenCV's output is {got.shape}, minidl's {y.shape}")
        continue
    scale = max(1.0, float(np.abs(y).max()))
    diff = float(np.abs(got - y).max())
    line = f"{case}: OpenCV vs minidl, largest difference {diff:.2e} (outputs up to {scale:.2f})"
    failed = diff > 1e-5 * scale
    if "labels" in tensors:
        ours, theirs = y.argmax(1), got.argmax(1)
        # A class may only differ where minidl's two best scores are within rounding.
        top2 = np.sort(y, axis=1)[:, -2:]
        close = (top2[:, 1] - top2[:, 0]) < 1e-5 * scale
        differ = int(((ours != theirs) & ~close).sum())
        accuracy = float((ours == tensors["labels"]).mean())
        line += f"; {len(ours)} MNIST test images, {differ} predicted differently, "
        line += f"minidl's accuracy {accuracy:.4f}"
        failed = failed or differ > 0
    if failed:
        failures.append(line)
    print(line)

for f in failures:
    print("FAILED:", f)
print(f"{len(cases) + 4 - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
