#!/usr/bin/python3
"""Read nrdiff output files (layout: doc/file-format.md).

Run with Debian's Python (/usr/bin/python3: h5py and numpy).

    nrdiff_read.py summary FILE             per grid point: critical times, key curve
                                            (as the run computed and stored them)
    nrdiff_read.py digest FILE [--group G]  SHA-256 of the science content
    nrdiff_read.py check-layout FILE        verify the documented layout

As a module:

    import nrdiff_read as nr
    run = nr.load("default.h5")
    pt = run.points[0]
    o = pt.obs["speciation_phi"]
    t, phi, err = o.time, o.value, o.error   # error: the run's jackknife error

Errors are not recomputed here: the run writes the jackknife error of every
observable beside its value (`observables/<name>/error`, computed by the C
estimators of src/analysis.c, the ones nrdiff-post uses), and its critical
times as attributes of /points/IIII.
"""
import hashlib
import sys
from dataclasses import dataclass, field

import h5py
import numpy as np

# Parts of a file that depend on the machine, the rank count or the time.
NOT_SCIENCE_GROUPS = ("code",)
NOT_SCIENCE_ATTRS = ("wall_seconds",)


@dataclass
class Observable:
    step: np.ndarray
    time: np.ndarray
    value: np.ndarray
    block_sum: np.ndarray
    description: str = ""
    # the run's jackknife error of value (same shape); None for count (a
    # total, not a mean) and in files written before nrdiff stored errors
    error: np.ndarray = None


@dataclass
class Point:
    index: int
    attrs: dict
    obs: dict = field(default_factory=dict)
    traj_id: np.ndarray = None
    traj_step: np.ndarray = None
    traj_time: np.ndarray = None
    traj_position: np.ndarray = None


@dataclass
class Run:
    path: str
    code: dict
    parameters: dict  # key -> (YAML value text, source)
    points: list


def _text(x):
    return x.decode() if isinstance(x, bytes) else str(x)


def load(path):
    """Everything in a run file, as numpy arrays and dicts."""
    with h5py.File(path, "r") as f:
        code = {k: f["code"].attrs[k] for k in f["code"].attrs}
        p = f["parameters"]
        params = {_text(k): (_text(v), _text(s))
                  for k, v, s in zip(p["key"][:], p["value"][:], p["source"][:])}
        points = []
        for name in sorted(f["points"]):
            g = f["points"][name]
            pt = Point(int(g.attrs["index"]), dict(g.attrs))
            points.append(pt)
            if "observables" not in g:  # a failed point: attributes only
                continue
            for o in g["observables"]:
                h = g["observables"][o]
                pt.obs[o] = Observable(h["step"][:], h["time"][:], h["value"][:],
                                       h["block_sum"][:],
                                       _text(h.attrs.get("description", "")),
                                       h["error"][:] if "error" in h else None)
            if "particles/trajectory" in g:  # output.trajectories > 0
                tr = g["particles/trajectory"]
                pt.traj_id = tr["id"][:]
                pt.traj_step = tr["position/step"][:]
                pt.traj_time = tr["position/time"][:]
                pt.traj_position = tr["position/value"][:]
    return Run(path, code, params, points)


# ------------------------------------------------------------------ digest

def digest(path, group=None):
    """SHA-256 over the names, dtypes, shapes and bytes of every dataset and
    attribute, in sorted order, leaving out /code and wall_seconds."""
    h = hashlib.sha256()

    def add_value(name, v):
        a = np.asarray(v)
        h.update(name.encode())
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        if a.dtype.kind == "O":
            for x in a.ravel():
                h.update(x.encode() if isinstance(x, str) else bytes(x))
        else:
            h.update(np.ascontiguousarray(a).tobytes())

    def walk(obj, prefix):
        for k in sorted(obj.attrs):
            if k not in NOT_SCIENCE_ATTRS:
                add_value(prefix + "@" + k, obj.attrs[k])
        if isinstance(obj, h5py.Dataset):
            add_value(prefix, obj[()])
            return
        for k in sorted(obj):
            if prefix == "" and k in NOT_SCIENCE_GROUPS:
                continue
            walk(obj[k], prefix + "/" + k)

    with h5py.File(path, "r") as f:
        if group:
            walk(f[group], "/" + group.strip("/"))
        else:
            walk(f, "")
    return h.hexdigest()


# ------------------------------------------------------------------ layout

class LayoutCheck:
    def __init__(self):
        self.failures = []

    def require(self, cond, what):
        if not cond:
            self.failures.append(what)
        return cond


def check_layout(path):
    """Failures (list of strings) against doc/file-format.md; empty if fine."""
    c = LayoutCheck()
    with h5py.File(path, "r") as f:
        c.require(_text(f.attrs.get("file_format", "")) == "nrdiff-output",
                  "/ attribute file_format = nrdiff-output")
        c.require(int(f.attrs.get("file_format_version", 0)) == 1,
                  "/ attribute file_format_version = 1")
        for g in ("h5md", "h5md/author", "h5md/creator", "code", "parameters",
                  "grid", "points"):
            c.require(g in f, f"group /{g}")
        if "h5md" in f:
            c.require(list(f["h5md"].attrs.get("version", [])) == [1, 1],
                      "/h5md version = [1, 1]")
        for a in ("package_version", "git_describe", "configure_args",
                  "compiler", "mpi_library", "hdf5_version", "fftw_version",
                  "blas", "libyaml_version", "command_line", "hostname",
                  "date_utc", "mpi_size", "wall_seconds"):
            c.require(a in f["code"].attrs, f"/code attribute {a}")
        p = f["parameters"]
        n = [p[k].shape[0] if k in p else -1 for k in ("key", "value", "source")]
        c.require(min(n) > 0 and n[0] == n[1] == n[2],
                  "/parameters key, value, source of one length")
        c.require("resolved" in p, "/parameters/resolved")
        sources = {_text(s) for s in p["source"][:]} if "source" in p else set()
        c.require(sources <= {"default", "file", "override"},
                  "/parameters/source in default|file|override")
        names = sorted(f["points"])
        P = f["grid/dimension"].shape[0] if "grid/dimension" in f else -1
        for k in ("dimension", "separation", "strength", "n_train"):
            c.require(f"grid/{k}" in f and f[f"grid/{k}"].shape == (P,),
                      f"/grid/{k} of length P = {P}")
        c.require(0 < len(names) <= P, "1 .. P groups under /points")
        for name in names:
            check_point(c, f["points"][name], name, f)
    return c.failures


def vshape_of(n_out, m):
    return (n_out,) if m == 1 else (n_out, m)


def check_point(c, g, name, f):
    where = f"/points/{name}"
    for a in ("index", "dimension", "separation", "strength", "n_train",
              "particles", "block_size", "n_blocks", "classes",
              "relaxation_rate", "entropy_production", "critical_time_kind",
              "critical_time_theory", "critical_time_measured",
              "critical_time_error", "status", "warnings"):
        c.require(a in g.attrs, f"{where} attribute {a}")
    i = int(g.attrs["index"])
    c.require(name == f"{i:04d}", f"{where}: name is the zero-padded index")
    if _text(g.attrs.get("status", "ok")).startswith("failed"):
        # nothing is computed from a non-finite state
        c.require(len(g) == 0, f"{where}: a failed point has attributes only")
        c.require(np.isnan(g.attrs["critical_time_measured"]),
                  f"{where}: a failed point has no measured critical time")
        return
    c.require(_text(g.attrs.get("status", "")) == "ok",
              f"{where} status is 'ok' or 'failed: ...'")
    # the cloning estimate beside the headline exactly where the kind's
    # cloning protocol ran (its branch times are in the file)
    kind = _text(g.attrs.get("critical_time_kind", ""))
    cloned = f"{kind}/branch_time" in g
    for a in ("critical_time_cloning", "critical_time_cloning_error"):
        c.require((a in g.attrs) == cloned,
                  f"{where} attribute {a} iff {kind} cloning ran")
    c.require(int(f["grid/dimension"][i]) == int(g.attrs["dimension"]),
              f"{where}: dimension matches /grid")
    d, K = int(g.attrs["dimension"]), int(g.attrs["classes"])
    B = int(g.attrs["n_blocks"])
    empirical = int(g.attrs["n_train"]) > 0
    widths = {"count": 1, "position": d, "norm2": 1, "projection": K,
              "projection2": K, "score_norm2": 1}
    # the empirical score measures Y2, and phi from the class weights of
    # labelled training points (K >= 2: the speciation_time_* attributes)
    labelled = not empirical or "speciation_time_measured" in g.attrs
    if empirical:
        widths["participation_y2"] = 1
    if labelled and K >= 2:
        widths.update({"speciation_phi": 1, "commitment_histogram": 20})
    obs = g["observables"]
    c.require(set(obs) == set(widths), f"{where}: observables {sorted(widths)}")
    count = obs["count/block_sum"][:] if "count" in obs else None
    n_out = count.shape[0] if count is not None else -1
    for o, m in widths.items():
        if o not in obs:
            continue
        h, w = obs[o], f"{where}/observables/{o}"
        for k in ("step", "time", "value", "block_sum"):
            c.require(k in h, f"{w}/{k}")
        if o != "count":
            if c.require("error" in h, f"{w}/error"):
                c.require(h["error"].shape == vshape_of(n_out, m)
                          and h["error"].dtype == np.float64,
                          f"{w}/error: float64 of the shape of value")
                c.require(bool(_text(h["error"].attrs.get("description", ""))),
                          f"{w}/error: description attribute")
        else:
            c.require("error" not in h, f"{w}: no error (a total, not a mean)")
        c.require(h["step"].shape == (n_out,) and h["time"].shape == (n_out,),
                  f"{w}: step, time of length n_out = {n_out}")
        vshape = (n_out,) if m == 1 else (n_out, m)
        bshape = (n_out, B) if m == 1 else (n_out, B, m)
        c.require(h["value"].shape == vshape, f"{w}/value shape {vshape}")
        c.require(h["block_sum"].shape == bshape, f"{w}/block_sum shape {bshape}")
        c.require(h["step"].dtype == np.int64 and h["time"].dtype == np.float64,
                  f"{w}: step int64, time float64")
        if o != "count" and h["block_sum"].shape == bshape:
            cnt = count.sum(axis=1) if m == 1 else count.sum(axis=1)[:, None]
            v = h["block_sum"][:].sum(axis=1) / cnt
            ok = np.allclose(v, h["value"][:], rtol=1e-12, atol=0,
                             equal_nan=True)
            c.require(ok, f"{w}: value = sum of block sums / count")
    c.require(bool(np.all(count.sum(axis=1) == int(g.attrs["particles"]))),
              f"{where}: block counts add up to the particles")
    tr = g["particles/trajectory"]
    n_traj = tr["id"].shape[0]
    n_frames = tr["position/step"].shape[0]
    c.require(tr["position/value"].shape == (n_frames, n_traj, d),
              f"{where}: trajectory value shape (n_frames, n_traj, d)")


# --------------------------------------------------------------------- CLI

def _estimate(value, error):
    """A critical time as the run's report prints it."""
    if not np.isfinite(value):
        return "not reached"
    if not np.isfinite(error):
        return f"{value:.4f} (no error)"
    return f"{value:.4f} +- {error:.4f}"


def summary(path):
    run = load(path)
    print(f"{path}: {len(run.points)} grid point(s), nrdiff "
          f"{run.code.get('package_version', '?')} "
          f"({run.code.get('git_describe', '?')}), "
          f"{run.code.get('mpi_size', '?')} rank(s)")
    for pt in run.points:
        a = pt.attrs
        kind = _text(a["critical_time_kind"])
        print(f"\npoint {pt.index}: d = {a['dimension']}, separation = "
              f"{a['separation']:g}, strength = {a['strength']:g}, "
              f"n_train = {a['n_train']}")
        status = _text(a.get("status", "ok"))
        if status != "ok":
            print(f"  FAILED: {status[len('failed: '):]}")
            continue
        theory = a["critical_time_theory"]
        theory = f"{theory:.4f}" if np.isfinite(theory) else "not available"
        print(f"  {kind} critical time: measured "
              f"{_estimate(a['critical_time_measured'], a['critical_time_error'])}"
              f", theory {theory}")
        if "critical_time_cloning" in a:
            print(f"  {kind} critical time by cloning (branch times only): "
                  f"{_estimate(a['critical_time_cloning'], a['critical_time_cloning_error'])}")
        key = "participation_y2" if a["n_train"] > 0 else "speciation_phi"
        o = pt.obs[key]
        err = o.error if o.error is not None else np.full_like(o.value, np.nan)
        print(f"  {'t':>8} {key:>18} {'+-':>10}")
        for i in np.unique(np.linspace(0, len(o.time) - 1, 10).astype(int)):
            print(f"  {o.time[i]:8.4f} {o.value[i]:18.5f} {err[i]:10.5f}")
        if o.error is None:
            print("  (no error datasets in this file: written before nrdiff "
                  "stored observables/<name>/error)")


def main(argv):
    usage = ("usage: nrdiff_read.py summary FILE | digest FILE [--group G] | "
             "check-layout FILE")
    if len(argv) < 3 or argv[1] not in ("summary", "digest", "check-layout"):
        print(usage, file=sys.stderr)
        return 2
    cmd, path = argv[1], argv[2]
    try:
        h5py.File(path, "r").close()
    except OSError as e:
        print(f"nrdiff_read.py: cannot open '{path}': {e}", file=sys.stderr)
        return 2
    if cmd == "summary":
        summary(path)
    elif cmd == "digest":
        group = argv[argv.index("--group") + 1] if "--group" in argv else None
        print(digest(path, group))
    else:
        failures = check_layout(path)
        for x in failures:
            print("layout: missing or wrong:", x)
        if failures:
            return 1
        print("layout ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
