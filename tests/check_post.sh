#!/usr/bin/env bash
# nrdiff-post end to end: a small run with every protocol, post-processed;
# the crossings and the observables' errors recomputed independently in
# NumPy (pool-adjacent-violators + linear interpolation + leave-one-block-out
# jackknife) from the run file's block sums; one critical time everywhere:
# the run's printed report, its /points attributes and nrdiff-post's table,
# CSV and HDF5 summary agree to the last digit (headline = clone-free, the
# cloning estimate beside under its own name), also for the issue's case
# where cloning never brackets F(1) but the clone-free curve does; the CSV
# and HDF5 layouts; figures; and bad or partial inputs (missing, not HDF5,
# not nrdiff, a checkpoint, a missing dataset, an unfinished file, a curve
# that never reaches its level).
set -u
. "$(dirname "$0")/testlib.sh"
need_h5py
cd "$work"
post="$top_build/src/nrdiff-post"

params=(-P grid.dimension=[2] -P grid.strength=[0,2] -P grid.n_train=[0,30]
        -P data.covariance=isotropic -P data.sigma=0.3
        -P ensemble.particles=1200 -P ensemble.block_size=100 -P time.T=6
        -P time.steps=600 -P integrator.start=exact -P integrator.scheme=exponential
        -P output.every=10 -P output.trajectories=8 -P output.trajectory_every=5
        -P "experiment.protocol=[generate, speciation, uturn, forward]"
        -P "experiment.branch_times=[0.5, 1, 1.5, 2, 2.5, 3]"
        -P "experiment.uturn_times=[0.3, 1]" -P output.file=run.h5)
"$mpirun" 2 "$nrdiff" "${params[@]}" "$top_src/input/default.yml" >run.out 2>run.err \
  && ok "a small run with protocols" || { tail -3 run.err; ko "small run"; }

"$post" run.h5 >post.out 2>post.err
rc=$?
[ $rc -eq 0 ] && [ -s run.summary.csv ] && [ -s run.curves.csv ] && [ -s run.summary.h5 ] \
  && ok "nrdiff-post run.h5: exit 0, summary and curves written" \
  || { cat post.err; ko "nrdiff-post run.h5 (exit $rc)"; }
grep -q "t_S" post.out && grep -q "not reached\|[0-9]+-" post.out \
  && ok "a table on stdout" || ko "table on stdout"

cat >check.py <<'EOF'
import csv, sys
import h5py
import numpy as np

fails = 0
def check(name, cond, detail=""):
    global fails
    print(("ok  " if cond else "FAIL") + " - " + name + ("" if cond else ": " + detail))
    fails += not cond

def pava(y, rising):
    """Least-squares monotone fit (pool adjacent violators)."""
    s = 1 if rising else -1
    blocks = []
    for v in s * np.asarray(y, float):
        blocks.append([v, 1.0, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, n2 = blocks.pop()
            m1, w1, n1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    return s * np.concatenate([[m] * n for m, w, n in blocks])

def crossing(t, y, level, rising):
    o = np.argsort(t)
    t, y = np.asarray(t)[o], np.asarray(y)[o]
    keep = ~np.isnan(y)
    t, y = t[keep], y[keep]
    f = pava(y, rising) - level
    for i in range(len(f) - 1):
        if f[i] == 0:
            return t[i]
        if (f[i] < 0) != (f[i + 1] < 0) or f[i + 1] == 0:
            return t[i] + (t[i + 1] - t[i]) * f[i] / (f[i] - f[i + 1])
    return np.nan

def jackknife(t, num, den, level, rising):
    """num, den: blocks x times."""
    c = crossing(t, num.sum(0) / den.sum(0), level, rising)
    B = num.shape[0]
    loo = np.array([crossing(t, (num.sum(0) - num[b]) / (den.sum(0) - den[b]), level, rising)
                    for b in range(B)])
    return c, np.sqrt((B - 1) / B * ((loo - loo.mean()) ** 2).sum())

rows = list(csv.DictReader(open("run.summary.csv")))
header = open("run.summary.csv").readline().strip().split(",")
check("summary.csv: the required columns first, in order",
      header[:11] == "grid_index,dimension,separation,strength,n_train,t_S,t_S_err,t_S_theory,t_C,t_C_err,t_C_theory".split(","),
      str(header[:11]))
check("summary.csv: one row per grid point", len(rows) == 4, str(len(rows)))
x, w = np.polynomial.hermite_e.hermegauss(200)
F1 = 0.5 * (1 + (w * np.tanh(1 + x)).sum() / w.sum())  # F(1), exactly

def same(field, value):
    """A CSV field (empty = not reached) equals a recomputed value."""
    if np.isnan(value):
        return field == ""
    return field != "" and abs(float(field) - value) < 1e-9 * max(1, abs(value))
with h5py.File("run.h5", "r") as f:
    for r in rows:
        p = f["points/%04d" % int(r["grid_index"])]
        cnt = p["observables/count/block_sum"][()].T
        t = p["observables/count/time"][()]
        if int(r["n_train"]) == 0:
            num = p["observables/speciation_phi/block_sum"][()].T
            c, e = jackknife(t, num, cnt, F1, False)
            check(f"point {r['grid_index']}: t_S (headline, clone-free) = NumPy recomputation",
                  same(r["t_S"], c) and same(r["t_S_err"], e),
                  f"{r['t_S']} +- {r['t_S_err']} vs {c} +- {e}")
            fin = p["final/block_sum"][0]
            g = p["final"].attrs
            nb = g["n_branch"]
            tb = p["speciation/branch_time"][()]
            num = fin[:, g["f_class"]:g["f_class"] + nb]
            den = np.repeat(fin[:, [g["f_count"]]], nb, axis=1)
            c, e = jackknife(tb, num, den, F1, False)
            check(f"point {r['grid_index']}: t_S_clone = NumPy recomputation",
                  same(r["t_S_clone"], c) and same(r["t_S_clone_err"], e),
                  f"{r['t_S_clone']} +- {r['t_S_clone_err']} vs {c} +- {e}")
            th = p.attrs["critical_time_theory"]
            check(f"point {r['grid_index']}: t_S theory = the run's kappa_t = 1",
                  abs(float(r["t_S_theory"]) - th) < 1e-9, f"{r['t_S_theory']} vs {th}")
        else:
            num = p["observables/participation_y2/block_sum"][()].T
            c, e = jackknife(t, num, cnt, 0.5, False)
            check(f"point {r['grid_index']}: t_C (headline, Y2) = NumPy recomputation",
                  same(r["t_C"], c) and same(r["t_C_err"], e),
                  f"{r['t_C']} +- {r['t_C_err']} vs {c} +- {e}")
            # labelled training points: phi of their class weights too
            num = p["observables/speciation_phi/block_sum"][()].T
            s, e = jackknife(t, num, cnt, F1, False)
            check(f"point {r['grid_index']}: clone-free t_S of the labels = NumPy "
                  "recomputation = the run's speciation_time_measured, no collapse "
                  "cloning here",
                  same(r["t_S"], s) and same(r["t_S_err"], e)
                  and same(r["t_S"], p.attrs["speciation_time_measured"])
                  and r["t_C_clone"] == "" and r["t_C_clone_err"] == "",
                  f"{r['t_S']} +- {r['t_S_err']} vs {s} +- {e}")
            check(f"point {r['grid_index']}: t_C theory = the run's REM t_C",
                  abs(float(r["t_C_theory"]) - p.attrs["critical_time_theory"]) < 1e-9)
        # every observable's stored error = its jackknife error, recomputed
        B = cnt.shape[0]
        for name, o in p["observables"].items():
            if name == "count":
                check(f"point {r['grid_index']}: count has no error", "error" not in o)
                continue
            bs, c3 = o["block_sum"][()], p["observables/count/block_sum"][()]
            if bs.ndim == 3:
                c3 = c3[:, :, None]
            tot, n = bs.sum(1), c3.sum(1)
            loo = (tot[:, None] - bs) / (n[:, None] - c3)
            err = np.sqrt((B - 1) / B * ((loo - loo.mean(1, keepdims=True)) ** 2).sum(1))
            err[np.isnan(o["value"][()])] = np.nan
            check(f"point {r['grid_index']}: observables/{name}/error = NumPy jackknife",
                  o["error"].shape == o["value"].shape
                  and np.allclose(o["error"][()], err, rtol=1e-9, atol=1e-14, equal_nan=True))
curves = list(csv.DictReader(open("run.curves.csv")))
names = {c["curve"] for c in curves}
want = {"phi_free", "phi_clone", "Y2", "c_uturn", "c_uturn_ratio", "c_uturn_gaussian", "acf"}
check("curves.csv: the curves of the protocols that ran", want <= names, str(names))
with h5py.File("run.h5", "r") as f:
    v = f["points/0000/observables/speciation_phi/value"][()]
    mine = [float(c["value"]) for c in curves if c["curve"] == "phi_free" and c["grid_index"] == "0"]
    check("curves.csv: phi_free equals the run's observable", np.allclose(mine, v, rtol=0, atol=1e-9))
acf = [c for c in curves if c["curve"] == "acf" and c["grid_index"] == "0"]
check("curves.csv: acf starts at 1 with its stationary theory beside it",
      float(acf[0]["value"]) == 1 and abs(float(acf[0]["theory"]) - 1) < 1e-12 and acf[3]["theory"] != "")
with h5py.File("run.summary.h5", "r") as s:
    check("summary.h5: columns and curves",
          s["summary/t_S"].shape == (4,) and "description" in s["summary/t_S"].attrs
          and "phi_free" in s["curves/0/0000"])
sys.exit(1 if fails else 0)
EOF
if /usr/bin/python3 check.py >check.out 2>&1; then
  sed 's/^/       /' check.out; ok "nrdiff-post values = independent recomputation"
else
  sed 's/^/       /' check.out; ko "nrdiff-post values = independent recomputation"
fi

# One critical time everywhere: the run's printed report (grid point lines
# and closing summary), /points/IIII attributes, nrdiff-post's table, CSV
# and HDF5 summary, compared as decimal strings at each one's printed
# precision and as doubles (summary.h5 = the attribute, bit for bit).
cat >same.py <<'EOF'
import csv, math, re, sys
import h5py
import numpy as np

report, run, prefix = sys.argv[1:4]
fails = 0
def check(name, cond, detail=""):
    global fails
    print(("ok  " if cond else "FAIL") + " - " + name + ("" if cond else ": " + detail))
    fails += not cond

def est(v, e):  # the report's format
    if math.isnan(v):
        return "not reached"
    if math.isnan(e):
        return f"{v:.4f} (no error"
    return f"{v:.4f} +- {e:.4f}"

def g10(v):  # the CSV's format (empty = not reached / not available)
    return "" if math.isnan(v) else f"{v:.10g}"

def bits(a, b):
    a, b = float(a), float(b)
    return (math.isnan(a) and math.isnan(b)) or np.float64(a).tobytes() == np.float64(b).tobytes()

def table_cell(i, col, v, e):  # nrdiff-post's table shows the attribute
    cell = ("not reached" if math.isnan(v) else
            f"{v:.4f}+-{e:.4f}" if not math.isnan(e) else f"{v:.4f}")
    check(f"point {i}: nrdiff-post's table {col} = the attribute ({cell})",
          cell in post.get(i, ""), post.get(i, ""))

text = open(report).read()
blocks = {int(m.group(1)): m.group(2) for m in
          re.finditer(r"^Grid point (\d+):(.*?)(?=^Grid point |^Summary:)", text, re.M | re.S)}
summary = {}
for line in text.split("\nSummary:")[1].splitlines()[3:]:
    f = line.replace("not reached", "not_reached").split()
    if len(f) == 12 and f[0].isdigit():
        summary[int(f[0])] = f
post = {}
for line in open(prefix + ".post.out"):
    f = line.split()
    if f and f[0].isdigit():
        post[int(f[0])] = line
rows = {int(r["grid_index"]): r for r in csv.DictReader(open(prefix + ".summary.csv"))}
with h5py.File(run, "r") as f, h5py.File(prefix + ".summary.h5", "r") as s:
    h5row = {int(g): i for i, g in enumerate(s["summary/grid_index"][()])}
    for name in sorted(f["points"]):
        p = f["points"][name]
        i = int(p.attrs["index"])
        a = p.attrs
        collapse = a["critical_time_kind"] == "collapse"
        col = "t_C" if collapse else "t_S"
        v, e = float(a["critical_time_measured"]), float(a["critical_time_error"])
        what = "Y2 crosses 1/2" if collapse else "phi crosses F(1) = 0.7752"
        m = re.search(r"measured %s \(%s\) = (.*?)(;|$)" % (col, re.escape(what)),
                      blocks.get(i, ""), re.M)
        got = m.group(1) if m else "(no line)"
        check(f"point {i}: report's measured {col} = critical_time_measured ({est(v, e)})",
              got.startswith(est(v, e)), got)
        r, k = rows[i], h5row[i]
        check(f"point {i}: CSV {col}, {col}_err = the attributes at %.10g",
              r[col] == g10(v) and r[col + "_err"] == g10(e),
              f"{r[col]} +- {r[col + '_err']} vs {g10(v)} +- {g10(e)}")
        check(f"point {i}: summary.h5 {col}, {col}_err = the attributes, bit for bit",
              bits(s["summary/" + col][k], v) and bits(s["summary/" + col + "_err"][k], e))
        sm = summary.get(i, [""] * 12)
        check(f"point {i}: closing summary's measured = the attribute",
              sm[5] == ("not_reached" if math.isnan(v) else f"{v:.4f}"), str(sm))
        table_cell(i, col, v, e)
        kind = "collapse" if collapse else "speciation"
        cloned = f"{kind}/branch_time" in p
        has = "critical_time_cloning" in a
        check(f"point {i}: critical_time_cloning present iff {kind} cloning ran", has == cloned)
        line = (r"t_C by cloning \(phi_C crosses 1/2, branch times only\) = (.*)$" if collapse
                else r"t_S by cloning \(branch times only\) = (.*)$")
        m = re.search(line, blocks.get(i, ""), re.M)
        if not has:
            check(f"point {i}: no {col} cloning line, empty {col}_clone",
                  m is None and r[col + "_clone"] == "")
            continue
        cv, ce = float(a["critical_time_cloning"]), float(a["critical_time_cloning_error"])
        got = m.group(1) if m else "(no line)"
        check(f"point {i}: report's {col} by cloning = critical_time_cloning ({est(cv, ce)})",
              got.startswith(est(cv, ce)), got)
        check(f"point {i}: CSV {col}_clone, {col}_clone_err = the attributes",
              r[col + "_clone"] == g10(cv) and r[col + "_clone_err"] == g10(ce),
              f"{r[col + '_clone']} vs {g10(cv)}")
        check(f"point {i}: summary.h5 {col}_clone = the attribute, bit for bit",
              bits(s["summary/" + col + "_clone"][k], cv)
              and bits(s["summary/" + col + "_clone_err"][k], ce))
        check(f"point {i}: closing summary's cloning = the attribute",
              sm[10] == ("not_reached" if math.isnan(cv) else f"{cv:.4f}"), str(sm))
        table_cell(i, col + "_clone", cv, ce)
        if math.isnan(cv):
            check(f"point {i}: the cloning 'not reached' is in the notes",
                  f"{col}_clone (" in r["notes"] and "not reached" in r["notes"], r["notes"])
sys.exit(1 if fails else 0)
EOF
same() { # name report run prefix
  if /usr/bin/python3 same.py "$2" "$3" "$4" >same.out 2>&1; then
    sed 's/^/       /' same.out; ok "$1"
  else
    sed 's/^/       /' same.out; ko "$1"
  fi
}
"$post" run.h5 >run.post.out 2>&1
same "one critical time in the report, the attributes and nrdiff-post" run.out run.h5 run

# The issue's case (input/default.yml, fewer particles and steps): at g = 1.5
# speciation happens before the earliest branch time, so cloning never
# brackets F(1) while the clone-free curve crosses it.
"$mpirun" 2 "$nrdiff" "$top_src/input/default.yml" -P "grid.strength=[0,0.5,1.5]" \
  -P ensemble.particles=2000 -P ensemble.block_size=200 -P time.steps=1000 \
  -P output.file=dflt.h5 >dflt.out 2>dflt.err \
  && "$post" dflt.h5 >dflt.post.out 2>&1 \
  && ok "input/default.yml with 2000 particles: run and nrdiff-post" \
  || { tail -3 dflt.err dflt.post.out; ko "input/default.yml with 2000 particles"; }
same "default.yml: one critical time everywhere, cloning beside it" dflt.out dflt.h5 dflt
awk -F, 'NR == 4 { exit !($4 == "1.5" && $6 != "" && $12 == "" && $13 == "") }' dflt.summary.csv \
  && grep -q "t_S by cloning (branch times only) = not reached" dflt.out \
  && ok "g = 1.5: headline t_S present, cloning 'not reached' (report and CSV)" \
  || { cat dflt.summary.csv; ko "g = 1.5: headline present, cloning not reached"; }

# The command line (util/cli.c): --name=VALUE is --name VALUE, options after
# the files are options, the defaults are --fe-level 0.02 and --acf-from
# time.T / 2 (3 here); a value that is not a number is a usage error naming
# the option, with nothing written.
same_csv() { cmp -s "$1.summary.csv" "$2.summary.csv" && cmp -s "$1.curves.csv" "$2.curves.csv"; }
"$post" -q -o eq1 --fe-level 0.02 --acf-from 3 run.h5 >/dev/null 2>&1 \
  && "$post" -q -o eq2 run.h5 --fe-level=0.02 --acf-from=3 >/dev/null 2>&1 \
  && same_csv eq1 run && same_csv eq2 run \
  && ok "nrdiff-post: --opt X, --opt=X after the file and the defaults: the same outputs" \
  || ko "nrdiff-post option spellings"
"$post" -q -o nan --acf-from 3x run.h5 >/dev/null 2>err; rc=$?
[ $rc -eq 2 ] && grep -qx "nrdiff-post: --acf-from: not a number: '3x'" err && ! ls nan.* >/dev/null 2>&1 \
  && ok "nrdiff-post: --acf-from 3x: exit 2, the option named, nothing written" \
  || { cat err; ko "nrdiff-post --acf-from 3x (exit $rc)"; }
rm -f eq1.* eq2.* err

# Figures.
if "$post" --plot -q -o figs run.h5 >plot.out 2>&1 && ls figs.*.png >/dev/null 2>&1; then
  ok "--plot writes figures ($(ls figs.*.png | wc -l) PNG)"
else
  sed 's/^/       /' plot.out | tail -5; ko "--plot"
fi

# Bad and partial inputs: a message naming the file and the problem, never a
# crash (exit 2 for an unusable input, 0 for a usable partial one).
expect() { # name exit-status pattern args...
  local name=$1 want=$2 pat=$3; shift 3
  "$post" -q "$@" >bad.out 2>bad.err; local rc=$?
  if [ $rc -eq "$want" ] && grep -q -- "$pat" bad.err; then ok "$name"
  else echo "       exit $rc"; sed 's/^/       /' bad.err | head -3; ko "$name"; fi
}
expect "missing file" 2 "nosuch.h5: No such file" nosuch.h5
echo "hello" >text.h5
expect "not an HDF5 file" 2 "text.h5: not an HDF5 file" text.h5
/usr/bin/python3 -c "import h5py; h5py.File('other.h5', 'w')['x'] = [1, 2]"
expect "an HDF5 file that is not nrdiff's" 2 "other.h5: not an nrdiff output" other.h5
"$mpirun" 1 "$nrdiff" "${params[@]}" -P output.file=ck.h5 -P checkpoint.every=50 \
  -P run.max_wall_time=0.01 "$top_src/input/default.yml" >/dev/null 2>&1
expect "a checkpoint" 2 "checkpoint of an unfinished run" ck.h5.ckpt
expect "a bad file beside a good one: the good one is used" 2 "text.h5" -o mixed text.h5 run.h5
[ -s mixed.summary.csv ] && ok "  ... and its summary written" || ko "mixed inputs summary"
# A damaged dataset (more tests/hostile/post.cases) refuses its whole file,
# naming the file and the dataset: none of its rows or curves in any output,
# the good file's results identical to its results alone.
cp run.h5 damaged.h5
/usr/bin/python3 -c '
import h5py
with h5py.File("damaged.h5", "a") as f:
    t = f["points/0002/observables/count/time"]
    t[3] = t[2]  # a time axis that does not fall
'
expect "a damaged grid point refuses its file: FILE: DATASET: what" 2 \
  "damaged.h5: /points/0002/observables/count/time: value 5.8 at \[3\]: not below" \
  -o refused run.h5 damaged.h5
/usr/bin/python3 - <<'EOF' && ok "  ... its rows and curves in no output, the good file's unchanged" \
  || ko "refused file left out of the outputs"
import h5py, sys
same = all(open(f"refused.{k}").read() == open(f"run.{k}").read()
           for k in ("summary.csv", "curves.csv"))
with h5py.File("refused.summary.h5", "r") as s:
    files = {x.decode() for x in s["summary/file"][()]}
    ok = same and files == {"run.h5"} and list(s["curves"]) == ["0"]
sys.exit(0 if ok else 1)
EOF
# --plot with a prefix no shell would take as one word
if "$post" --plot -q -o "it's \$(x)" run.h5 >plotq.out 2>&1 && [ -s "it's \$(x).phi.png" ]; then
  ok "--plot: any prefix is only a name (no shell)"
else
  sed 's/^/       /' plotq.out | tail -3; ko "--plot with a quote in the prefix"
fi
cp run.h5 partial.h5
/usr/bin/python3 - <<'EOF'
import h5py
with h5py.File("partial.h5", "a") as f:
    del f["points/0000/observables/count"]
    del f["points/0001/final"]
    del f["code"].attrs["wall_seconds"]
    del f["points/0003"]
EOF
expect "an unfinished file with missing datasets" 0 "unfinished run" partial.h5
grep -q "no observables/count" partial.summary.csv && grep -q "no /final block sums" partial.summary.csv \
  && [ "$(wc -l <partial.summary.csv)" -eq 4 ] \
  && ok "  ... each gap named in the notes, the other points complete" \
  || { cat partial.summary.csv; ko "partial notes"; }
# a curve that never reaches its level: branch times all before speciation
"$mpirun" 1 "$nrdiff" "${params[@]}" -P grid.n_train=[0] -P grid.strength=[0] \
  -P "experiment.branch_times=[0.2, 0.4]" -P output.file=early.h5 \
  "$top_src/input/default.yml" >/dev/null 2>&1
"$post" early.h5 >early.out 2>&1
grep -q "not reached" early.out \
  && grep -q "t_S_clone (cloning, branch times only): not reached" early.summary.csv \
  && awk -F, 'NR == 2 { exit !($6 != "" && $12 == "" && $13 == "") }' early.summary.csv \
  && ok "cloning never crossing: 'not reached', empty t_S_clone, the clone-free t_S kept" \
  || { cat early.out; ko "never crossing"; }
/usr/bin/python3 - <<'EOF' && ok "  ... its critical_time_cloning NaN, the headline not" \
  || ko "never crossing: attributes"
import h5py, math
a = h5py.File("early.h5", "r")["points/0000"].attrs
assert math.isnan(a["critical_time_cloning"]) and math.isnan(a["critical_time_cloning_error"])
assert not math.isnan(a["critical_time_measured"])
EOF
"$post" >/dev/null 2>err; [ $? -eq 2 ] && grep -q "no run file" err \
  && ok "no argument: usage, exit 2" || ko "no argument"

# A full disk while writing the summary: exit 1 with the reason, the older
# summary files as they were, nothing partial left (a small tmpfs, as root).
full="$work/full"; mkdir "$full"
if mount -t tmpfs -o size=256k tmpfs "$full" 2>/dev/null; then
  "$post" -q -o "$full/s" early.h5 >/dev/null 2>&1
  before=$(cd "$full" && sha256sum s.*)
  head -c 200k /dev/zero >"$full/filler" 2>/dev/null
  "$post" -q -o "$full/s" early.h5 run.h5 >out 2>err; rc=$?
  after=$(cd "$full" && sha256sum s.*)
  [ $rc -eq 1 ] && grep -q "cannot write" err && [ "$before" = "$after" ] \
    && [ -z "$(ls "$full" | grep '\.tmp$')" ] \
    && ok "full disk: exit 1, the older summary intact, no partial file" \
    || { cat err; ls -la "$full"; ko "full disk (exit $rc)"; }
  umount "$full"
else
  echo "skip - full disk: cannot mount a tmpfs here (needs root)"
fi

finish
