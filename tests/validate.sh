#!/usr/bin/env bash
# make validate: reduced versions of the science inputs (input/*.yml: fewer
# dimensions, particles and steps; the same physics) run end to end
# (nrdiff, then nrdiff-post), every measurement compared with its theory.
# Fails when a measurement disagrees with an exact result beyond 4.5 times
# its jackknife error (a correct code fails one comparison in 10^5).  The
# collapse times of the REM theory are n, d -> infinity results: they are
# printed beside the measurements, not asserted.  About 4 minutes on 2
# cores.  The full inputs and their cost: doc/validation.md.
set -u
. "$(dirname "$0")/testlib.sh"
need_h5py
cd "$work"
post="$top_build/src/nrdiff-post"
in="$top_src/input"

step() { # name, then the nrdiff arguments
  local name=$1; shift
  if "$mpirun" 2 "$nrdiff" "$@" >"$name.out" 2>"$name.err" &&
    "$post" -q "$name.h5" >"$name.post" 2>&1; then
    ok "$name: run and post-processing"
  else
    tail -5 "$name.err" "$name.post"; ko "$name"
  fi
}

# Biroli et al. speciation at d = 256: phi(t) = F(d e^{-2t}), t_S = 1/2 ln d.
step biroli_speciation -P grid.dimension=[256] -P ensemble.particles=4000 \
  -P ensemble.block_size=200 -P time.steps=500 -P output.every=5 \
  -P "experiment.branch_times=[2.0, 2.4, 2.6, 2.8, 3.0, 3.2, 3.6]" \
  -P output.file=biroli_speciation.h5 "$in/biroli-speciation.yml"
# Non-reversible speciation, d = 2 and 64, random Q, slow and fast axis.
for dir in slowest fastest; do
  step "nr_speciation_$dir" -P grid.dimension=[2,64] -P grid.strength=[0,0.75,2] \
    -P ensemble.particles=4000 -P ensemble.block_size=200 -P time.steps=1000 \
    -P "experiment.protocol=[generate]" -P data.direction=$dir \
    -P output.file="nr_speciation_$dir.h5" "$in/nonreversible-speciation.yml"
done
# Collapse: Biroli's mixture at d = 32 with 500 training points; the
# non-reversible collapse input at d = 16, n = 2000, g = 0 and 2; both also
# with run.precision float32 (SGEMM in the empirical score), which must pass
# the same tests and agree with float64.
for prec in float64 float32; do
  sfx=; [ $prec = float32 ] && sfx=_f32
  step biroli_collapse$sfx -P grid.dimension=[32] -P grid.n_train=[500] \
    -P ensemble.particles=2000 -P ensemble.block_size=100 -P time.steps=400 \
    -P output.every=20 -P "experiment.branch_times=[0.4, 0.8, 1.2, 1.6]" \
    -P run.precision=$prec -P output.file=biroli_collapse$sfx.h5 "$in/biroli-collapse.yml"
  step nr_collapse$sfx -P grid.dimension=[16] -P grid.n_train=[2000] -P grid.strength=[0,2] \
    -P ensemble.particles=2000 -P ensemble.block_size=100 -P time.steps=400 \
    -P output.every=2 -P "experiment.branch_times=[0.09, 0.15, 0.3, 0.48]" \
    -P run.precision=$prec -P output.file=nr_collapse$sfx.h5 "$in/nonreversible-collapse.yml"
done
# U-turns: d = 4, Gaussian and mixture data, g = 0 and 2.
step uturn -P grid.dimension=[4] -P ensemble.particles=4000 -P ensemble.block_size=200 \
  -P time.steps=600 -P output.file=uturn.h5 "$in/uturn.yml"
# Real data: Fashion-MNIST (Debian's dataset-fashion-mnist, imported by
# nrdiff-import), two classes (trousers, ankle boots) and all ten, reduced:
# n = 2000 and 1000 training images, 512 and 256 particles.
fm=/usr/share/datasets/fashion-mnist
if [ -f $fm/train-images-idx3-ubyte.gz ] && [ -f $fm/train-labels-idx1-ubyte.gz ]; then
  "$top_build/src/nrdiff-import" -o fashion-train.h5 $fm/train-images-idx3-ubyte.gz \
    $fm/train-labels-idx1-ubyte.gz >import.out 2>&1 \
    && ok "nrdiff-import of Fashion-MNIST" || { cat import.out; ko "nrdiff-import"; }
  # blocks of 32 particles: 16 and 8 blocks, enough for jackknife errors
  fashion=(-P grid.n_train=[2000] -P ensemble.particles=512 -P time.steps=60
           -P ensemble.block_size=32 -P output.every=1 -P output.trajectories=0
           -P checkpoint.interval=0
           -P "experiment.branch_times=[0.8, 1.2, 1.6, 2.0, 2.5, 3.0, 3.5]")
  step fashion2 "${fashion[@]}" -P "data.class_subset=[1, 9]" \
    -P output.file=fashion2.h5 "$in/fashion-mnist.yml"
  step fashion10 "${fashion[@]}" -P grid.n_train=[1000] -P ensemble.particles=256 \
    -P output.file=fashion10.h5 "$in/fashion-mnist.yml"
else
  echo "SKIP - Fashion-MNIST: $fm not installed (Debian package dataset-fashion-mnist)"
fi

cat >validate.py <<'EOF'
import csv, sys
import h5py
import numpy as np

Z = 4.5
fails = 0
x, w = np.polynomial.hermite_e.hermegauss(200)

def F(kappa):
    return np.array([0.5 * (1 + (w * np.tanh(k + np.sqrt(k) * x)).sum() / w.sum())
                     for k in np.atleast_1d(kappa)])

def check(name, measured, exact, sigma, show=True, ref="theory"):
    global fails
    m, e, s = (np.atleast_1d(np.asarray(a, float)) for a in (measured, exact, sigma))
    diff = np.abs(m - e)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(diff <= 1e-12, 0.0, diff / s)
    bad = ~(z < Z)
    print(("FAIL" if bad.any() else "ok  ") + f" - {name}: max |z| = {np.nanmax(z):.2f}")
    if show or bad.any():
        for a, b, c, d in zip(m, e, s, z):
            print(f"         measured {a:9.5f} +- {c:.5f}   {ref} {b:9.5f}   z = {d:5.2f}")
    fails += bad.any()

def rows(name):
    return list(csv.DictReader(open(name + ".summary.csv")))

def num(r, k):
    return float(r[k]) if r[k] != "" else np.nan

# --- Biroli speciation
with h5py.File("biroli_speciation.h5", "r") as f:
    s = f["points/0000/speciation"]
    tb = s["branch_time"][()]
    check("Biroli d = 256: phi_clone(t_b) = F(d e^{-2t})", s["phi_clone"][()],
          F(256 * np.exp(-2 * tb)), s["phi_clone_err"][()])
r = rows("biroli_speciation")[0]
check("Biroli d = 256: t_S (cloning, clone-free) = 1/2 ln d",
      [num(r, "t_S_clone"), num(r, "t_S")], [0.5 * np.log(256)] * 2,
      [num(r, "t_S_clone_err"), num(r, "t_S_err")])

# --- non-reversible speciation: t_S against kappa_t = 1
table = {0: 2.3026, 0.75: 1.4629, 2: 0.9952}  # doc/validation.md V18, slow axis
for d in ("slowest", "fastest"):
    rs = rows("nr_speciation_" + d)
    check(f"non-reversible, mu along the {d[:4]} axis: t_S = kappa_t = 1 theory",
          [num(r, "t_S") for r in rs], [num(r, "t_S_theory") for r in rs],
          [num(r, "t_S_err") for r in rs])
    if d == "slowest":
        th = [num(r, "t_S_theory") for r in rs if r["dimension"] == "2"]
        ok = np.allclose(th, [table[g] for g in (0, 0.75, 2)], atol=1e-4)
        print(("ok  " if ok else "FAIL")
              + " - the d = 2 theory is doc/validation.md V18: "
              + ", ".join(f"{t:.4f}" for t in th))
        fails += not ok
    for dim in ("2", "64"):
        t0, e0 = [(num(r, "t_S"), num(r, "t_S_err")) for r in rs
                  if r["dimension"] == dim and float(r["strength"]) == 0][0]
        t1, e1 = [(num(r, "t_S"), num(r, "t_S_err")) for r in rs
                  if r["dimension"] == dim and float(r["strength"]) == 0.75][0]
        want = "down" if d == "slowest" else "up"
        moved = (t1 - t0) / np.hypot(e0, e1)
        ok = moved < -Z if want == "down" else moved > Z
        print(("ok  " if ok else "FAIL") + f" - d = {dim}, {d[:4]} axis: g = 0.75 moves t_S "
              f"{want} ({t0:.4f} -> {t1:.4f}, {moved:+.1f} sigma)")
        fails += not ok

# --- collapse: phi_C = E[Y2] (exact identity), f^e -> alpha at large t;
#     t_C beside the REM theory (asymptotic: printed)
for name in ("biroli_collapse", "nr_collapse", "biroli_collapse_f32", "nr_collapse_f32"):
    with h5py.File(name + ".h5", "r") as f:
        for pt in f["points"]:
            p = f["points"][pt]
            c = p["collapse"]
            tb = c["branch_time"][()]
            y2 = p["observables/participation_y2"]
            cnt = p["observables/count/block_sum"][()]
            bs = y2["block_sum"][()]
            i = [int(np.argmin(np.abs(y2["time"][()] - t))) for t in tb]
            assert np.allclose(y2["time"][()][i], tb), "branch times off the output grid"
            B = bs.shape[1]
            loo = (bs.sum(1)[:, None] - bs) / (cnt.sum(1)[:, None] - cnt)
            err = np.sqrt((B - 1) / B * ((loo - loo.mean(1)[:, None]) ** 2).sum(1))
            check(f"{name} point {pt}: phi_C(t_b) = E[Y2(t_b)]", c["phiC_clone"][()],
                  y2["value"][()][i], np.hypot(c["phiC_clone_err"][()], err[i]), show=False)
            check(f"{name} point {pt}: f^e(T) = alpha", c["excess_entropy"][0], c["alpha"][0],
                  c["excess_entropy_err"][0], show=False)
    for r in rows(name):
        print(f"         {name} g = {r['strength']}: t_C (Y2) = {r['t_C']} +- {r['t_C_err']}, "
              f"phi_C {r['t_C_clone']}, freezing {r['t_freeze']}, f^e zero {r['t_C_fe']}; "
              f"REM theory {r['t_C_theory']} (n, d -> infinity)")

# --- float32 against float64: the same seed and particles, so the collapse
#     times must agree well within one error (compared at Z errors)
for name in ("biroli_collapse", "nr_collapse"):
    r64, r32 = rows(name), rows(name + "_f32")
    for k, e in (("t_C", "t_C_err"), ("t_C_clone", "t_C_clone_err"), ("t_freeze", "t_freeze_err")):
        check(f"{name}: {k} at float32 = float64", [num(r, k) for r in r32],
              [num(r, k) for r in r64], [num(r, e) for r in r64], ref="float64")

# --- U-turns: Gaussian data = closed form; mixture: the Gaussian test
with h5py.File("uturn.h5", "r") as f:
    for pt in f["points"]:
        p = f["points"][pt]
        u = p["uturn"]
        if p.attrs["separation"] == 0:
            check(f"U-turn, Gaussian data, g = {p.attrs['strength']:g}: C_UT = closed form",
                  u["c_uturn_ratio"][()], u["theory_gaussian"][()], u["c_uturn_ratio_err"][()],
                  show=False)
        else:
            gap = u["c_uturn_ratio"][()] - u["theory_gaussian"][()]
            print(f"         mixture, g = {p.attrs['strength']:g}: Gaussian test gap "
                  + " ".join(f"{g:+.3f}" for g in gap))

# --- real data (Fashion-MNIST): exact identities of the ideal model, the
#     data's Gaussian theory printed beside the measurements
import os
for name in ("fashion2", "fashion10"):
    if not os.path.exists(name + ".h5"):
        continue
    with h5py.File(name + ".h5", "r") as f:
        p = f["points/0000"]
        s, c = p["speciation"], p["collapse"]
        tb = s["branch_time"][()]
        ph = p["observables/speciation_phi"]
        i = [int(np.argmin(np.abs(ph["time"][()] - t))) for t in tb]
        assert np.allclose(ph["time"][()][i], tb), "branch times off the output grid"
        # a cloning fraction of N pairs has the binomial spread
        # sqrt(phi (1 - phi) / N) at the (far better known) clone-free phi:
        # the floor of its error where few pairs disagree (a jackknife over
        # no disagreeing pair says 0)
        N = p.attrs["particles"]
        def spread(err, exact):
            return np.maximum(err, np.sqrt(exact * (1 - exact) / N))
        free = ph["value"][()][i]
        check(f"{name}: phi_clone(t_b) = clone-free phi of the labels (t_b)",
              s["phi_clone"][()], free,
              np.hypot(spread(s["phi_clone_err"][()], free), ph["error"][()][i]),
              show=False)
        y2 = p["observables/participation_y2"]
        free = y2["value"][()][i]
        check(f"{name}: phi_C(t_b) = E[Y2(t_b)]", c["phiC_clone"][()], free,
              np.hypot(spread(c["phiC_clone_err"][()], free), y2["error"][()][i]),
              show=False)
        check(f"{name}: f^e(T) = alpha", c["excess_entropy"][0], c["alpha"][0],
              c["excess_entropy_err"][0], show=False)
        a = p.attrs
        print(f"         {name}: t_S clone-free {a['speciation_time_measured']:.4f} +- "
              f"{a['speciation_time_error']:.4f}, cloning {a['speciation_time_cloning']:.4f}"
              f" +- {a['speciation_time_cloning_error']:.4f}; theory [I] matrix criterion "
              f"{a['speciation_time_theory']:.4f}, class-free {a['speciation_time_covariance']:.4f}")
        print(f"         {name}: t_C (Y2) {a['critical_time_measured']:.4f} +- "
              f"{a['critical_time_error']:.4f}; REM theory [I] {a['critical_time_theory']:.4f}"
              " (n, d -> infinity)")
sys.exit(1 if fails else 0)
EOF
if /usr/bin/python3 validate.py >validate.log 2>&1; then
  sed 's/^/       /' validate.log; ok "measurements agree with theory"
else
  sed 's/^/       /' validate.log; ko "measurements agree with theory"
fi
finish
