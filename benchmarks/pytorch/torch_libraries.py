"""The BLAS, LAPACK and oneDNN libraries mapped into this process (shared by epoch.py,
layers.py, networks.py and shape_sweep.py): what torch really runs on, whatever was asked for."""
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))


def loaded_libraries():
    """One line, 'libraries blas=PATH[,PATH...] dnnl=... lapack=...' ('none' where nothing
    is mapped), from this process's own memory map; benchmarks/pytorch/blas.sh reads it."""
    found = {"blas": set(), "dnnl": set(), "lapack": set()}
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) < 6:
                continue
            name = os.path.basename(fields[5])
            if "lapack" in name:
                found["lapack"].add(fields[5])
            elif "blas" in name or "blis" in name or "mkl_rt" in name:
                found["blas"].add(fields[5])
            elif "dnnl" in name or "mkldnn" in name:
                found["dnnl"].add(fields[5])
    return "libraries " + " ".join(f"{k}={','.join(sorted(v)) or 'none'}" for k, v in sorted(found.items()))


def blas_refusal(program, libraries):
    """Why a time measured with these libraries ('libraries ...' from loaded_libraries()) would
    not be torch's own, as benchmarks/pytorch/blas.sh judges it (netlib's reference BLAS, or no
    BLAS it can name); None when they are fit to be timed."""
    check = subprocess.run(["bash", os.path.join(HERE, "blas.sh"), program, libraries],
                           capture_output=True, text=True)
    return None if check.returncode == 0 else check.stderr.strip()
