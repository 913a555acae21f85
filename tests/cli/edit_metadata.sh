# Sourced by the CLI tests that rewrite a checkpoint's metadata (needs /usr/bin/python3).
# edit_metadata FILE KEY=VALUE | -KEY ...: sets or removes keys of a checkpoint's metadata (in
# the safetensors header). Its checksums ("crc32:<tensor>") cover the tensors' bytes, which
# stay as they are, so none needs recomputing.
edit_metadata() {
  /usr/bin/python3 - "$@" <<'EOF'
import json, struct, sys
path, edits = sys.argv[1], sys.argv[2:]
blob = open(path, "rb").read()
size = struct.unpack("<Q", blob[:8])[0]
header = json.loads(blob[8:8 + size])
meta = header["__metadata__"]
for edit in edits:
    if edit.startswith("-"):
        del meta[edit[1:]]
    else:
        key, value = edit.split("=", 1)
        meta[key] = value
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)  # the tensors' data stays 8-byte aligned
open(path, "wb").write(struct.pack("<Q", len(text)) + text + blob[8 + size:])
EOF
}
