#!/usr/bin/env python3
"""Golden safetensors file written by the reference implementation (Python safetensors).

    python3 tools/make_safetensors_golden.py            # writes tests/data/safetensors/golden.safetensors
    python3 tools/make_safetensors_golden.py --check F  # F must hold exactly the golden tensors

tests/checkpoints/test_safetensors.cpp reads the committed file and checks the values
below bit for bit; --check loads a file crucible wrote (e.g. golden read and written
back) with the reference reader, which validates it, and compares every tensor.
Needs: pip install safetensors numpy (no torch: BF16/FP8 go through TensorSpec).
"""
import argparse
import os
import sys

import numpy as np
from safetensors import TensorSpec, deserialize, serialize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "safetensors", "golden.safetensors")
METADATA = {"format": "pt", "source": "tools/make_safetensors_golden.py"}


def bf16_bits(values):
    # Every value below is exact in BF16, so keeping the top 16 bits is exact.
    return (np.array(values, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)


def golden():
    """name -> (safetensors dtype, TensorSpec dtype, shape, little-endian array)."""
    return {
        "bf16": ("BF16", "bfloat16", [2, 3], bf16_bits([1.0, -2.0, 0.5, 3.140625, -0.0078125, 256.0])),
        "f16": ("F16", "float16", [5], np.array([1.0, -1.0 / 3.0, 65504.0, 2.0**-24, np.inf], dtype="<f2")),
        "f32": ("F32", "float32", [2, 2], np.array([0.1, -1e-30, 3.4028235e38, 1.5], dtype="<f4")),
        "i64": ("I64", "int64", [3], np.array([-1, 2**40 + 3, -(2**63)], dtype="<i8")),
        # 1.0, -2.0, 448 (max normal), 2^-9 (min subnormal)
        "e4m3": ("F8_E4M3", "float8_e4m3fn", [4], np.array([0x38, 0xC0, 0x7E, 0x01], dtype=np.uint8)),
        "scalar": ("F32", "float32", [], np.array(7.0, dtype="<f4")),
        "empty": ("F32", "float32", [0, 3], np.zeros((0, 3), dtype="<f4")),
    }


def write():
    tensors = golden()
    specs = {
        name: TensorSpec(dtype=spec_dtype, shape=shape, data_ptr=arr.ctypes.data, data_len=arr.nbytes)
        for name, (_, spec_dtype, shape, arr) in tensors.items()
    }
    data = bytes(serialize(specs, metadata=METADATA))  # `tensors` keeps the buffers alive
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "wb") as f:
        f.write(data)
    print(f"wrote {OUT} ({len(data)} bytes)")


def check(path):
    with open(path, "rb") as f:
        found = dict(deserialize(f.read()))  # raises on any invalid layout
    want = golden()
    ok = sorted(found) == sorted(want)
    for name, (st_dtype, _, shape, arr) in want.items():
        got = found.get(name)
        same = got is not None and got["dtype"] == st_dtype and list(got["shape"]) == shape \
            and bytes(got["data"]) == arr.tobytes()
        print(f"{name:8s} {st_dtype:8s} {str(shape):8s} {'ok' if same else 'MISMATCH'}")
        ok = ok and same
    print("all tensors match" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", metavar="FILE", help="compare FILE with the golden tensors")
    args = parser.parse_args()
    sys.exit(check(args.check) if args.check else write())
