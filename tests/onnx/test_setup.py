"""What the ONNX test scripts share: tools/ on the import path (safetensors_np,
reference_model) and the rule for a test that cannot run here."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))


def skip_or_fail(reason):
    """Exits 77 (CTest: skipped) with the reason, or 1 under CI=true, where every test must run."""
    if os.environ.get("CI", "") not in ("", "0", "false", "False", "FALSE"):
        print(f"error: {reason} (CI=true requires every test to run)")
        sys.exit(1)
    print(f"SKIPPED: {reason}")
    sys.exit(77)
