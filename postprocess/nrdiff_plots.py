#!/usr/bin/python3
"""Figures of the nrdiff post-processing stage, from the CSV files of nrdiff-post.

Run with Debian's Python (/usr/bin/python3: numpy and matplotlib, no display):

    nrdiff_plots.py RUN.summary.csv RUN.curves.csv [--out PREFIX]
    nrdiff_plots.py --self-test [--out PREFIX]

PREFIX defaults to the summary file name without `.summary.csv`
(`runs/default.summary.csv` -> `runs/default`). The figures are
`PREFIX.<name>.png`; one line is printed per figure written
(`wrote default.phi.png`) or skipped, with the reason
(`skipped default.fe.png: no fe_over_alpha curves`).

    phi     speciation phi(t) against t / t_S: clone-free estimator (lines),
            cloning (markers with error bars), F(kappa_t) (dotted), F(1)
    fe      excess entropy f^e(t)/alpha (error band) for n_train > 0,
            with t_C from theory
    phase   t_S and t_C against the strength g, one series per
            (dimension, separation, n_train): the headline measurements
            (filled markers: clone-free phi, Y2), the cloning estimates
            beside them where present (open markers), theory (lines)
    uturn   C_UT(T_u): ratio normalisation with its theory, the Gaussian
            closed form, the per-sample normalisation; below, the
            "Gaussian test" gap (ratio minus Gaussian form)
    acf     time autocorrelations (acf, corr_stationary, corr_data: one panel
            each) with their theory

Inputs (comma separated, header line first, columns read by name; an empty
field means "not available", numbers as printed by C `%.10g`, `nan` allowed):

  RUN.summary.csv  one row per grid point:
      grid_index, dimension, separation, strength, n_train,
      t_S, t_S_err, t_S_theory, t_C, t_C_err, t_C_theory (t_S, t_C: the
      headlines, clone-free), optionally t_S_clone, t_S_clone_err,
      t_C_clone, t_C_clone_err (cloning), ... (more columns are allowed and
      ignored). A grid_index on several rows (nrdiff-post
      given several run files) still enters the phase diagram, but its
      curves cannot be attributed and are left out, with a note on stderr.
  RUN.curves.csv   long format: grid_index, curve, t, value, err, theory
      (err and theory optional); curve names: phi_clone, phi_free,
      phiC_clone, Y2, fe_over_alpha, c_uturn, c_uturn_ratio, c_uturn_gaussian,
      acf, corr_stationary, corr_data. Other names are ignored. Curves are
      drawn in increasing t, except that a corr_* curve whose t turns back
      (or repeats) in file order starts a new piece, for a new reference
      time s (the format has no s column).

Exit status: 0 when it ran (some figures may be skipped), 2 on bad input
(missing file, missing column, unparsable number) with a one-line message.
"""
import argparse
import csv
import math
import os
import sys
import tempfile

import numpy as np
import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

F1 = 0.7752002  # F(kappa = 1): phi at the speciation time (doc/theory.md (5.3), (5.5))
DPI = 120

SUMMARY_REQUIRED = ("grid_index", "dimension", "separation", "strength",
                    "n_train", "t_S", "t_S_err", "t_S_theory",
                    "t_C", "t_C_err", "t_C_theory")
# Numeric columns of the documented summary layout; any other column
# (`file`, or columns added later) is kept as text and never parsed.
SUMMARY_NUMERIC = SUMMARY_REQUIRED + (
    "t_S_clone", "t_S_clone_err", "t_S_matrix", "t_C_clone", "t_C_clone_err",
    "t_freeze", "t_freeze_err", "t_freeze_spread", "t_C_fe", "t_C_fe_err",
    "alpha")
# The cloning estimates, drawn beside the headlines when the columns exist.
SUMMARY_CLONE = ("t_S_clone", "t_C_clone")
CURVES_REQUIRED = ("grid_index", "curve", "t", "value")
CURVES_NUMERIC = ("t", "value", "err", "theory")

# Line styles that distinguish grid points sharing a colour; ":" is kept
# for theory curves.
POINT_STYLES = ["-", "--", "-.", (0, (6, 2, 1, 2, 1, 2)), (0, (8, 3)),
                (0, (3, 1, 1, 1))]


class InputError(Exception):
    """Bad input or unwritable output: reported in one line, exit status 2."""


# ---------------------------------------------------------------- reading

def _number(text, where):
    """A float from a `%.10g` field; empty means not available (nan)."""
    text = text.strip()
    if not text:
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{where}: cannot parse number {text!r}") from None


def read_csv(path, required, numeric):
    """Rows of a CSV file as dicts: `numeric` columns as floats (nan where
    empty), `grid_index` as int, everything else as stripped text."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise InputError(f"{path}: empty file (no header line)")
            header = [h.strip() for h in header]
            missing = [c for c in required if c not in header]
            if missing:
                raise InputError(f"{path}: missing column(s) {', '.join(missing)} "
                                 f"(header: {','.join(header)})")
            rows = []
            for fields in reader:
                line = reader.line_num
                if not any(x.strip() for x in fields):
                    continue  # tolerate blank lines, e.g. at the end
                if len(fields) != len(header):
                    raise InputError(f"{path}:{line}: {len(fields)} fields, "
                                     f"the header has {len(header)}")
                row = {}
                for name, text in zip(header, fields):
                    where = f"{path}:{line}: column {name}"
                    if name == "grid_index":
                        row[name] = _grid_index(text, where)
                    elif name in numeric:
                        row[name] = _number(text, where)
                    else:
                        row[name] = text.strip()
                rows.append(row)
            return rows
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text (UTF-8) file") from None
    except csv.Error as e:
        raise InputError(f"{path}: malformed CSV: {e}") from None


def _grid_index(text, where):
    x = _number(text, where)
    if not (math.isfinite(x) and x == int(x) and x >= 0):
        raise InputError(f"{where}: grid_index must be a non-negative integer, "
                         f"got {text.strip()!r}")
    return int(x)


def load_summary(path):
    """The rows, in file order."""
    return read_csv(path, SUMMARY_REQUIRED, SUMMARY_NUMERIC)


class Curve:
    """One curve of one grid point, as numpy arrays (nan = not available)."""

    def __init__(self, t, value, err, theory):
        self.t, self.value, self.err, self.theory = t, value, err, theory

    @classmethod
    def from_rows(cls, rows):
        return cls(*(np.array([r.get(k, math.nan) for r in rows], dtype=float)
                     for k in ("t", "value", "err", "theory")))

    def take(self, idx):
        return Curve(self.t[idx], self.value[idx], self.err[idx], self.theory[idx])

    def sorted(self):
        """The curve in increasing t (file order need not be: nrdiff writes
        times from T down, U-turn times are as the user gave them)."""
        return self.take(np.argsort(self.t, kind="stable"))

    def segments(self):
        """Monotone runs of t, each in increasing t: a corr_* curve may hold
        one run per reference time s, written one after the other."""
        c = self.take(np.isfinite(self.t))  # a point without a time has no place
        starts, direction = [0], 0
        for i, step in enumerate(np.diff(c.t), start=1):
            sign = np.sign(step)
            if sign == 0 or (direction and sign != direction):
                starts.append(i)  # t repeats or turns back: a new run
                direction = 0
            else:
                direction = sign
        return [c.take(idx).sorted()
                for idx in np.split(np.arange(len(c.t)), starts[1:])]

    def has_theory(self):
        return bool(np.isfinite(self.theory).any())


def load_curves(path):
    """(file or None, grid_index, curve name) -> Curve, rows in file order."""
    grouped = {}
    for row in read_csv(path, CURVES_REQUIRED, CURVES_NUMERIC):
        key = (row.get("file") or None, row["grid_index"], row["curve"])
        grouped.setdefault(key, []).append(row)
    return {key: Curve.from_rows(rows) for key, rows in grouped.items()}


class Run:
    """The inputs of the figures.

    rows    every summary row (the phase diagram uses them all)
    point   key -> summary row
    curves  (key, curve name) -> Curve

    The key is the grid_index when it is unique; nrdiff-post given several
    run files writes each file's own grid indices, so when an index repeats
    the key becomes the summary row number, and curves are matched to rows
    by their `file` column.  Without that column the curves of a repeated
    index cannot be attributed and are left out."""

    def __init__(self, summary_path, curves_path, warn):
        self.rows = load_summary(summary_path)
        curves = load_curves(curves_path)
        seen = {}
        for r in self.rows:
            seen.setdefault(r["grid_index"], []).append(r)
        shared = sorted(gi for gi, rs in seen.items() if len(rs) > 1)
        with_file = all(k[0] is not None for k in curves)
        if not shared:
            self.point = {gi: rs[0] for gi, rs in seen.items()}
            self.curves = {(k[1], k[2]): c for k, c in curves.items()}
        elif with_file and all(r.get("file") for r in self.rows):
            by_file = {(r["file"], r["grid_index"]): i for i, r in enumerate(self.rows)}
            self.point = dict(enumerate(self.rows))
            self.curves = {(by_file[k[0], k[1]], k[2]): c
                           for k, c in curves.items() if (k[0], k[1]) in by_file}
        else:
            self.point = {gi: rs[0] for gi, rs in seen.items() if len(rs) == 1}
            files = sorted({r.get("file", "?") for gi in shared for r in seen[gi]})
            warn(f"grid_index {', '.join(map(str, shared))} on several summary "
                 f"rows (files: {', '.join(files)}); their curves cannot be "
                 f"told apart and are left out")
            self.curves = {(k[1], k[2]): c for k, c in curves.items()
                           if k[1] not in shared}


# ---------------------------------------------------------------- helpers

def fmt(x):
    """A parameter value for a label: 256, 0.5, 1e+04."""
    return "?" if not math.isfinite(x) else f"{x:g}"


PARAMS = (("dimension", "d"), ("strength", "g"), ("separation", "sep"),
          ("n_train", "n"))


def varying(rows):
    """Parameters that differ among the rows (labels show only those)."""
    return {name for name, _ in PARAMS
            if len({fmt(r[name]) for r in rows}) > 1}


def point_label(gi, row, vary, always=("dimension",)):
    if row is None:
        return f"grid {gi}"
    parts = [f"{sym} = {fmt(row[name])}" for name, sym in PARAMS
             if name in always or name in vary]
    return ", ".join(parts) if parts else f"grid {gi}"


def colours(n):
    """n distinguishable colours: tab10 while it lasts, then viridis."""
    if n <= 10:
        return [plt.get_cmap("tab10")(i) for i in range(n)]
    return [plt.get_cmap("viridis")(x) for x in np.linspace(0, 0.95, n)]


def darker(colour):
    """The theory shade of a colour: drawn over a measurement that agrees
    with it, the same colour would vanish."""
    return tuple(0.55 * x for x in to_rgb(colour))


def finite(x):
    return x is not None and math.isfinite(x)


def errorbar(ax, t, value, err, **kw):
    """Points with error bars; missing errors give a bare point (matplotlib
    draws nothing at all for a point whose error is nan)."""
    ok = np.isfinite(t) & np.isfinite(value)
    if not ok.any():
        return
    e = np.where(np.isfinite(err), np.abs(err), 0.0)[ok]
    ax.errorbar(t[ok], value[ok], yerr=e if e.any() else None,
                capsize=2.5, elinewidth=1, **kw)


def line(ax, t, value, **kw):
    """A curve through its available points: a missing value (nan) would
    otherwise cut the line and hide isolated points."""
    ok = np.isfinite(t) & np.isfinite(value)
    if ok.any():
        ax.plot(t[ok], value[ok], **kw)
    return bool(ok.any())


def band(ax, t, value, err, colour):
    ok = np.isfinite(t) & np.isfinite(value) & np.isfinite(err)
    if ok.any():
        ax.fill_between(t, np.where(ok, value - np.abs(err), np.nan),
                        np.where(ok, value + np.abs(err), np.nan),
                        where=ok, color=colour, alpha=0.25, linewidth=0)


def save(fig, path):
    try:
        fig.savefig(path, dpi=DPI)
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        plt.close(fig)


def add_legend(fig, ax, handles, title=None, beside=False):
    """Inside the axes when short; beside them, in columns of at most 20
    entries, when long (inside, it would hide the data) or when asked."""
    kw = dict(handles=handles, fontsize="small", title=title,
              title_fontsize="small")
    if not beside and len(handles) <= 12:
        ax.legend(loc="best", **kw)
        return
    ncol = math.ceil(len(handles) / 20)
    nrow = math.ceil(len(handles) / ncol)
    w, h = fig.get_size_inches()
    if len(handles) > 12:  # make room, or the axes shrink to nothing
        fig.set_size_inches(w + 3.0 * ncol, max(h, 0.21 * nrow + 1.2))
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), ncol=ncol, **kw)


def new_figure(**kw):
    return plt.figure(layout="constrained", **kw)


def points_with(curves, names):
    """Sorted grid indices that have at least one of the curves."""
    return sorted({gi for (gi, name) in curves if name in names})


# ---------------------------------------------------------------- figures
# Each returns None when the figure was written, else the reason it was not.

def plot_phi(run, path):
    """phi(t) against t / t_S, one colour per dimension."""
    summary, curves = run.point, run.curves
    names = ("phi_free", "phi_clone")
    candidates = points_with(curves, names)
    if not candidates:
        return "no phi_free or phi_clone curves"
    points = []  # (gi, row, t_S, t_S is from theory)
    for gi in candidates:
        row = summary.get(gi)
        if row is None:
            continue
        # The measured t_S when there is one, else the theory value.
        for key, from_theory in (("t_S", False), ("t_S_theory", True)):
            if finite(row[key]) and row[key] > 0:
                points.append((gi, row, row[key], from_theory))
                break
    if not points:
        return "no grid point with phi curves has a t_S (measured or theory)"

    # Dimensions as printed: a missing one (nan) would never equal itself.
    dims = sorted({fmt(p[1]["dimension"]) for p in points},
                  key=lambda d: float(d) if d != "?" else math.inf)
    colour_of = dict(zip(dims, colours(len(dims))))
    rows = [p[1] for p in points]
    vary = varying(rows) - {"dimension"}
    # Several points per dimension: line style tells them apart, by strength
    # (then by whatever else differs).
    shared = any(sum(fmt(r["dimension"]) == d for r in rows) > 1 for d in dims)
    style_of = {}
    for d in dims:
        group = sorted((p for p in points if fmt(p[1]["dimension"]) == d),
                       key=lambda p: (p[1]["strength"], p[1]["separation"],
                                      p[1]["n_train"], p[0]))
        for k, p in enumerate(group):
            style_of[p[0]] = POINT_STYLES[k % len(POINT_STYLES)]

    fig = new_figure(figsize=(7.5, 5))
    ax = fig.add_subplot()
    handles = []
    any_theory = any_clone = any_free = False
    for gi, row, t_S, from_theory in points:
        c, ls = colour_of[fmt(row["dimension"])], style_of[gi]
        free, clone = (curves[(gi, n)].sorted() if (gi, n) in curves else None
                       for n in names)
        theory_t, theory_v = [], []
        if free is not None:
            any_free |= line(ax, free.t / t_S, free.value, color=c,
                             linestyle=ls, linewidth=1.6)
        if clone is not None:
            errorbar(ax, clone.t / t_S, clone.value, clone.err, color=c,
                     marker="o", markersize=5, linestyle="none")
            any_clone = True
        for cv in (free, clone):
            if cv is not None and cv.has_theory():
                theory_t.append(cv.t)
                theory_v.append(cv.theory)
        if theory_t:
            tt, tv = np.concatenate(theory_t), np.concatenate(theory_v)
            order = np.argsort(tt, kind="stable")
            any_theory |= line(ax, tt[order] / t_S, tv[order], color=darker(c),
                               linestyle=":", linewidth=1.6, zorder=3)
        label = point_label(gi, row, vary)
        if from_theory:
            label += " (t_S from theory)"
        handles.append(Line2D([], [], color=c, linestyle=ls, label=label))

    ax.axhline(F1, color="0.3", linestyle="--", linewidth=1)
    ax.axvline(1.0, color="0.6", linestyle="-", linewidth=0.6)
    handles.append(Line2D([], [], color="0.3", linestyle="--",
                          label=f"F(1) = {F1:.4f}"))
    if any_free:
        handles.append(Line2D([], [], color="k", label="clone-free estimator"))
    if any_clone:
        handles.append(Line2D([], [], color="k", marker="o", linestyle="none",
                              label="cloning ± error"))
    if any_theory:
        handles.append(Line2D([], [], color="k", linestyle=":",
                              label=r"theory $F(\kappa_t)$"))
    title = "colour: dimension"
    if shared:
        title += "; line style: strength g"
    add_legend(fig, ax, handles, title)
    ax.set_xlabel(r"$t\,/\,t_S$")
    ax.set_ylabel(r"$\varphi(t)$  (clones end in the same class)")
    ax.set_title("Speciation: same-class probability of clones split at t")
    ax.grid(alpha=0.3)
    save(fig, path)
    return None


def plot_fe(run, path):
    """f^e(t)/alpha for the points with training data."""
    summary, curves = run.point, run.curves
    candidates = points_with(curves, ("fe_over_alpha",))
    if not candidates:
        return "no fe_over_alpha curves"
    # A point missing from the summary is kept: the curve exists only when
    # there is training data.
    points = [gi for gi in candidates
              if summary.get(gi) is None or not summary[gi]["n_train"] <= 0]
    if not points:
        return "fe_over_alpha curves only at grid points with n_train = 0"
    rows = [summary[gi] for gi in points if gi in summary]
    vary = varying(rows)
    fig = new_figure(figsize=(7.5, 5))
    ax = fig.add_subplot()
    handles = []
    any_band = any_tc = False
    for gi, c in zip(points, colours(len(points))):
        cv, row = curves[(gi, "fe_over_alpha")].sorted(), summary.get(gi)
        line(ax, cv.t, cv.value, color=c, linewidth=1.6)
        band(ax, cv.t, cv.value, cv.err, c)
        any_band |= bool(np.isfinite(cv.err).any())
        if row is not None and finite(row["t_C_theory"]):
            ax.axvline(row["t_C_theory"], color=c, linestyle=":", linewidth=1.4)
            any_tc = True
        handles.append(Line2D([], [], color=c, label=point_label(gi, row, vary)))
    ax.axhline(0.0, color="k", linewidth=0.8)
    if any_band:
        handles.append(Patch(color="0.5", alpha=0.35, label="± error"))
    if any_tc:
        handles.append(Line2D([], [], color="k", linestyle=":",
                              label=r"$t_C$ theory (REM)"))
    add_legend(fig, ax, handles)
    ax.set_xlabel("t")
    ax.set_ylabel(r"$f^e(t)\,/\,\alpha$")
    ax.set_title(r"Collapse: excess entropy $f^e/\alpha$ ($\approx 0$ below $t_C$)")
    ax.grid(alpha=0.3)
    save(fig, path)
    return None


def plot_phase(run, path):
    """t_S and t_C against g, one series per (dimension, separation, n_train):
    the headlines (t_S, t_C), the cloning estimates (t_S_clone, t_C_clone)
    where the summary has them, and the theory."""
    clone = tuple(k for k in SUMMARY_CLONE
                  if run.rows and all(k in r and k + "_err" in r for r in run.rows))
    keys = ("t_S", "t_C", "t_S_theory", "t_C_theory") + clone
    rows = [r for r in run.rows if finite(r["strength"])
            and any(finite(r[k]) for k in keys)]
    if not rows:
        return "no t_S or t_C (measured or theory) at a finite strength"
    # Grouped by the printed values: nan (not given) would never equal itself.
    series = {}
    for r in rows:
        series.setdefault(tuple(fmt(r[k]) for k in
                                ("dimension", "separation", "n_train")),
                          []).append(r)
    groups = sorted(series.values(), key=lambda m: (
        m[0]["dimension"], m[0]["separation"], m[0]["n_train"]))
    vary = varying(rows) - {"strength"}
    fig = new_figure(figsize=(7.5, 5))
    ax = fig.add_subplot()
    handles, values, used = [], [], set()
    for members, c in zip(groups, colours(len(groups))):
        members.sort(key=lambda r: r["strength"])
        g = np.array([r["strength"] for r in members])
        col = {k: np.array([r[k] for r in members])
               for k in keys + tuple(m + "_err" for m in ("t_S", "t_C") + clone)}
        for k in keys:
            values.extend(col[k][np.isfinite(col[k])])
            if np.isfinite(col[k]).any():
                used.add(k)
        for meas, marker in (("t_S", "o"), ("t_C", "s")):
            errorbar(ax, g, col[meas], col[meas + "_err"], color=c,
                     marker=marker, markersize=6, linestyle="none")
        for meas, marker in (("t_S_clone", "^"), ("t_C_clone", "D")):
            if meas in clone:  # open markers, beside the headline
                errorbar(ax, g, col[meas], col[meas + "_err"], color=c,
                         marker=marker, markersize=6, markerfacecolor="none",
                         linestyle="none")
        for theo, ls in (("t_S_theory", "-"), ("t_C_theory", "--")):
            ok = np.isfinite(col[theo])
            # A single strength makes no line: mark the theory value instead.
            ax.plot(g[ok], col[theo][ok], color=c, linestyle=ls, linewidth=1.4,
                    marker="_" if ok.sum() == 1 else None, markersize=16)
        handles.append(Line2D([], [], color=c, linewidth=6,
                              label=point_label(None, members[0], vary)))
    style = {
        "t_S": Line2D([], [], color="k", marker="o", linestyle="none",
                      label=r"$t_S$ measured (clone-free $\varphi$)"),
        "t_C": Line2D([], [], color="k", marker="s", linestyle="none",
                      label=r"$t_C$ measured ($Y_2$)"),
        "t_S_clone": Line2D([], [], color="k", marker="^", markerfacecolor="none",
                            linestyle="none",
                            label=r"$t_S$ by cloning (branch times)"),
        "t_C_clone": Line2D([], [], color="k", marker="D", markerfacecolor="none",
                            linestyle="none",
                            label=r"$t_C$ by cloning ($\varphi_C$)"),
        "t_S_theory": Line2D([], [], color="k", linestyle="-",
                             label=r"$t_S$ theory ($\kappa_t = 1$)"),
        "t_C_theory": Line2D([], [], color="k", linestyle="--",
                             label=r"$t_C$ theory (REM)"),
    }
    handles += [style[k] for k in keys if k in used]
    # t_C is typically far below t_S: a log axis keeps both readable.
    values = np.array(values)
    if values.size and (values > 0).all() and values.max() > 30 * values.min():
        ax.set_yscale("log")
    if len({r["strength"] for r in rows}) == 1:
        g0 = rows[0]["strength"]
        ax.set_xlim(g0 - 0.5, g0 + 0.5)  # keep a lone strength centred
    add_legend(fig, ax, handles)
    ax.set_xlabel("strength g of the non-reversible perturbation")
    ax.set_ylabel("critical time")
    ax.set_title(r"Phase diagram: speciation $t_S$ and collapse $t_C$")
    ax.grid(alpha=0.3)
    save(fig, path)
    return None


def plot_uturn(run, path):
    """C_UT(T_u) in both normalisations beside the closed forms."""
    summary, curves = run.point, run.curves
    names = ("c_uturn_ratio", "c_uturn", "c_uturn_gaussian")
    points = points_with(curves, names)
    if not points:
        return "no c_uturn, c_uturn_ratio or c_uturn_gaussian curves"
    get = {gi: {n: curves[(gi, n)].sorted() for n in names if (gi, n) in curves}
           for gi in points}
    # The Gaussian test: ratio minus the Gaussian form at the same T_u.
    gaps = {}
    for gi, cv in get.items():
        if "c_uturn_ratio" in cv and "c_uturn_gaussian" in cv:
            r, gs = cv["c_uturn_ratio"], cv["c_uturn_gaussian"]
            common, ir, ig = np.intersect1d(r.t, gs.t, return_indices=True)
            if common.size:
                gaps[gi] = (common, r.value[ir] - gs.value[ig], r.err[ir])
    fig = new_figure(figsize=(7.5, 6.5 if gaps else 5))
    if gaps:
        ax, ax_gap = fig.subplots(2, 1, sharex=True,
                                  gridspec_kw={"height_ratios": (3, 1.2)})
    else:
        ax, ax_gap = fig.add_subplot(), None
    rows = [summary[gi] for gi in points if gi in summary]
    vary = varying(rows)
    handles, used = [], set()
    for gi, c in zip(points, colours(len(points))):
        cv = get[gi]
        if "c_uturn_ratio" in cv:
            r = cv["c_uturn_ratio"]
            errorbar(ax, r.t, r.value, r.err, color=c, marker="o", markersize=5,
                     linestyle="none")
            used.add("ratio")
            if line(ax, r.t, r.theory, color=darker(c), linewidth=1.2, zorder=3):
                used.add("theory")
        if "c_uturn_gaussian" in cv:
            gs = cv["c_uturn_gaussian"]
            if line(ax, gs.t, gs.value, color=c, linestyle="--", linewidth=1.4):
                used.add("gaussian")
        if "c_uturn" in cv:
            ps = cv["c_uturn"]
            errorbar(ax, ps.t, ps.value, ps.err, color=c, marker="D", markersize=6,
                     markerfacecolor="none", linestyle="none", alpha=0.8)
            used.add("sample")
        if gi in gaps:
            t, gap, err = gaps[gi]
            errorbar(ax_gap, t, gap, err, color=c, marker="o", markersize=4,
                     linestyle="-", linewidth=0.8)
        handles.append(Line2D([], [], color=c, linewidth=6,
                              label=point_label(gi, summary.get(gi), vary)))
    style = {
        "ratio": Line2D([], [], color="k", marker="o", linestyle="none",
                        label=r"ratio $E[x_0\cdot y_0]/E|x_0|^2$ ± error"),
        "theory": Line2D([], [], color="k", label="theory for the ratio"),
        "gaussian": Line2D([], [], color="k", linestyle="--",
                           label="Gaussian test (closed form)"),
        "sample": Line2D([], [], color="k", marker="D", markerfacecolor="none",
                         linestyle="none",
                         label=r"per sample $\langle x_0\cdot y_0/|x_0|^2\rangle$"),
    }
    handles += [style[k] for k in ("ratio", "theory", "gaussian", "sample")
                if k in used]
    ax.axhline(0.0, color="k", linewidth=0.6)
    add_legend(fig, ax, handles)
    ax.set_ylabel(r"$C_{UT}(T_u)$")
    ax.set_title("U-turn correlation")
    ax.grid(alpha=0.3)
    if ax_gap is not None:
        ax_gap.axhline(0.0, color="k", linewidth=0.6)
        ax_gap.set_ylabel("ratio − Gaussian")
        ax_gap.grid(alpha=0.3)
        ax_gap.set_xlabel(r"noising time $T_u$")
    else:
        ax.set_xlabel(r"noising time $T_u$")
    save(fig, path)
    return None


ACF_PANELS = (
    ("acf", r"lag $\tau$", r"sampled trajectories: $C(\tau)$"),
    ("corr_stationary", r"lag $t - s$", "forward paths, stationary law"),
    ("corr_data", "time t", "forward paths from the data: C(s, t)"),
)


def plot_acf(run, path):
    """Autocorrelations, one panel per kind present."""
    summary, curves = run.point, run.curves
    panels = [p for p in ACF_PANELS if points_with(curves, (p[0],))]
    if not panels:
        return "no acf, corr_stationary or corr_data curves"
    points = points_with(curves, [p[0] for p in panels])
    colour_of = dict(zip(points, colours(len(points))))
    rows = [summary[gi] for gi in points if gi in summary]
    vary = varying(rows)
    fig = new_figure(figsize=(4.6 * len(panels) + 0.6, 4.4))
    axes = np.atleast_1d(fig.subplots(1, len(panels), sharey=True))
    any_theory = any_band = False
    for ax, (name, xlabel, title) in zip(axes, panels):
        for gi in points_with(curves, (name,)):
            c = colour_of[gi]
            # corr_* curves hold one piece per reference time s.
            pieces = (curves[(gi, name)].segments() if name.startswith("corr")
                      else [curves[(gi, name)].sorted()])
            for cv in pieces:
                line(ax, cv.t, cv.value, color=c, linewidth=1.5)
                band(ax, cv.t, cv.value, cv.err, c)
                any_band |= bool(np.isfinite(cv.err).any())
                any_theory |= line(ax, cv.t, cv.theory, color=darker(c),
                                   linestyle="--", linewidth=1.2, zorder=3)
        ax.axhline(0.0, color="k", linewidth=0.6)
        ax.set_xlabel(xlabel)
        ax.set_title(title, fontsize="medium")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("normalised correlation")
    handles = [Line2D([], [], color=colour_of[gi], linewidth=2,
                      label=point_label(gi, summary.get(gi), vary))
               for gi in points]
    if any_band:
        handles.append(Patch(color="0.5", alpha=0.35, label="± error"))
    if any_theory:
        handles.append(Line2D([], [], color="k", linestyle="--", label="theory"))
    # Beside the panels: inside, it would hide the curves of one of them.
    add_legend(fig, axes[-1], handles, beside=True)
    fig.suptitle("Time autocorrelation (measured: solid; theory: dashed)")
    save(fig, path)
    return None


FIGURES = (("phi", plot_phi), ("fe", plot_fe), ("phase", plot_phase),
           ("uturn", plot_uturn), ("acf", plot_acf))


def make_figures(summary_path, curves_path, prefix, log=print, warn=None):
    """Draw every figure; returns the paths written. `log` gets the
    wrote/skipped lines, `warn` the notes on the input (default: stderr)."""
    if warn is None:
        def warn(message):
            print(f"nrdiff_plots.py: note: {message}", file=sys.stderr)
    run = Run(summary_path, curves_path, warn)
    written = []
    for name, draw in FIGURES:
        path = f"{prefix}.{name}.png"
        reason = draw(run, path)
        if reason is None:
            written.append(path)
            log(f"wrote {path}")
        else:
            log(f"skipped {path}: {reason}")
    return written


def default_prefix(summary_path):
    for suffix in (".summary.csv", ".csv"):
        if summary_path.endswith(suffix):
            return summary_path[:-len(suffix)]
    return summary_path


# ---------------------------------------------------------------- self-test

def _write(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for r in rows:
            w.writerow(["" if x is None else
                        (f"{x:.10g}" if isinstance(x, float) else x) for x in r])


def write_synthetic(directory):
    """Synthetic nrdiff-post output: d = 16 (3 strengths, no training data)
    and d = 256 (3 strengths, n_train = 1000); includes nan and empty fields."""
    rng = np.random.default_rng(1)
    header = ("grid_index,dimension,separation,strength,n_train,t_S,t_S_err,"
              "t_S_theory,t_C,t_C_err,t_C_theory,t_S_clone,t_S_clone_err,"
              "t_S_matrix,t_C_clone,t_C_clone_err,t_freeze,t_freeze_err,"
              "t_freeze_spread,t_C_fe,t_C_fe_err,alpha,file").split(",")
    # phi falls from 1 to F(0) = 1/2 and crosses F(1) at t_S.
    shift = math.atanh(4 * (F1 - 0.5) - 1)
    summary, curves = [], []
    gi = 0
    for d, n_train in ((16, 0), (256, 1000)):
        for g in (0.0, 0.5, 1.0):
            ts_th = 1.2 + 0.4 * g + (0.3 if d == 256 else 0.0)
            ts = ts_th + rng.normal(0, 0.02)
            tc_th = 0.15 + 0.05 * g if n_train else math.nan
            tc = tc_th + 0.01 if n_train else None
            summary.append([gi, d, 1.0, g, n_train,
                            None if gi == 2 else ts, 0.02, ts_th,  # gi 2: no measured t_S
                            tc, 0.01 if n_train else None, tc_th,
                            ts + 0.04, 0.03, ts_th,  # cloning, beside
                            tc + 0.005 if n_train else None, 0.01, None, None, None,
                            None, None, math.log(n_train) / d if n_train else None,
                            f"run{gi}.h5"])
            t = np.linspace(0.05, 3 * ts_th, 40)

            def phi(t, k=2.0 if d == 16 else 3.5):
                return 0.5 + 0.25 * (1 + np.tanh(k * (ts_th - t) / ts_th + shift))
            for tt, th in zip(t, phi(t)):
                curves.append([gi, "phi_free", tt, th + rng.normal(0, 0.005), None,
                               th if tt > 0.2 else math.nan])
            for tb in ts_th * np.array([0.5, 0.8, 1.0, 1.3, 2.0]):
                curves.append([gi, "phi_clone", tb, phi(tb) + rng.normal(0, 0.01),
                               0.01, phi(tb)])
            if n_train:
                for tt in np.linspace(0.0, 1.0, 30):
                    fe = max(0.0, 1 - math.exp(-(tt - tc_th) / 0.15)) \
                        if tt > tc_th else 0.0
                    curves.append([gi, "fe_over_alpha", tt,
                                   fe + rng.normal(0, 0.01), 0.02, None])
                    curves.append([gi, "Y2", tt, math.exp(-tt / tc_th), 0.01, None])
            if g == 0.5:  # U-turns and correlations at two grid points only
                for tu in (0.1, 0.25, 0.5, 1.0, 2.0, 4.0):
                    ex = math.exp(-tu * (1 + 0.2 * (d == 256)))
                    gauss = math.exp(-1.3 * tu)
                    curves.append([gi, "c_uturn_ratio", tu,
                                   ex + rng.normal(0, 0.01), 0.01, ex])
                    curves.append([gi, "c_uturn", tu, 0.9 * ex, 0.015, None])
                    curves.append([gi, "c_uturn_gaussian", tu, gauss, None, None])
                for tau in np.linspace(0, 3, 31):
                    th = math.exp(-tau) * math.cos(3 * tau)
                    curves.append([gi, "acf", tau, th + rng.normal(0, 0.02), 0.02, th])
                    curves.append([gi, "corr_stationary", tau,
                                   th + rng.normal(0, 0.02), 0.02, th])
                for s in (0.5, 1.5):  # two reference times: t restarts
                    for tt in np.linspace(0, 3, 31):
                        th = (math.exp(-(tt - s)) * math.cos(3 * (tt - s))
                              if tt >= s else math.nan)
                        curves.append([gi, "corr_data", tt,
                                       th + rng.normal(0, 0.02) if tt >= s else math.nan,
                                       0.02 if tt >= s else None, th])
            gi += 1
    spath = os.path.join(directory, "synthetic.summary.csv")
    cpath = os.path.join(directory, "synthetic.curves.csv")
    _write(spath, header, summary)
    _write(cpath, "grid_index,curve,t,value,err,theory".split(","), curves)
    return spath, cpath


def _edge_cases(tmp):
    """Inputs the figures must survive or refuse cleanly; returns failures."""
    header = ",".join(SUMMARY_REQUIRED) + ",file"
    curves_header = "grid_index,curve,t,value,err,theory\n"
    files = {
        "one.summary.csv": f"{header}\n0,16,1,0,0,,,,,,,a.h5\n",
        "none.curves.csv": curves_header,
        "dup.summary.csv": f"{header}\n0,16,1,0,0,1.4,0.02,1.46,,,,a.h5\n"
                           f"0,16,1,0.5,0,1.5,0.02,1.56,,,,b.h5\n",
        "dup.curves.csv": curves_header + "0,phi_free,1,0.8,,\n0,acf,0,1,,1\n",
        "bad.curves.csv": curves_header + "0,acf,0,1.0.0,,\n",
    }
    for name, text in files.items():
        with open(os.path.join(tmp, name), "w") as f:
            f.write(text)

    def run(summary, curves):
        notes = []
        written = make_figures(os.path.join(tmp, summary), os.path.join(tmp, curves),
                               os.path.join(tmp, "edge"), log=lambda m: None,
                               warn=notes.append)
        return [os.path.basename(p).split(".")[1] for p in written], notes

    failures = []
    if run("one.summary.csv", "none.curves.csv")[0]:
        failures.append("one row and no curves: a figure was drawn")
    written, notes = run("dup.summary.csv", "dup.curves.csv")
    if written != ["phase"] or not notes:
        failures.append(f"duplicate grid_index: drew {written}, notes {notes}")
    try:
        run("one.summary.csv", "bad.curves.csv")
        failures.append("unparsable number accepted")
    except InputError:
        pass
    return failures


def self_test(out_prefix=None):
    """Synthetic data through every figure, plus the edge cases."""
    with tempfile.TemporaryDirectory(prefix="nrdiff_plots.") as tmp:
        spath, cpath = write_synthetic(tmp)
        prefix = out_prefix or os.path.join(tmp, "synthetic")
        messages = []
        written = make_figures(spath, cpath, prefix, log=messages.append)
        expected = [f"{prefix}.{name}.png" for name, _ in FIGURES]
        failures = [f"missing or empty {p}" for p in expected
                    if p not in written or not os.path.isfile(p)
                    or os.path.getsize(p) == 0]
        failures += _edge_cases(tmp)
    if failures:
        for m in messages + failures:
            print(m, file=sys.stderr)
        print("self-test: FAILED", file=sys.stderr)
        return 1
    print(f"self-test: {len(expected)} figures ok")
    return 0


# ---------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="nrdiff_plots.py",
        description="Figures of the nrdiff post-processing stage from the "
                    "CSV files of nrdiff-post.")
    ap.add_argument("summary", nargs="?", help="RUN.summary.csv")
    ap.add_argument("curves", nargs="?", help="RUN.curves.csv")
    ap.add_argument("--out", metavar="PREFIX",
                    help="figures go to PREFIX.<name>.png (default: the summary "
                         "file name without .summary.csv)")
    ap.add_argument("--self-test", action="store_true",
                    help="draw the figures of synthetic data in a temporary "
                         "directory and check them (with --out, keep them)")
    args = ap.parse_args(argv)
    try:
        if args.self_test:
            if args.summary or args.curves:
                ap.error("--self-test takes no input files")
            return self_test(args.out)
        if not (args.summary and args.curves):
            ap.error("need RUN.summary.csv and RUN.curves.csv")
        make_figures(args.summary, args.curves,
                     args.out or default_prefix(args.summary))
    except InputError as e:
        print(f"nrdiff_plots.py: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
