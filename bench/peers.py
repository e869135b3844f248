#!/usr/bin/python3
"""NumPy and PyTorch peers of nrdiff's empirical-score reverse-SDE step.

Run by bench/run.sh with Debian's /usr/bin/python3 (the pyenv python3 first
on PATH cannot import Debian's packages).  The problem comes from
`bench_step dump P d n DIR` (raw float64 files): the training points
b_mu = e^{-At} a_mu (n x d), Delta_t^{-1}, the drift matrix A, the particles
Y (P x d) and nrdiff's score at Y.  Each peer

  * precomputes, once per time as nrdiff's set_time does (not timed),
    C = b Delta^{-1} and |b_mu|^2_{Delta^{-1}} / 2;
  * checks its score against nrdiff's (max relative difference printed);
  * times the step, the way a competent user would write it: the logits
    Y C^T - b.C/2 as one matrix product, a log-sum-exp with the row maximum
    subtracted, the softmax weights times C, minus Y Delta^{-1}, then the
    Euler-Maruyama update y += h (A y + 2 s) + sqrt(2h) xi with the
    library's own normal generator;
  * times the two bare GEMMs of the same shapes (Y C^T, then G C).

Best settings: in-place operations where they are idiomatic, float64,
2 threads (OPENBLAS_NUM_THREADS, set by the caller before the interpreter
starts, since OpenBLAS reads it when loaded; torch.set_num_threads for
PyTorch's own element-wise kernels), inference mode for PyTorch.  Every
figure is the median of `reps` repetitions after one warm-up.

  peers.py DIR P d n reps [numpy] [torch]

prints one CSV line per peer:
  peer,version,threads,P,d,n,step_ms,gemm_ms,score_maxrel
"""
import os
import statistics
import sys
import time


def load(dirname, name, shape):
    import numpy as np
    return np.fromfile(os.path.join(dirname, name), dtype=np.float64).reshape(shape)


def maxrel(a, b):
    import numpy as np
    return float(np.max(np.abs(a - b)) / (1.0 + np.max(np.abs(b))))


def timed(fn, reps):
    fn()  # warm-up
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return statistics.median(t) * 1e3


def numpy_peer(data, h, reps, threads):
    import numpy as np
    b, Dinv, A, Y0, Sref = data
    C = b @ Dinv                                   # per time, not timed
    hb2 = 0.5 * np.einsum("ij,ij->i", b, C)
    rng = np.random.default_rng(1)
    sq = np.sqrt(2 * h)

    def score(Y):
        L = Y @ C.T
        L -= hb2
        L -= L.max(axis=1, keepdims=True)
        np.exp(L, out=L)
        L /= L.sum(axis=1, keepdims=True)
        return L @ C - Y @ Dinv

    err = maxrel(score(Y0), Sref)
    Y = Y0.copy()

    def step():
        S = score(Y)
        xi = rng.standard_normal(Y.shape)
        Y[...] += h * (Y @ A.T + 2.0 * S) + sq * xi

    def gemms():
        G = Y @ C.T
        return G @ C

    step_ms = timed(step, reps)
    gemm_ms = timed(gemms, reps)
    return "numpy", np.__version__, step_ms, gemm_ms, err


def torch_peer(data, h, reps, threads):
    import torch
    torch.set_num_threads(threads)
    b, Dinv, A, Y0, Sref = [torch.from_numpy(x) for x in data]
    with torch.inference_mode():
        C = b @ Dinv                               # per time, not timed
        hb2 = 0.5 * (b * C).sum(dim=1)
        gen = torch.Generator().manual_seed(1)
        sq = (2 * h) ** 0.5

        def score(Y):
            W = torch.softmax(Y @ C.T - hb2, dim=1)  # subtracts the row max
            return W @ C - Y @ Dinv

        err = maxrel(score(Y0).numpy(), Sref.numpy())
        Y = Y0.clone()

        def step():
            S = score(Y)
            xi = torch.randn(Y.shape, dtype=torch.float64, generator=gen)
            Y.add_(h * (Y @ A.T + 2.0 * S) + sq * xi)

        def gemms():
            G = Y @ C.T
            return G @ C

        step_ms = timed(step, reps)
        gemm_ms = timed(gemms, reps)
    return "torch", torch.__version__, step_ms, gemm_ms, err


def main(argv):
    if len(argv) < 6:
        print(__doc__, file=sys.stderr)
        return 2
    dirname = argv[1]
    P, d, n, reps = (int(x) for x in argv[2:6])
    which = argv[6:] or ["numpy", "torch"]
    threads = int(os.environ.get("OPENBLAS_NUM_THREADS", "2"))
    h = 1e-3
    data = (load(dirname, "b.f64", (n, d)), load(dirname, "Dinv.f64", (d, d)),
            load(dirname, "A.f64", (d, d)), load(dirname, "Y.f64", (P, d)),
            load(dirname, "S.f64", (P, d)))
    status = 0
    for peer in which:
        fn = {"numpy": numpy_peer, "torch": torch_peer}.get(peer)
        if fn is None:
            print(f"peers.py: unknown peer {peer}", file=sys.stderr)
            return 2
        try:
            name, version, step_ms, gemm_ms, err = fn(data, h, reps, threads)
        except ImportError as e:
            print(f"peers.py: {peer} unavailable ({e})", file=sys.stderr)
            status = 1
            continue
        print(f"{name},{version},{threads},{P},{d},{n},{step_ms:.2f},"
              f"{gemm_ms:.2f},{err:.2e}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
