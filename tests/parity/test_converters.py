#!/usr/bin/python3
"""Checks tools/minidl_to_pytorch.py and tools/pytorch_to_minidl.py as a user runs them.

Usage: test_converters.py WORK_DIR   (run by converters.sh, which skips it without torch)

The safetensors files are read and written here with struct and json only, not
with tools/safetensors_np.py, so that the converters are checked against the
format itself rather than against their own helper.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "..", "tools")
NETS = os.path.join(HERE, "converter_nets.py")
sys.path.insert(0, HERE)
sys.path.insert(0, TOOLS)
import converter_nets  # noqa: E402
from reference_model import MnistCnn  # noqa: E402

WORK = sys.argv[1]
failures = []


def check(condition, what):
    print(("ok    " if condition else "FAIL  ") + what)
    if not condition:
        failures.append(what)


def run(tool, *args):
    """(exit status, stderr) of a converter; PYTHONPATH lets torch.load find pickled test modules."""
    env = dict(os.environ, PYTHONPATH=HERE)
    p = subprocess.run([sys.executable, os.path.join(TOOLS, tool), *args], env=env,
                       capture_output=True, text=True)
    if p.returncode != 0:
        print(f"      ({tool} said: {p.stderr.strip()})")
    return p.returncode, p.stderr


def path(name):
    return os.path.join(WORK, name)


def header_of(file):
    """The JSON header of a safetensors file, read with struct and json only."""
    with open(file, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))


def write_safetensors(file, tensors, meta):
    """A safetensors file of {name: numpy array} and string metadata, as minidl writes them."""
    header, data = {"__metadata__": meta}, b""
    for name, a in tensors.items():
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        kind = {np.float32: "F32", np.float64: "F64", np.int64: "I64"}[a.dtype.type]
        header[name] = {"dtype": kind, "shape": list(a.shape),
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode()
    with open(file, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def same_state(a, b):
    """True when two state_dicts have the same names, dtypes, shapes and bits."""
    return set(a) == set(b) and all(a[k].dtype == b[k].dtype and a[k].shape == b[k].shape
                                    and torch.equal(a[k], b[k]) for k in a)


def round_trip(label, net, module_class):
    """torch -> minidl -> torch for net, checked against module_class of converter_nets.py."""
    torch.save(net.state_dict(), path(f"{label}.pt"))
    status, _ = run("pytorch_to_minidl.py", path(f"{label}.pt"), path(f"{label}.safetensors"),
                    "--module-file", NETS, "--module-class", module_class)
    check(status == 0, f"{label}: pytorch_to_minidl succeeds")
    header = header_of(path(f"{label}.safetensors"))
    meta = header.pop("__metadata__", {})
    check(meta.get("format") == "minidl", f"{label}: the checkpoint says format minidl")
    state = net.state_dict()
    check(set(header) == set(state), f"{label}: the checkpoint has every state_dict name, buffers included")
    crc = {k: f"{zlib.crc32(v.numpy().tobytes()):08x}" for k, v in state.items()}
    check(all(meta.get("crc32:" + k) == c for k, c in crc.items()),
          f"{label}: each tensor's crc32, which minidl verifies on load, is right")
    kinds = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}
    check(all(header[k]["dtype"] == kinds[v.dtype] and header[k]["shape"] == list(v.shape)
              for k, v in state.items() if k in header), f"{label}: every tensor keeps its dtype and shape")
    status, _ = run("minidl_to_pytorch.py", path(f"{label}.safetensors"), path(f"{label}_back.pt"),
                    "--reference", path(f"{label}.pt"))
    check(status == 0, f"{label}: minidl_to_pytorch succeeds")
    back = torch.load(path(f"{label}_back.pt"))
    check(same_state(back, state), f"{label}: the round trip gives back the same tensors, bit for bit")
    return back


def test_mnist_cnn():
    torch.manual_seed(1)
    net = MnistCnn().eval()
    # MnistCnn lives in tools/reference_model.py; checked against that file.
    torch.save(net.state_dict(), path("mnist.pt"))
    status, _ = run("pytorch_to_minidl.py", path("mnist.pt"), path("mnist.safetensors"),
                    "--module-file", os.path.join(TOOLS, "reference_model.py"), "--module-class", "MnistCnn")
    check(status == 0, "MNIST CNN: pytorch_to_minidl succeeds")
    header = header_of(path("mnist.safetensors"))
    check(all(header[k]["dtype"] == "F32" for k in net.state_dict()), "MNIST CNN: tensors are F32")
    status, _ = run("minidl_to_pytorch.py", path("mnist.safetensors"), path("mnist_back.pt"),
                    "--module-file", os.path.join(TOOLS, "reference_model.py"), "--module-class", "MnistCnn")
    check(status == 0, "MNIST CNN: minidl_to_pytorch succeeds")
    back = torch.load(path("mnist_back.pt"))
    check(same_state(back, net.state_dict()), "MNIST CNN: round trip is bit for bit")
    loaded = MnistCnn().eval()
    loaded.load_state_dict(back)
    x = torch.randn(2, 1, 28, 28)
    check(torch.equal(loaded(x), net(x)), "MNIST CNN: the converted weights compute the same logits")

    # A training checkpoint: optimizer state and metadata stay behind, the model loads strictly.
    tensors = {k: v.numpy() for k, v in net.state_dict().items()}
    tensors.update({f"optimizer.exp_avg.{k}": np.zeros_like(v) for k, v in tensors.items()})
    write_safetensors(path("training.safetensors"), tensors,
                      {"format": "minidl", "format_version": "1", "optimizer.type": "adam", "epoch": "3"})
    status, _ = run("minidl_to_pytorch.py", path("training.safetensors"), path("training.pt"))
    check(status == 0, "training checkpoint: minidl_to_pytorch succeeds")
    state = torch.load(path("training.pt"))
    check(sorted(state) == sorted(net.state_dict()),
          "training checkpoint: only the model's tensors are written")
    MnistCnn().load_state_dict(state, strict=True)


def test_residual_network():
    net = converter_nets.trained(converter_nets.ResidualNet())
    check(int(net.state_dict()["layer1.1.downsample.1.num_batches_tracked"]) == 3,
          "residual net: its BatchNorm buffers were updated before conversion")
    back = round_trip("residual", net, "ResidualNet")
    loaded = converter_nets.ResidualNet().eval()
    loaded.load_state_dict(back)
    x = torch.randn(2, 1, 9, 9)
    check(torch.equal(loaded(x), net(x)), "residual net: the converted state computes the same outputs")

    double = converter_nets.trained(converter_nets.ResidualNetDouble())
    round_trip("residual_double", double, "ResidualNetDouble")

    # A whole module saved with torch.save converts like its state_dict.
    torch.save(net, path("whole_module.pt"))
    status, _ = run("pytorch_to_minidl.py", path("whole_module.pt"), path("whole_module.safetensors"))
    check(status == 0 and set(header_of(path("whole_module.safetensors"))) - {"__metadata__"}
          == set(net.state_dict()), "a saved module converts with all its names")


def test_mismatch_report():
    net = converter_nets.trained(converter_nets.ResidualNet())
    torch.save(net.state_dict(), path("mismatch.pt"))
    with open(path("mismatch.safetensors"), "w") as f:
        f.write("an earlier result")
    status, err = run("pytorch_to_minidl.py", path("mismatch.pt"), path("mismatch.safetensors"),
                      "--module-file", NETS, "--module-class", "ResidualNetRenamed")
    check(status == 1, "mismatch: pytorch_to_minidl exits 1")
    for line in ("missing:    head.weight [5, 8]", "missing:    head.bias [5]",
                 "unexpected: fc.weight [5, 8]", "unexpected: fc.bias [5]",
                 "shape:      conv1.weight is [4, 1, 3, 3], expected [4, 1, 5, 5]"):
        check(line in err, f"mismatch: the report lists '{line}'")
    check(len([ln for ln in err.splitlines() if ln.startswith("  ")]) == 5, "mismatch: and nothing else")
    check(open(path("mismatch.safetensors")).read() == "an earlier result",
          "mismatch: the output is not replaced")

    # The other way, against a reference checkpoint.
    round_trip("reference", net, "ResidualNet")
    torch.save(converter_nets.ResidualNetRenamed().state_dict(), path("renamed.pt"))
    status, err = run("minidl_to_pytorch.py", path("reference.safetensors"), path("never.pt"),
                      "--reference", path("renamed.pt"))
    check(status == 1 and "missing:    head.weight" in err and "unexpected: fc.weight" in err,
          "mismatch: minidl_to_pytorch lists missing and unexpected names against a reference")
    check(not os.path.exists(path("never.pt")), "mismatch: no output file is written")

    # An int64 buffer where a float is expected (or the reverse) is reported too.
    state = net.state_dict()
    state["bn1.num_batches_tracked"] = state["bn1.num_batches_tracked"].double()
    torch.save(state, path("float_counter.pt"))
    status, err = run("pytorch_to_minidl.py", path("float_counter.pt"), path("never.safetensors"),
                      "--module-file", NETS, "--module-class", "ResidualNet")
    check(status == 1 and "dtype:      bn1.num_batches_tracked is float64, expected int64" in err,
          "mismatch: a float num_batches_tracked is reported")


    # A dtype minidl checkpoints do not hold is refused by name, not converted silently.
    state = net.state_dict()
    state["fc.weight"] = state["fc.weight"].half()
    torch.save(state, path("half.pt"))
    status, err = run("pytorch_to_minidl.py", path("half.pt"), path("never.safetensors"))
    check(status == 1 and "fc.weight (torch.float16)" in err and not os.path.exists(path("never.safetensors")),
          "a float16 tensor is refused, naming it")


def one_line_error(label, tool, src, dst, words):
    status, err = run(tool, src, dst)
    lines = err.strip().splitlines()
    check(status == 1 and len(lines) == 1 and src in lines[0] and all(w in lines[0] for w in words),
          f"{label}: one error line naming the file and the problem")
    check(not os.path.exists(dst), f"{label}: no output file")


def test_damaged_files():
    data = open(path("residual.safetensors"), "rb").read()
    with open(path("truncated.safetensors"), "wb") as f:
        f.write(data[:len(data) - 100])
    one_line_error("truncated checkpoint", "minidl_to_pytorch.py", path("truncated.safetensors"),
                   path("damaged1.pt"), ["truncated"])
    with open(path("bad_header.safetensors"), "wb") as f:
        f.write(data[:8] + b"#" + data[9:])
    one_line_error("corrupt header", "minidl_to_pytorch.py", path("bad_header.safetensors"),
                   path("damaged2.pt"), ["JSON"])
    with open(path("short.safetensors"), "wb") as f:
        f.write(data[:5])
    one_line_error("5-byte file", "minidl_to_pytorch.py", path("short.safetensors"), path("damaged3.pt"),
                   ["too short"])
    pt = open(path("residual.pt"), "rb").read()
    with open(path("truncated.pt"), "wb") as f:
        f.write(pt[:len(pt) // 2])
    torch.save([1, 2, 3], path("list.pt"))
    one_line_error("a list, not a state_dict", "pytorch_to_minidl.py", path("list.pt"),
                   path("damaged5.safetensors"), ["list", "not a state_dict"])
    one_line_error("truncated state_dict", "pytorch_to_minidl.py", path("truncated.pt"),
                   path("damaged4.safetensors"), ["not a readable PyTorch file"])


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    torch.manual_seed(0)
    for test in (test_mnist_cnn, test_residual_network, test_mismatch_report, test_damaged_files):
        print(f"== {test.__name__}")
        try:
            test()
        except Exception as e:  # a check that could not even run is a failure, and the others still run
            check(False, f"{test.__name__} stopped: {type(e).__name__}: {e}")
    if failures:
        sys.exit(f"{len(failures)} checks failed: converters")
    print("all checks passed: converters")


if __name__ == "__main__":
    main()
