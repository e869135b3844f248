#!/usr/bin/env bash
# data.source: file (doc/data-files.md) end to end, on a two-class Gaussian
# mixture written to a data file by numpy (the mixture of data.source:
# mixture: classes +-mu, |mu|^2 = separation d along (1, ..., 1), unit
# covariance):
#   - the file's statistics equal the mixture's within errors: t_C (Y2) and
#     the clone-free t_S, each the mean over 4 seeds (a seed draws another
#     training set and other noise: the spread over seeds holds the
#     training-set fluctuations that one run's jackknife error does not);
#   - the clone-free t_S (class weights of the training labels) equals the
#     cloning t_S within their errors;
#   - byte-identical science at 1, 2 and 3 ranks and across a stop and
#     restart; training sets over n_train nest; /data records the data;
#   - nrdiff-post reads a file run (its theory from the run);
#   - the data file is never modified.
set -u
. "$(dirname "$0")/testlib.sh"
need_h5py
cd "$work"

/usr/bin/python3 - <<'EOF'
import numpy as np, h5py
rng = np.random.default_rng(20261202)
n, d, sep = 20000, 8, 2.0
lab = rng.integers(0, 2, n)
mu = np.ones(d) * np.sqrt(sep)
x = rng.standard_normal((n, d)) + np.where(lab[:, None] == 0, 1.0, -1.0) * mu
with h5py.File("mix.h5", "w") as f:
    f["data"] = x
    f["labels"] = lab.astype(np.int32)
EOF
[ -f mix.h5 ] && ok "a mixture sample written to mix.h5" || ko "mix.h5"
sum0=$(sha256sum mix.h5)

cat >base.yml <<'EOF'
grid:
  dimension: [8]
  n_train: [1000]
ensemble:
  particles: 2000
  block_size: 100
time:
  T: 5
  t_min: 0.001
  steps: 200
  spacing: log
output:
  every: 5
checkpoint:
  interval: 0
EOF
file=(-P data.source=file -P data.file=mix.h5 -P data.normalize=none)
attrs() { # FILE: t_C, its error, the clone-free t_S, its error
  /usr/bin/python3 -c "
import h5py; a = h5py.File('$1')['points/0000'].attrs
print(a['critical_time_measured'], a['critical_time_error'],
      a['speciation_time_measured'], a['speciation_time_error'])"
}
for s in 1 2 3 4; do
  "$mpirun" 1 "$nrdiff" -P grid.separation=[2] -P run.seed=$s \
    -P output.file=m$s.h5 base.yml >m$s.out 2>&1 || ko "mixture run, seed $s"
  "$mpirun" 1 "$nrdiff" "${file[@]}" -P run.seed=$s -P output.file=f$s.h5 \
    base.yml >f$s.out 2>&1 || ko "file run, seed $s"
  echo "$(attrs m$s.h5) $(attrs f$s.h5)" >>times
done
# per quantity: the two means over seeds differ by less than 4 standard
# errors of the difference (from the spread over the 4 seeds of each)
/usr/bin/python3 - >compare <<'EOF'
import numpy as np
v = np.loadtxt("times")
for name, m, f in (("t_C (Y2)", 0, 4), ("t_S (clone-free)", 2, 6)):
    a, b = v[:, m], v[:, f]
    se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    z = (a.mean() - b.mean()) / se
    print(f"{name}: mixture {a.mean():.4f}, file {b.mean():.4f}, "
          f"z = {z:+.2f} {'ok' if abs(z) < 4 else 'FAIL'}")
EOF
cat compare
while read -r line; do
  case $line in *ok) ok "file = mixture: $line" ;; *) ko "file = mixture: $line" ;; esac
done <compare

# clone-free and cloning t_S of one file run
"$mpirun" 1 "$nrdiff" "${file[@]}" -P output.file=clone.h5 \
  -P "experiment.protocol=[generate, speciation]" \
  -P "experiment.branch_times=[0.6, 0.9, 1.1, 1.3, 1.5, 1.7, 2, 2.5]" \
  base.yml >clone.out 2>&1 || ko "file run with cloning"
/usr/bin/python3 -c "
import h5py, math
a = h5py.File('clone.h5')['points/0000'].attrs
f, ef = a['speciation_time_measured'], a['speciation_time_error']
c, ec = a['speciation_time_cloning'], a['speciation_time_cloning_error']
z = (f - c) / math.hypot(ef, ec)
print(f'clone-free {f:.4f} +- {ef:.4f}, cloning {c:.4f} +- {ec:.4f}, z = {z:+.2f}')
raise SystemExit(int(abs(z) >= 4))" >zclone 2>&1
[ $? -eq 0 ] && ok "clone-free t_S = cloning t_S: $(cat zclone)" \
  || ko "clone-free t_S vs cloning: $(cat zclone)"

# rank-count invariance and a restart (the stop file stops the first step)
small=("${file[@]}" -P grid.n_train=[50,300] -P ensemble.particles=90
       -P ensemble.block_size=20 -P time.steps=60 -P output.every=10
       -P output.trajectories=4 -P checkpoint.stop_file=STOP
       -P "experiment.protocol=[generate, speciation, collapse]"
       -P "experiment.branch_times=[0.1, 0.5, 1]")
for np in 1 2 3; do
  mkdir r$np
  (cd r$np && ln -s ../mix.h5 . && "$mpirun" $np "$nrdiff" "${small[@]}" \
     -P output.file=out.h5 ../base.yml >out 2>err) || { cat r$np/err; ko "small file run on $np rank(s)"; }
done
for np in 2 3; do
  h5diff --exclude-path /code r1/out.h5 r$np/out.h5 >diff 2>&1 \
    && ok "file run: output at $np ranks equals 1 rank (all but /code)" \
    || { head -5 diff; ko "file run: output at $np ranks differs"; }
done
mkdir rs && (cd rs && ln -s ../mix.h5 . && touch STOP && \
  "$mpirun" 2 "$nrdiff" "${small[@]}" -P output.file=out.h5 ../base.yml >out0 2>err0; \
  echo $? >rc0; rm -f STOP; \
  "$mpirun" 3 "$nrdiff" --restart "${small[@]}" -P output.file=out.h5 ../base.yml >out1 2>err1; \
  echo $? >rc1)
[ "$(cat rs/rc0)" = 3 ] && [ "$(cat rs/rc1)" = 0 ] \
  && h5diff --exclude-path /code r1/out.h5 rs/out.h5 >diff 2>&1 \
  && ok "file run: stop on 2 ranks, restart on 3, identical output" \
  || { cat rs/err0 rs/err1 diff | head -10; ko "file run: stop and restart"; }

# a restart with other data (one value of the file changed) is refused:
# exit 2 naming data.file, the checkpoint untouched
mkdir rd && (cd rd && cp ../mix.h5 . && touch STOP && \
  "$mpirun" 2 "$nrdiff" "${small[@]}" -P output.file=out.h5 ../base.yml >out0 2>err0; \
  rm -f STOP; /usr/bin/python3 -c "
import h5py
with h5py.File('mix.h5', 'r+') as f: f['data'][7, 3] += 1e-9"; \
  sha256sum out.h5.ckpt >ck0; \
  "$mpirun" 2 "$nrdiff" --restart "${small[@]}" -P output.file=out.h5 ../base.yml >out1 2>err1; \
  echo $? >rc1)
[ "$(cat rd/rc1)" = 2 ] && grep -q "data.file 'mix.h5' holds other data than when the checkpoint was written" rd/err1 \
  && (cd rd && sha256sum -c --quiet ck0) && [ ! -e rd/out.h5 ] \
  && ok "restart with changed data: refused (exit 2), checkpoint untouched" \
  || { cat rd/err1 | head -5; ko "restart with changed data (exit $(cat rd/rc1))"; }

# /data: the kept points' rows in the seeded order; the training set of
# n = 50 is the first 50 of n = 300's (both are prefixes of one order)
/usr/bin/python3 -c "
import h5py, numpy as np
f = h5py.File('r1/out.h5'); g = f['data']
rows = g['row'][:]
assert g.attrs['points_in_file'] == 20000 and g.attrs['points_kept'] == 20000
assert g.attrs['classes'] == 2 and list(g.attrs['class_labels']) == [0, 1]
assert sorted(rows) == list(range(20000)), 'row is a permutation'
assert rows[:10].tolist() != list(range(10)), 'row is shuffled'
assert len(g.attrs['digest']) == 16
for p in ('0000', '0001'): assert f['points/' + p].attrs['n_train'] in (50, 300)
" 2>err && ok "/data: rows a seeded permutation, classes, digest" \
  || { cat err; ko "/data"; }
# the class subset keeps the order of its points
"$mpirun" 1 "$nrdiff" "${file[@]}" -P data.class_subset=[1] -P grid.n_train=[20] \
  -P ensemble.particles=20 -P ensemble.block_size=20 -P time.steps=5 \
  -P output.file=sub.h5 base.yml >sub.out 2>&1 || ko "class subset run"
/usr/bin/python3 -c "
import h5py, numpy as np
lab = h5py.File('mix.h5')['labels'][:]
full = h5py.File('r1/out.h5')['data/row'][:]
sub = h5py.File('sub.h5')['data/row'][:]
assert (lab[sub] == 1).all() and len(sub) == (lab == 1).sum()
assert (full[lab[full] == 1] == sub).all(), 'the same order'
assert h5py.File('sub.h5')['data'].attrs['classes'] == 1
" 2>err && ok "data.class_subset: the kept class in the same seeded order" \
  || { cat err; ko "class subset order"; }

# nrdiff-post: both critical times and the run's theory
"$top_build/src/nrdiff-post" -q -o post clone.h5 >post.out 2>&1 \
  && /usr/bin/python3 -c "
import csv
r = list(csv.DictReader(open('post.summary.csv')))[0]
import math
assert not math.isnan(float(r['t_S'])) and not math.isnan(float(r['t_S_theory']))
" 2>err && ok "nrdiff-post: t_S and its theory for a file run" \
  || { cat post.out err | head; ko "nrdiff-post on a file run"; }

[ "$(sha256sum mix.h5)" = "$sum0" ] && ok "the data file is unchanged" \
  || ko "the data file changed"
finish
