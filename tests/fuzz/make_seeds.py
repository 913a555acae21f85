"""Writes small valid inputs as seed corpora for the fuzz targets.

Usage: make_seeds.py DIR   (creates DIR/idx, DIR/safetensors, DIR/image, DIR/json, DIR/onnx)
"""
import gzip
import os
import struct
import sys
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import cv2  # noqa: E402  (python3-opencv: the JPEG seeds)
import numpy as np  # noqa: E402

import safetensors_np  # noqa: E402

out = sys.argv[1]
for d in ("idx", "safetensors", "image", "json"):
    os.makedirs(os.path.join(out, d), exist_ok=True)
rng = np.random.default_rng(0)

images = struct.pack(">IIII", 0x803, 3, 4, 5) + rng.integers(0, 256, 60, dtype=np.uint8).tobytes()
labels = struct.pack(">II", 0x801, 3) + bytes([1, 7, 9])
for name, raw in (("images", images), ("labels", labels)):
    open(os.path.join(out, "idx", name), "wb").write(raw)
    open(os.path.join(out, "idx", name + ".gz"), "wb").write(gzip.compress(raw))

safetensors_np.save(os.path.join(out, "safetensors", "small.safetensors"),
                    {"a.weight": rng.standard_normal((2, 3)).astype(np.float32),
                     "b": np.arange(4, dtype=np.int64), "c": np.zeros((0, 2), np.float64)},
                    {"format": "minidl", "note": "seed"})

# A safetensors header's JSON alone, and one with every kind of value.
header = open(os.path.join(out, "safetensors", "small.safetensors"), "rb").read()
length = struct.unpack("<Q", header[:8])[0]
open(os.path.join(out, "json", "header.json"), "wb").write(header[8:8 + length])
open(os.path.join(out, "json", "values.json"), "w").write(
    '{"a": [1, -2.5e3, true, false, null, 18446744073709551615], "s": "t\\u00e9\\n", "o": {"x": {}}}')

digit = np.zeros((12, 10), np.uint8)
digit[2:10, 4:6] = 255
pgm = b"P5\n10 12\n255\n" + digit.tobytes()
open(os.path.join(out, "image", "digit.pgm"), "wb").write(pgm)
row = 12  # BMP rows padded to 4 bytes; 8-bit grayscale palette
palette = b"".join(bytes([i, i, i, 0]) for i in range(256))
pixels = b"".join(digit[r].tobytes() + b"\0\0" for r in range(11, -1, -1))
info = struct.pack("<IiiHHIIiiII", 40, 10, 12, 1, 8, 0, len(pixels), 2835, 2835, 256, 0)
header = struct.pack("<2sIHHI", b"BM", 14 + 40 + 1024 + len(pixels), 0, 0, 14 + 40 + 1024)
open(os.path.join(out, "image", "digit.bmp"), "wb").write(header + info + palette + pixels)


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


# A canvas export: black ink on transparent black (RGBA, colour type 6).
rgba = np.zeros((12, 10, 4), np.uint8)
rgba[..., 3] = digit
raw = b"".join(b"\0" + rgba[r].tobytes() for r in range(12))
open(os.path.join(out, "image", "canvas.png"), "wb").write(
    b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 10, 12, 8, 6, 0, 0, 0))
    + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))
# A 16-bit grey PNG (colour type 0, depth 16) and a palette PNG with a transparent entry.
raw16 = b"".join(b"\0" + (digit[r].astype(">u2") * 257).tobytes() for r in range(12))
open(os.path.join(out, "image", "grey16.png"), "wb").write(
    b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 10, 12, 16, 0, 0, 0, 0))
    + png_chunk(b"IDAT", zlib.compress(raw16)) + png_chunk(b"IEND", b""))
raw_pal = b"".join(b"\0" + (digit[r] // 255).tobytes() for r in range(12))
open(os.path.join(out, "image", "palette.png"), "wb").write(
    b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 10, 12, 8, 3, 0, 0, 0))
    + png_chunk(b"PLTE", bytes([255, 255, 255, 0, 0, 0])) + png_chunk(b"tRNS", bytes([0]))
    + png_chunk(b"IDAT", zlib.compress(raw_pal)) + png_chunk(b"IEND", b""))
# A 16-bit PPM, and baseline and progressive JPEGs.
rgb16 = np.repeat(digit[..., None].astype(">u2") * 257, 3, axis=2)
open(os.path.join(out, "image", "digit16.ppm"), "wb").write(b"P6\n10 12\n65535\n" + rgb16.tobytes())
for name, flags in (("digit.jpg", []), ("progressive.jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])):
    ok, jpeg = cv2.imencode(".jpg", np.repeat(digit[..., None], 3, axis=2), flags)
    assert ok
    open(os.path.join(out, "image", name), "wb").write(jpeg.tobytes())
print(f"seeds written to {out}")

# ONNX models of the operators the import reads (needs python3-onnx; no seeds without it).
os.makedirs(os.path.join(out, "onnx"), exist_ok=True)
try:
    from onnx import TensorProto, helper, numpy_helper
except ImportError:
    helper = None
if helper:
    def weights(name, *shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    def model(name, nodes, inits, in_shape, out_shape):
        graph = helper.make_graph(
            nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        open(os.path.join(out, "onnx", name + ".onnx"), "wb").write(m.SerializeToString())

    model("cnn", [
        helper.make_node("Conv", ["x", "c.weight", "c.bias"], ["c"], name="c", pads=[1, 1, 1, 1],
                         kernel_shape=[3, 3], group=1),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["y"], transB=1)],
        [weights("c.weight", 2, 1, 3, 3), weights("c.bias", 2), weights("fc.weight", 3, 8),
         weights("fc.bias", 3)], ["N", 1, 4, 4], ["N", 3])
    model("passthrough", [
        helper.make_node("Identity", ["x"], ["i"]),
        helper.make_node("Dropout", ["i"], ["d"]),
        helper.make_node("Relu", ["d"], ["y"])], [], ["N", 2], ["N", 2])
    model("branches", [
        helper.make_node("BatchNormalization", ["x", "bn.weight", "bn.bias", "bn.mean", "bn.var"],
                         ["b"], epsilon=1e-5),
        helper.make_node("Sigmoid", ["b"], ["s"]),
        helper.make_node("Mul", ["b", "s"], ["silu"]),
        helper.make_node("Concat", ["silu", "b"], ["cat"], axis=1),
        helper.make_node("AveragePool", ["cat"], ["a"], kernel_shape=[2, 2]),
        helper.make_node("GlobalAveragePool", ["a"], ["g"]),
        helper.make_node("Add", ["g", "g"], ["y"])],
        [weights("bn.weight", 2), weights("bn.bias", 2), weights("bn.mean", 2),
         numpy_helper.from_array(np.ones(2, np.float32), "bn.var")], [1, 2, 4, 4], [1, 4, 1, 1])
