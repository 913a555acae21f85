"""Minimal safetensors reading and writing with the standard library and numpy.

The format: an 8-byte little-endian header length, a JSON header mapping each
tensor name to its dtype, shape and [begin, end) byte offsets in the data that
follows, and an optional "__metadata__" object of strings.
"""
import json
import os
import struct
import tempfile

import numpy as np

DTYPES = {"F64": np.float64, "F32": np.float32, "I64": np.int64, "I32": np.int32,
          "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_, "F16": np.float16}
NAMES = {np.dtype(v): k for k, v in DTYPES.items()}


def load(path):
    """Returns ({name: numpy array}, {metadata key: value}).

    A file that is not well-formed raises ValueError with one line naming the
    file and the problem (truncated data, bad header, unknown dtype ...)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: too short for a safetensors file ({len(data)} bytes)")
    n = struct.unpack("<Q", data[:8])[0]
    if n > len(data) - 8:
        raise ValueError(f"{path}: header length {n} runs past the end of the file "
                         f"({len(data)} bytes): truncated or not a safetensors file")
    try:
        header = json.loads(data[8:8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: the header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: the header is not a JSON object")
    buffer = data[8 + n:]
    meta = header.pop("__metadata__", {}) or {}
    tensors = {}
    for name, entry in header.items():
        try:
            dtype = np.dtype(DTYPES[entry["dtype"]]).newbyteorder("<")
            shape = [int(d) for d in entry["shape"]]
            begin, end = (int(o) for o in entry["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{path}: tensor {name}: bad header entry {json.dumps(entry)}") from None
        count = int(np.prod(shape, dtype=np.int64))
        if min(shape, default=0) < 0 or not 0 <= begin <= end or end - begin != count * dtype.itemsize:
            raise ValueError(f"{path}: tensor {name}: offsets [{begin}, {end}) do not fit "
                             f"{entry['dtype']} of shape {shape}")
        if end > len(buffer):
            raise ValueError(f"{path}: tensor {name} ends at byte {end} of the data, which has only "
                             f"{len(buffer)}: the file is truncated")
        tensors[name] = np.frombuffer(buffer[begin:end], dtype=dtype).reshape(shape).copy()
    return tensors, meta


def save(path, tensors, metadata=None):
    """Writes {name: numpy array} atomically (temporary file, then rename)."""
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        a = np.asarray(tensors[name])
        if not a.flags.c_contiguous:  # not np.ascontiguousarray: it turns a 0-d array into 1-d
            a = a.copy(order="C")
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": NAMES[a.dtype.newbyteorder("=")], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=os.path.basename(path) + ".tmp.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for c in chunks:
                f.write(c)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
