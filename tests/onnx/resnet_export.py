"""`resnet export`: a checkpoint of a short run becomes an ONNX file that passes onnx.checker
and that OpenCV's dnn evaluates as minidl does (minidl reading the same file back, which
tests/onnx/test_onnx.cpp shows computes the exported network's bits).

Usage: resnet_export.py RESNET ONNX_TOOL WORK_DIR
Exits 77 (skipped) without onnx, cv2 or Fashion-MNIST, 1 under CI=true.
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

resnet, tool, work = (os.path.abspath(a) for a in sys.argv[1:4])
fashion = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
if not any(os.path.exists(os.path.join(fashion, "train-images-idx3-ubyte" + e)) for e in ("", ".gz")):
    skip_or_fail(f"no Fashion-MNIST in {fashion}; apt-get install dataset-fashion-mnist")
os.makedirs(work, exist_ok=True)
run = os.path.join(work, "run")
subprocess.run([resnet, "train", "--data", fashion, "--limit-train", "200", "--limit-test", "100",
                "--val", "0", "--epochs", "1", "--depth", "8", "--width", "4", "--batch", "50",
                "--out", run, "--overwrite"], check=True, stdout=subprocess.DEVNULL)
model = os.path.join(work, "resnet.onnx")
subprocess.run([resnet, "export", "--model", os.path.join(run, "best.safetensors"), "--onnx", model],
               check=True, stdout=subprocess.DEVNULL)
onnx.checker.check_model(onnx.load(model), full_check=True)

x = np.random.default_rng(0).uniform(-1, 1, (20, 1, 28, 28)).astype(np.float32)
safetensors_np.save(os.path.join(work, "in.safetensors"), {"x": x})
subprocess.run([tool, "run", model, os.path.join(work, "in.safetensors"),
                os.path.join(work, "out.safetensors")], check=True)
ours = safetensors_np.load(os.path.join(work, "out.safetensors"))[0]["y"]
net = cv2.dnn.readNetFromONNX(model)
net.setInput(x)
theirs = net.forward()
scale = max(1.0, float(np.abs(ours).max()))
diff = float(np.abs(theirs - ours).max())
print(f"resnet export: OpenCV vs minidl, largest difference {diff:.2e} (outputs up to {scale:.2f})")
ok = diff <= 1e-5 * scale and (ours.argmax(1) == theirs.argmax(1)).all()
print(f"{int(ok)} passed, {int(not ok)} failed")
sys.exit(0 if ok else 1)
