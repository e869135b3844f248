#!/usr/bin/python3
"""Damage a copy of an HDF5 file for the hostile cases (tests/hostile/*.cases).

    /usr/bin/python3 h5edit.py IN OUT 'python statements'

copies IN to OUT and runs the statements with OUT open for writing as `f`
(h5py), `np` (numpy), `p` = f["points/0000"] when it exists, and
    put(path, data, **kw)   replace the dataset at path by data (or create it)
    empty(path, shape, **kw) replace it by a float64 dataset of that shape whose
                            data are never written (chunked: any size)
"""
import shutil
import sys

import h5py
import numpy as np


def main():
    src, dst, code = sys.argv[1:4]
    if src != dst:
        shutil.copyfile(src, dst)
    with h5py.File(dst, "a") as f:
        def put(path, data, **kw):
            if path in f:
                del f[path]
            f.create_dataset(path, data=data, **kw)

        def empty(path, shape, **kw):
            if path in f:
                del f[path]
            kw.setdefault("dtype", "f8")
            f.create_dataset(path, shape=shape, **kw)

        env = {"f": f, "np": np, "h5py": h5py, "put": put, "empty": empty,
               "p": f["points/0000"] if "points/0000" in f else None}
        exec(code, env)


if __name__ == "__main__":
    main()
