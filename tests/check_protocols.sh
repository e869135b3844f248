#!/usr/bin/env bash
# The measurement protocols (experiment.protocol) against exact results:
#   speciation  clone phi(t_b), the clone-free phi(t) and F(kappa_t) agree
#               (A = I: kappa_t = |mu|^2 e^{-2t}, F integrated here in NumPy;
#               A = (I + gQ)U: F(kappa_t) from the output)
#   collapse    phi_C(t_b) = E[Y_2] at t_b (doc/theory.md (6.7)), f^e -> 0 below
#               t_C and f^e / alpha -> 1 at large t
#   uturn       C_UT for Gaussian data, A = I: e^{-2T} s2 / (e^{-2T} s2 +
#               1 - e^{-2T}) (doc/theory.md (7.5), computed here);
#               A = (I + gQ)U: the closed form of the output; two-class
#               mixture, A = I: the exact mixture formula
#   forward     stationary autocorrelation e^{-tau} cos(g tau) for U = I,
#               d = 2 (V16, computed here) and C(s, t) from data (V17)
# Every comparison is |measured - exact| < 4.5 sigma, sigma the jackknife
# error over blocks (each run is seeded, so the outcome is fixed; at 4.5
# sigma a correct code fails one comparison in 10^5).  Then: the same
# output at 1 and 3 ranks, and after stops and restarts.
set -u
. "$(dirname "$0")/testlib.sh"
need_h5py
cd "$work"

run() { # name ranks args...
  local name=$1 np=$2; shift 2
  if "$mpirun" "$np" "$nrdiff" "$@" >"$name.out" 2>"$name.err"; then
    ok "$name runs"
  else
    sed 's/^/       /' "$name.err" | tail -5; ko "$name runs"
  fi
}

# Exact mixture score, exponential integrator, exact start at T.
common=(-P integrator.scheme=exponential -P integrator.start=exact
        -P ensemble.block_size=500 -P output.every=10 -P output.overwrite=true)

# Speciation: A = I (d = 4, |mu|^2 = 100, t_S = 2.3026) and the default
# job's non-reversible system (d = 2, U = diag(1, 4), g = 2).
run speciation_iso 2 "${common[@]}" -P grid.dimension=[4] -P grid.separation=[25] \
  -P grid.strength=[0] -P forward.u=isotropic -P forward.q=none \
  -P data.covariance=isotropic -P data.sigma=1 -P ensemble.particles=8000 \
  -P time.T=6 -P time.steps=1200 -P "experiment.protocol=[generate, speciation]" \
  -P "experiment.branch_times=[1.5, 2.0, 2.3, 2.6, 3.0]" -P output.file=spec_iso.h5 \
  "$top_src/input/default.yml"
run speciation_nr 2 "${common[@]}" -P grid.strength=[2] -P ensemble.particles=8000 \
  -P time.T=6 -P time.steps=1200 -P "experiment.protocol=[speciation]" \
  -P "experiment.branch_times=[0.6, 0.8, 1.0, 1.2, 1.5]" -P output.file=spec_nr.h5 \
  "$top_src/input/default.yml"
# Collapse: empirical score of 200 training points in d = 16.
run collapse 2 "${common[@]}" -P grid.dimension=[16] -P grid.separation=[1] \
  -P grid.strength=[0] -P grid.n_train=[200] -P forward.u=isotropic -P forward.q=none \
  -P data.covariance=isotropic -P data.sigma=1 -P ensemble.particles=4000 \
  -P ensemble.block_size=250 -P time.T=5 -P time.steps=500 \
  -P "experiment.protocol=[collapse]" -P "experiment.branch_times=[0.1, 0.2, 0.4, 0.8]" \
  -P output.file=collapse.h5 "$top_src/input/default.yml"
# U-turns: Gaussian data (separation 0) with A = I and with A = (I + 2Q)U,
# and a two-class mixture with A = I.
run uturn_gauss_iso 2 "${common[@]}" -P grid.dimension=[3] -P grid.separation=[0] \
  -P grid.strength=[0] -P forward.u=isotropic -P forward.q=none \
  -P data.covariance=isotropic -P data.sigma=2 -P ensemble.particles=8000 \
  -P time.T=3 -P time.steps=600 -P "experiment.protocol=[uturn]" \
  -P "experiment.uturn_times=[0.1, 0.5, 1.0, 2.0]" -P output.file=ut_iso.h5 \
  "$top_src/input/default.yml"
run uturn_gauss_nr 2 "${common[@]}" -P grid.separation=[0] -P grid.strength=[0,2] \
  -P ensemble.particles=8000 -P time.T=3 -P time.steps=600 \
  -P "experiment.protocol=[uturn]" -P "experiment.uturn_times=[0.1, 0.3, 0.6, 1.0, 2.0]" \
  -P output.file=ut_nr.h5 "$top_src/input/default.yml"
run uturn_mixture 2 "${common[@]}" -P grid.dimension=[4] -P grid.separation=[1] \
  -P grid.strength=[0] -P forward.u=isotropic -P forward.q=none \
  -P data.covariance=isotropic -P data.sigma=1 -P ensemble.particles=8000 \
  -P time.T=3 -P time.steps=600 -P "experiment.protocol=[uturn]" \
  -P "experiment.uturn_times=[0.2, 0.5, 1.0, 2.0]" -P output.file=ut_gm.h5 \
  "$top_src/input/default.yml"
# Forward paths: U = I, d = 2, g = 3 (V16); reference times 0 and 1.
run forward 2 "${common[@]}" -P grid.strength=[3] -P forward.u=isotropic \
  -P data.covariance=isotropic -P ensemble.particles=8000 -P time.T=4 \
  -P time.steps=800 -P "experiment.protocol=[forward]" \
  -P "experiment.reference_times=[0, 1]" -P output.file=fwd.h5 \
  "$top_src/input/default.yml"

cat >check.py <<'EOF'
import sys
import h5py
import numpy as np

Z = 4.5
fails = 0


def check(name, measured, exact, sigma):
    global fails
    measured, exact, sigma = (np.atleast_1d(np.asarray(a, float))
                              for a in (measured, exact, sigma))
    diff = np.abs(measured - exact)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(diff <= 1e-12, 0.0, diff / sigma)
    bad = ~(z < Z)
    print(("FAIL" if bad.any() else "ok  ") +
          f" - {name}: max |z| = {np.nanmax(z):.2f} over {z.size}")
    if bad.any():
        fails += 1
        for m, e, s in zip(measured[bad], exact[bad], sigma[bad]):
            print(f"       measured {m:.6f} exact {e:.6f} sigma {s:.6f}")


def jk_mean(g, col=None):
    """Value and jackknife error of an observable from its block sums."""
    bs = g["block_sum"][()]
    cnt = g.file[g.parent.name + "/count/block_sum"][()]
    if col is not None:
        bs = bs[..., col]
    tot, n = bs.sum(axis=1), cnt.sum(axis=1)
    loo = (tot[:, None] - bs) / (n[:, None] - cnt)
    B = bs.shape[1]
    err = np.sqrt((B - 1) / B * ((loo - loo.mean(axis=1)[:, None]) ** 2).sum(axis=1))
    return tot / n, err


def F(kappa):
    """1/2 (1 + E tanh w), w ~ N(kappa, kappa), Gauss-Hermite."""
    x, w = np.polynomial.hermite_e.hermegauss(200)
    return np.array([0.5 * (1 + (w * np.tanh(k + np.sqrt(k) * x)).sum() / w.sum())
                     for k in np.atleast_1d(kappa)])


def at_times(times, wanted):
    return np.array([np.argmin(np.abs(times - t)) for t in wanted])


# --- speciation
for path, iso in (("spec_iso.h5", True), ("spec_nr.h5", False)):
    with h5py.File(path, "r") as f:
        p = f["points/0000"]
        s = p["speciation"]
        tb, phc, phe = s["branch_time"][()], s["phi_clone"][()], s["phi_clone_err"][()]
        exact = F(100 * np.exp(-2 * tb)) if iso else s["phi_theory"][()]
        obs = p["observables/speciation_phi"]
        i = at_times(obs["time"][()], tb)
        assert np.allclose(obs["time"][()][i], tb)
        phf, pfe = jk_mean(obs)
        label = "A = I" if iso else "A = (I + 2Q)U"
        check(f"speciation {label}: clone phi(t_b) = F(kappa)", phc, exact, phe)
        check(f"speciation {label}: clone-free phi(t_b) = F(kappa)", phf[i], exact, pfe[i])
        check(f"speciation {label}: clone = clone-free", phc, phf[i],
              np.hypot(phe, pfe[i]))

# --- collapse
with h5py.File("collapse.h5", "r") as f:
    p = f["points/0000"]
    c = p["collapse"]
    tb = c["branch_time"][()]
    y2, y2e = jk_mean(p["observables/participation_y2"])
    i = at_times(p["observables/participation_y2/time"][()], tb)
    check("collapse: phi_C(t_b) = E[Y2(t_b)]", c["phiC_clone"][()], y2[i],
          np.hypot(c["phiC_clone_err"][()], y2e[i]))
    t, fe, fee, alpha = (c["time"][()], c["excess_entropy"][()],
                         c["excess_entropy_err"][()], c["alpha"][0])
    # far below t_C each sample sits in its own cage: f^e = 0 up to the
    # overlap of the cages, e^{-O(d)}; far above, p^e_t = p_t ~ N(0, I)
    # (f^e -> alpha up to e^{-2t} |mu|^2 / d corrections, 1e-4 at t = 5)
    j = np.argmin(np.abs(t - 0.05))
    check("collapse: f^e(0.05) = 0", fe[j], 0.0, fee[j])
    check("collapse: f^e(5) = alpha", fe[0], alpha, fee[0])
    fz = c["freezing_time"][()]
    ok = 0 < fz[0] < 5 and fz[1] > 0 and fz[2] > 0
    print(("ok  " if ok else "FAIL") + f" - collapse: freezing time {fz[0]:.3f} +- {fz[1]:.3f}")
    fails += not ok

# --- U-turns
with h5py.File("ut_iso.h5", "r") as f:
    u = f["points/0000/uturn"]
    T = u["T_u"][()]
    e, s2 = np.exp(-2 * T), 4.0
    exact = e * s2 / (e * s2 + 1 - e)
    check("uturn Gaussian A = I: C_UT = closed form", u["c_uturn_ratio"][()], exact,
          u["c_uturn_ratio_err"][()])
    check("uturn: the output's Gaussian closed form is the same", u["theory_gaussian"][()],
          exact, 1e-9)
with h5py.File("ut_nr.h5", "r") as f:
    for pt in ("0000", "0001"):
        u = f[f"points/{pt}/uturn"]
        check(f"uturn Gaussian, U = diag(1,4), point {pt}: C_UT = closed form",
              u["c_uturn_ratio"][()], u["theory_gaussian"][()], u["c_uturn_ratio_err"][()])
with h5py.File("ut_gm.h5", "r") as f:
    u = f["points/0000/uturn"]
    check("uturn two-class mixture A = I: C_UT = exact mixture form",
          u["c_uturn_ratio"][()], u["theory_gm2"][()], u["c_uturn_ratio_err"][()])
    n = u["class_count"][()]
    ok = np.all(n.sum(axis=1) == 8000) and np.all(n > 3000)
    print(("ok  " if ok else "FAIL") + " - uturn: per-class counts cover every data point")
    fails += not ok

# --- forward paths
with h5py.File("fwd.h5", "r") as f:
    w = f["points/0000/forward"]
    t, s = w["time"][()], w["reference_time"][()]
    assert np.allclose(s, [0, 1])
    cs, cse = w["corr_stationary"][()], w["corr_stationary_err"][()]
    cd, cde, cdt = w["corr_data"][()], w["corr_data_err"][()], w["corr_data_theory"][()]
    for r, s0 in enumerate(s):
        m = t >= s0
        tau = t[m] - s0
        check(f"forward: stationary C({s0:g}, t) = e^{{-tau}} cos(3 tau) (V16)",
              cs[r, m], np.exp(-tau) * np.cos(3 * tau), cse[r, m])
        check(f"forward: C({s0:g}, t) from data = tr(e^{{-A(t-s)}} Sigma_s) / ... (V17)",
              cd[r, m], cdt[r, m], cde[r, m])
    m = t >= 1
    ok = np.all(np.isnan(cd[1, ~m]))
    print(("ok  " if ok else "FAIL") + " - forward: C(s, t) is NaN for t < s")
    fails += not ok
sys.exit(1 if fails else 0)
EOF
if /usr/bin/python3 check.py >check.out 2>&1; then
  sed 's/^/       /' check.out; ok "protocol measurements agree with exact results"
else
  sed 's/^/       /' check.out; ko "protocol measurements agree with exact results"
fi

# Rank-count invariance and exact restarts with every protocol at once
# (mixture and empirical score; clones, U-turns, forward paths, freezing).
small=(-P grid.dimension=[3] -P grid.strength=[0,1.5] -P grid.n_train=[20]
       -P forward.u=geometric -P grid.separation=[8] -P ensemble.particles=33
       -P ensemble.block_size=5 -P time.T=4 -P time.steps=1600 -P output.every=100
       -P output.trajectories=4 -P integrator.start=exact
       -P "experiment.protocol=[generate, speciation, collapse, uturn, forward]"
       -P "experiment.branch_times=[0.5, 1.5]" -P "experiment.uturn_times=[0.4, 2]"
       -P "experiment.reference_times=[0, 0.5]" -P output.file=all.h5)
for np in 1 3; do
  mkdir "r$np"
  (cd "r$np" && "$mpirun" $np "$nrdiff" "${small[@]}" "$top_src/input/default.yml" \
    >out 2>err) || { cat "r$np/err"; ko "all protocols on $np rank(s)"; }
done
if h5diff --exclude-path /code r1/all.h5 r3/all.h5 >diff 2>&1; then
  ok "all protocols: output at 3 ranks equals output at 1 rank"
else
  head -20 diff; ko "all protocols: output at 3 ranks differs from 1 rank"
fi
# Stop after a wall-time budget of 0.08 s (each segment makes at least
# one step; usually 3-8 segments, at least 2 required), restart at another
# rank count each time.
mkdir rs && cd rs
n=0 rc=3
while [ $rc -eq 3 ] && [ $n -lt 400 ]; do
  flag=(); [ $n -gt 0 ] && flag=(--restart)
  "$mpirun" $((1 + n % 3)) "$nrdiff" "${small[@]}" -P run.max_wall_time=0.08 \
    "${flag[@]}" "$top_src/input/default.yml" >out 2>err
  rc=$?; n=$((n + 1))
done
cd ..
if [ $rc -eq 0 ] && [ $n -ge 2 ] &&
  h5diff --exclude-path /code --exclude-path /parameters r1/all.h5 rs/all.h5 >diff 2>&1; then
  ok "all protocols: $((n - 1)) stops and restarts at 1-3 ranks give the same output"
else
  echo "       exit $rc after $n segment(s)"; head -20 diff; tail -3 rs/err
  ko "all protocols: stops and restarts"
fi

finish
