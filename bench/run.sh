#!/bin/sh
# Everything `make bench` measures (doc/performance.md), each figure against
# a baseline measured in the same run:
#
#   1. the empirical-score step at the issue's sizes (P = 4096, d = 512,
#      n = 4096, float64): three operators x two schemes on 2 threads (the
#      general operator also on 1), against the two bare GEMMs of the same
#      shapes (efficiency), and with the run plan's default block of 256
#      particles;
#   2. the NumPy and PyTorch peers of the same step (bench/peers.py, Debian's
#      /usr/bin/python3, 2 threads), ratio peer / nrdiff in the same run;
#  2b. run.precision float32 against float64, in one process (bench_step
#      single: both steps, DGEMM and SGEMM baselines, score difference);
#   3. the exact two-class mixture step at d = 4096, P = 10000 against
#      drawing its normals;
#   4. cost scaling with d, n and P (three sizes each);
#   5. OpenBLAS's kernels: steps 1 (general operator, 2 threads) and 2
#      again with OPENBLAS_CORETYPE=SkylakeX and =Haswell.  OpenBLAS reads
#      the variable when it is loaded, so it is set per process here.
#
# Sections 1-4 run with the kernels nrdiff itself chooses (coretype
# "auto": blaskernel.h; bench_step makes the same choice), and the peers
# with the same kernels (OPENBLAS_CORETYPE set for them if nrdiff's choice
# differs from OpenBLAS's own).
#
#   bench/run.sh [quick]     quick: sections 1 (2 threads), 2 and 2b only
#
# Environment: BENCH_STEP (default bench/bench_step), BENCH_REPS (default
# 5), BENCH_RESULTS (default bench/results.csv), PYTHON (default
# /usr/bin/python3).  Writes the long-format CSV
#   coretype,kernel,op,scheme,threads,P,d,n,block,metric,value
# and prints the wide lines as they come.  Nothing here asserts a time.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
bench=${BENCH_STEP:-bench/bench_step}
reps=${BENCH_REPS:-5}
out=${BENCH_RESULTS:-bench/results.csv}
py=${PYTHON:-/usr/bin/python3}
mode=${1:-full}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

[ -x "$bench" ] || { echo "run.sh: $bench not built (make bench/bench_step)" >&2; exit 1; }
unset OPENBLAS_CORETYPE

echo "coretype,kernel,op,scheme,threads,P,d,n,block,metric,value" >"$out"

# emit CORETYPE LINE HEADER: the wide line, printed and appended long-format
emit() {
  echo "$2"
  printf '%s\n%s\n' "$3" "$2" | awk -F, -v ct="$1" '
    NR == 1 { for (i = 1; i <= NF; i++) h[i] = $i; next }
    {
      for (i = 1; i <= NF; i++) v[h[i]] = $i
      key = ct "," v["kernel"] "," v["op"] "," v["scheme"] "," v["threads"] "," \
            v["P"] "," v["d"] "," v["n"] "," v["block"]
      for (i = 1; i <= NF; i++)
        if (h[i] ~ /_ms$|efficiency|gflops|over_normals|ratio|maxrel|speedup/)
          print key "," h[i] "," $i
    }' >>"$out"
}

emp_header=$("$bench" header emp)
mix_header=$("$bench" header mix)
single_header=$("$bench" header single)
peer_header="kernel,op,scheme,threads,P,d,n,block,step_ms,gemm_ms,score_maxrel,nrdiff_step_ms,ratio_peer_over_nrdiff"

# emp CORETYPE THREADS P d n scheme op [block] -> prints the line, sets $last
emp() {
  ct=$1 t=$2
  shift 2
  if [ "$ct" = auto ]; then
    last=$(OPENBLAS_NUM_THREADS=$t "$bench" emp "$1" "$2" "$3" "$reps" "$4" "$5" ${6:-})
  else
    last=$(OPENBLAS_CORETYPE=$ct OPENBLAS_NUM_THREADS=$t "$bench" emp "$1" "$2" "$3" "$reps" "$4" "$5" ${6:-})
  fi
  emit "$ct" "$last" "$emp_header"
}

# peers CORETYPE NRDIFF_STEP_MS: NumPy and PyTorch on the dumped problem
peers() {
  ct=$1 ref=$2
  if [ ! -x "$py" ]; then
    echo "run.sh: $py not found: peers skipped" >&2
    return 0
  fi
  [ -f "$tmp/Y.f64" ] || "$bench" dump 4096 512 4096 "$tmp"
  for p in numpy torch; do
    pct=$ct
    [ "$ct" = auto ] && pct=$peer_core
    if [ -z "$pct" ]; then
      line=$(OPENBLAS_NUM_THREADS=2 "$py" "$here/peers.py" "$tmp" 4096 512 4096 "$reps" $p) || line=
    else
      line=$(OPENBLAS_CORETYPE=$pct OPENBLAS_NUM_THREADS=2 "$py" "$here/peers.py" "$tmp" 4096 512 4096 "$reps" $p) || line=
    fi
    [ -n "$line" ] || { echo "run.sh: peer $p unavailable" >&2; continue; }
    # peer,version,threads,P,d,n,step_ms,gemm_ms,score_maxrel
    wide=$(echo "$line" | awk -F, -v r="$ref" '{
      printf "peer_%s,general,euler,%s,%s,%s,%s,%s,%s,%s,%s,%s,%.3f\n",
        $1, $3, $4, $5, $6, $4, $7, $8, $9, r, $7 / r }')
    emit "$ct" "$wide" "$peer_header"
    eval "peer_${p}_ms=$(field 9 "$wide")"
  done
}

field() { # field N LINE
  echo "$2" | cut -d, -f"$1"
}

"$bench" info
core=$("$bench" info | sed 's/^openblas_core=\([^,]*\).*/\1/')
own=$(NRDIFF_BLAS_KERNEL=default "$bench" info | sed 's/^openblas_core=\([^,]*\).*/\1/')
peer_core=
[ "$core" != "$own" ] && peer_core=$core

echo "== 1. empirical step, P = 4096, d = 512, n = 4096 (efficiency = gemm_ms / step_ms)"
echo "$emp_header"
threads="1 2"
[ "$mode" = quick ] && threads=2
ref=
for t in $threads; do
  ops="general isoq iso"
  [ "$t" = 1 ] && ops=general
  for op in $ops; do
    for s in euler exponential; do
      emp auto "$t" 4096 512 4096 "$s" "$op"
      if [ "$t" = 2 ] && [ "$op" = general ] && [ "$s" = euler ]; then
        ref=$(field 9 "$last")
      fi
    done
  done
done
emp auto 2 4096 512 4096 euler general 256

echo "== 2. peers of the general euler step (ratio = peer step / nrdiff step, same run)"
echo "$peer_header"
peer_numpy_ms= peer_torch_ms=
peers auto "$ref"

echo "== 2b. run.precision float32 against float64 (same process; efficiency32 = sgemm_ms / step32_ms)"
echo "$single_header"
for op in general iso; do
  line=$(OPENBLAS_NUM_THREADS=2 "$bench" single 4096 512 4096 "$reps" euler "$op")
  emit auto "$line" "$single_header"
  if [ "$op" = general ]; then
    s32=$(field 10 "$line")
    for p in numpy torch; do
      eval "pm=\${peer_${p}_ms:-}"
      [ -n "$pm" ] && awk -v p="$p" -v a="$pm" -v b="$s32" \
        'BEGIN { printf "   %s step / nrdiff float32 step = %.3f (float64 peer)\n", p, a / b }'
    done
  fi
done
line=$(OPENBLAS_NUM_THREADS=2 "$bench" single 4096 512 4096 "$reps" euler general 256)
emit auto "$line" "$single_header"
[ "$mode" = quick ] && { echo "wrote $out"; exit 0; }

echo "== 3. two-class mixture step, U = I, g = 0, d = 4096, P = 10000 (vs its normals)"
echo "$mix_header"
for s in euler exponential; do
  for b in 10000 256; do
    line=$(OPENBLAS_NUM_THREADS=2 "$bench" mix 10000 4096 "$reps" "$s" "$b")
    emit auto "$line" "$mix_header"
  done
done

echo "== 4. scaling, general euler, 2 threads"
echo "$emp_header"
for d in 256 1024; do emp auto 2 4096 "$d" 4096 euler general; done
for n in 2048 8192; do emp auto 2 4096 512 "$n" euler general; done
for P in 1024 16384; do emp auto 2 "$P" 512 4096 euler general; done

echo "== 5. OpenBLAS kernels forced by OPENBLAS_CORETYPE"
for ct in SkylakeX Haswell; do
  OPENBLAS_CORETYPE=$ct "$bench" info
  echo "$emp_header"
  emp "$ct" 2 4096 512 4096 euler general
  r=$(field 9 "$last")
  emp "$ct" 2 4096 512 4096 exponential general
  echo "$peer_header"
  peers "$ct" "$r"
done
echo "wrote $out"
