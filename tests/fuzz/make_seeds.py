"""Writes small valid inputs as seed corpora for the fuzz targets.

Usage: make_seeds.py DIR   (creates DIR/idx, DIR/safetensors, DIR/image, DIR/json)
"""
import gzip
import os
import struct
import sys
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
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
print(f"seeds written to {out}")
