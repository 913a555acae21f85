"""What the converters share: the names, shapes and dtypes a target expects,
and a readable list of what does not match.

A target is either a PyTorch module class (--module-file F --module-class C,
constructed without arguments) or a reference file: a minidl checkpoint
(.safetensors) or a PyTorch state_dict / module saved with torch.save.
"""
import importlib.util
import os
import sys

import numpy as np
import torch

import safetensors_np

# minidl keeps optimizer state under this prefix, beside the model's tensors.
OPTIMIZER_PREFIX = "optimizer."

# The dtypes minidl checkpoints hold: float parameters and int64 buffers (num_batches_tracked).
TORCH_TO_NUMPY = {torch.float32: np.float32, torch.float64: np.float64, torch.int64: np.int64}


class ConversionError(Exception):
    """A problem with the user's input, reported as one line (or a list) and exit status 1."""


def first_line(error):
    """The first line of an exception's message, or its type when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def add_target_arguments(parser):
    parser.add_argument("--module-file", help="Python file defining the PyTorch module to match")
    parser.add_argument("--module-class",
                        help="class in --module-file, constructed without arguments")
    parser.add_argument("--reference", help="checkpoint whose names and shapes to match "
                        "(.safetensors of minidl, or a torch.save'd state_dict or module)")


def load_torch_state(path):
    """{name: tensor} of a torch.save'd state_dict or whole module."""
    try:
        obj = torch.load(path, map_location="cpu")
    except FileNotFoundError:
        raise ConversionError(f"{path}: no such file") from None
    except Exception as e:  # torch raises many kinds on damaged files
        raise ConversionError(f"{path}: not a readable PyTorch file, damaged or truncated? "
                              f"({first_line(e)})") from None
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if not isinstance(obj, dict):
        raise ConversionError(f"{path}: holds a {type(obj).__name__}, not a state_dict or a module")
    for name, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise ConversionError(f"{path}: entry {name!r} is a {type(value).__name__}, not a tensor "
                                  "(pass the model's state_dict, not a training dict)")
    return dict(obj)


def load_minidl_checkpoint(path):
    """({name: numpy array} of the model, {name: array} of the optimizer, metadata)."""
    try:
        tensors, meta = safetensors_np.load(path)
    except FileNotFoundError:
        raise ConversionError(f"{path}: no such file") from None
    except ValueError as e:
        raise ConversionError(str(e)) from None
    if meta.get("format") != "minidl":
        raise ConversionError(f"{path}: not a minidl checkpoint "
                              f"(metadata 'format' is {meta.get('format')!r})")
    model = {k: v for k, v in tensors.items() if not k.startswith(OPTIMIZER_PREFIX)}
    optimizer = {k: v for k, v in tensors.items() if k.startswith(OPTIMIZER_PREFIX)}
    return model, optimizer, meta


def module_from_file(module_file, module_class):
    if not os.path.isfile(module_file):
        raise ConversionError(f"{module_file}: no such file")
    spec = importlib.util.spec_from_file_location("user_module", module_file)
    code = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.dirname(os.path.abspath(module_file)))
    try:
        spec.loader.exec_module(code)
    except Exception as e:
        raise ConversionError(f"{module_file}: importing it failed: {first_line(e)}") from None
    cls = getattr(code, module_class, None)
    if cls is None:
        raise ConversionError(f"{module_file}: defines no {module_class}")
    try:
        return cls()
    except Exception as e:
        raise ConversionError(f"{module_file}: {module_class}() failed: {first_line(e)}") from None


def expected_names(args):
    """{name: (shape tuple, dtype name)} the target wants, or None when no target was given."""
    if args.module_class and not args.module_file or args.module_file and not args.module_class:
        raise ConversionError("--module-file and --module-class go together")
    if args.module_file and args.reference:
        raise ConversionError("give either --module-file/--module-class or --reference, not both")
    if args.module_file:
        state = module_from_file(args.module_file, args.module_class).state_dict()
        return {k: (tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in state.items()}
    if args.reference:
        if args.reference.endswith(".safetensors"):
            model, _, _ = load_minidl_checkpoint(args.reference)
            return {k: (tuple(v.shape), str(v.dtype)) for k, v in model.items()}
        state = load_torch_state(args.reference)
        return {k: (tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in state.items()}
    return None


def mismatches(found, expected):
    """Lines naming what is missing, unexpected or of another shape; empty when all match.

    found and expected map names to (shape, dtype). A different float dtype is not a mismatch
    (load_state_dict converts it), but a float where an integer is expected is."""
    lines = []
    for name in sorted(set(expected) - set(found)):
        lines.append(f"  missing:    {name} {list(expected[name][0])} {expected[name][1]}")
    for name in sorted(set(found) - set(expected)):
        lines.append(f"  unexpected: {name} {list(found[name][0])} {found[name][1]}")
    for name in sorted(set(found) & set(expected)):
        (fs, fd), (es, ed) = found[name], expected[name]
        if fs != es:
            lines.append(f"  shape:      {name} is {list(fs)}, expected {list(es)}")
        elif fd.startswith("int") != ed.startswith("int"):
            lines.append(f"  dtype:      {name} is {fd}, expected {ed}")
    return lines


def check_against_target(source, found, args):
    """Raises ConversionError listing every mismatch when a target was given."""
    expected = expected_names(args)
    if expected is None:
        return
    lines = mismatches(found, expected)
    if lines:
        what = args.reference or f"{args.module_class} of {args.module_file}"
        count = "1 tensor does" if len(lines) == 1 else f"{len(lines)} tensors do"
        raise ConversionError(f"{source}: {count} not match {what}:\n" + "\n".join(lines))


def run(main):
    """Runs main(), turning ConversionError into a message on stderr and exit status 1."""
    try:
        main()
    except ConversionError as e:
        sys.exit(f"error: {e}")
