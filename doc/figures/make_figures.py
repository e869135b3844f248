#!/usr/bin/python3
"""Figures of doc/validation.md from nrdiff-post's summary files.

    doc/figures/make_figures.py RUNDIR

RUNDIR holds the summaries of the runs listed in doc/validation.md
("Larger local runs"): nrs_{slowest,fastest}_{random,optimal}.summary.csv
(d = 2 and 64, h = T/1000; d = 2 replaced by h4_*.summary.csv, h = T/4000,
when present; nrs512_{slowest,fastest}.summary.csv if present) for the
non-reversible speciation figure, nrc_d16 and nrc_d128 for the collapse
figure.  Writes doc/figures/nr_speciation.png and nr_collapse.png.  Run
with Debian's /usr/bin/python3 (numpy, matplotlib).
"""
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def num(r, k):
    return float(r[k]) if r.get(k, "") not in ("", "nan") else float("nan")


def speciation(rundir):
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    colors = {"2": "C0", "64": "C1", "512": "C2"}
    for ax, axis in zip(axes, ("slowest", "fastest")):
        for q, marker in (("random", "o"), ("optimal", "s")):
            names = [f"nrs_{axis}_{q}"] + ([f"nrs512_{axis}"] if q == "random" else [])
            rs = []
            for n in names:
                p = os.path.join(rundir, n + ".summary.csv")
                if os.path.exists(p):
                    rs += rows(p)
            # d = 2 at h = T/4000 where available (h = T/1000 biases large g)
            fine = os.path.join(rundir, f"h4_{axis}_{q}.summary.csv")
            if os.path.exists(fine):
                rs = [r for r in rs if r["dimension"] != "2"] + rows(fine)
            for d in sorted({r["dimension"] for r in rs}, key=int):
                sel = sorted((r for r in rs if r["dimension"] == d),
                             key=lambda r: float(r["strength"]))
                g = [float(r["strength"]) for r in sel]
                base = num(sel[0], "t_S_theory")
                ax.plot(g, [num(r, "t_S_theory") / base for r in sel], "-",
                        color=colors[d], alpha=0.6 if q == "random" else 0.3)
                ax.errorbar(g, [num(r, "t_S") / base for r in sel],
                            [num(r, "t_S_err") / base for r in sel], fmt=marker,
                            color=colors[d], mfc="none" if q == "optimal" else None,
                            ms=5, label=f"d = {d}, {q} Q")
        ax.axhline(1, color="k", lw=0.5)
        ax.set_title(f"class direction along the {axis} eigenvector of U")
        ax.set_xlabel("strength g of the non-reversible perturbation")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("t_S(g) / t_S(0): measured (markers), kappa_t = 1 (lines)")
    fig.tight_layout()
    out = os.path.join(here, "nr_speciation.png")
    fig.savefig(out, dpi=110)
    print("wrote", out)


def collapse(rundir):
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, name in zip(axes, ("nrc_d16", "nrc_d128")):
        p = os.path.join(rundir, name + ".summary.csv")
        if not os.path.exists(p):
            continue
        rs = sorted(rows(p), key=lambda r: float(r["strength"]))
        g = [float(r["strength"]) for r in rs]
        ax.errorbar(g, [num(r, "t_C_clone") for r in rs],
                    [num(r, "t_C_clone_err") for r in rs],
                    fmt="o", color="C3", label="t_C: cloning, phi_C = 1/2")
        ax.errorbar(g, [num(r, "t_C") for r in rs], [num(r, "t_C_err") for r in rs],
                    fmt="x", color="C0", label="t_C: E[Y2] = 1/2")
        ax.plot(g, [num(r, "t_C_theory") for r in rs], "--", color="k",
                label="REM theory (n, d -> infinity)")
        ax.set_title(f"d = {rs[0]['dimension']}, n = {rs[0]['n_train']}, "
                     f"alpha = ln n / d = {num(rs[0], 'alpha'):.3f}")
        ax.set_xlabel("strength g of the non-reversible perturbation")
        ax.set_ylabel("collapse time t_C")
        ax.legend(fontsize=7)
    fig.tight_layout()
    out = os.path.join(here, "nr_collapse.png")
    fig.savefig(out, dpi=110)
    print("wrote", out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    speciation(sys.argv[1])
    collapse(sys.argv[1])
