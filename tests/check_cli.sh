#!/usr/bin/env bash
# Command-line contract of src/nrdiff: help, version, the print-params /
# dry-run round trip, overrides, usage errors (exit 2, nothing written).
set -u
. "$(dirname "$0")/testlib.sh"
# failures show the last command's stderr
ko() { fail=$((fail + 1)); echo "FAIL - $1"; [ -f err ] && sed 's/^/       /' err; rm -f err; }
cd "$work"

"$nrdiff" --help >out 2>err && grep -q "Usage: nrdiff" out \
  && ok "--help" || ko "--help"
"$nrdiff" --version >out 2>err && grep -q "git describe" out && grep -q "HDF5" out \
  && grep -q "FFTW" out && grep -q "BLAS" out && grep -q "MPI" out \
  && ok "--version names nrdiff, git, MPI, HDF5, FFTW, BLAS" || ko "--version"

"$nrdiff" --print-params >p.yml 2>err && "$nrdiff" --dry-run p.yml >out 2>err \
  && [ "$(ls)" = "$(printf 'err\nout\np.yml')" ] \
  && ok "print-params | dry-run round trip writes nothing" || ko "print-params round trip"
grep -q "dimension:" p.yml && grep -q "#" p.yml \
  && ok "print-params has keys and comments" || ko "print-params content"
sed -n '/<!-- begin print-params -->/,/<!-- end print-params -->/p' \
  "$top_src/doc/parameters.md" | sed '1,2d;$d' | sed '$d' >doc.yml
cmp -s doc.yml p.yml && ok "doc/parameters.md shows the current --print-params" \
  || { diff doc.yml p.yml | head -5; ko "doc/parameters.md is out of date"; }
rm -f doc.yml

"$nrdiff" --dry-run -P grid.dimension=[8,16,32] -P grid.strength=[0,1] p.yml >out 2>err \
  && grep -Eq "grid points +: 6" out \
  && ok "-P overrides (lists) reach the plan" || ko "-P overrides"

"$nrdiff" --print-output-file -P output.file=x/y.h5 p.yml >out 2>err \
  && [ "$(cat out)" = x/y.h5 ] && [ "$(ls)" = "$(printf 'err\nout\np.yml')" ] \
  && ok "--print-output-file prints the resolved output.file, writes nothing" \
  || ko "--print-output-file"

# (an input of data.source: file runs beside its data file: Fashion-MNIST,
# imported in a directory of its own)
fm=/usr/share/datasets/fashion-mnist
for f in "$top_src"/input/*.yml; do
  if grep -q "^  source: file" "$f"; then
    if [ ! -f $fm/train-images-idx3-ubyte.gz ]; then
      echo "skip - dry-run $(basename "$f"): $fm not installed"; continue
    fi
    mkdir -p data
    [ -f data/fashion-train.h5 ] || "$top_build/src/nrdiff-import" -o data/fashion-train.h5 \
      $fm/train-images-idx3-ubyte.gz $fm/train-labels-idx1-ubyte.gz >/dev/null
    (cd data && "$nrdiff" --dry-run "$f" >out 2>err) \
      && ok "dry-run $(basename "$f")" || { cat data/err; ko "dry-run $(basename "$f")"; }
    continue
  fi
  "$nrdiff" --dry-run "$f" >out 2>err \
    && ok "dry-run $(basename "$f")" || ko "dry-run $(basename "$f")"
done
rm -rf data

expect_usage_error() { # name, pattern, command...
  local name=$1 pat=$2; shift 2
  rm -f out err
  "$@" >out 2>err; local rc=$?
  if [ $rc -eq 2 ] && grep -q -- "$pat" err && [ "$(ls)" = "$(printf 'err\nout\np.yml')" ]; then
    ok "$name"
  else
    echo "       exit status $rc"; ko "$name"
  fi
}
expect_usage_error "no parameter file" "no parameter file" "$nrdiff"
expect_usage_error "unknown option" "unknown option" "$nrdiff" --frobnicate p.yml
expect_usage_error "two parameter files" "more than one" "$nrdiff" p.yml p.yml
expect_usage_error "missing file" "missing.yml" "$nrdiff" --dry-run missing.yml
expect_usage_error "bad override" "-P" "$nrdiff" --dry-run -P grid.dimension=abc p.yml
expect_usage_error "override without =" "-P" "$nrdiff" --dry-run -P grid.dimension p.yml
expect_usage_error "uturn without uturn_times" "experiment.uturn_times" \
  "$nrdiff" --dry-run -P "experiment.protocol=[uturn]" p.yml

# BLAS kernel choice (re-executes before MPI_Init).  Who decides, first that
# applies: --blas-kernel, NRDIFF_BLAS_KERNEL, OPENBLAS_CORETYPE, auto; -V and
# /code@blas say which (testlib.sh cleared all of them; set here one by one).
kernels() { "$nrdiff" "$@" -V 2>&1 | sed -n 's/.*kernels: //p'; }
[ "$(kernels --blas-kernel Haswell)" = "Haswell (--blas-kernel Haswell)" ] \
  && ok "--blas-kernel Haswell: OpenBLAS runs its Haswell kernels, -V says why" \
  || { kernels --blas-kernel Haswell; ko "--blas-kernel"; }
[ "$(NRDIFF_BLAS_KERNEL=Nehalem kernels)" = "Nehalem (NRDIFF_BLAS_KERNEL=Nehalem)" ] \
  && ok "NRDIFF_BLAS_KERNEL=Nehalem decides" || ko "NRDIFF_BLAS_KERNEL"
NRDIFF_BLAS_KERNEL=default kernels | grep -q "(NRDIFF_BLAS_KERNEL=default: OpenBLAS's own choice)" \
  && ok "NRDIFF_BLAS_KERNEL=default: OpenBLAS's own choice" || ko "NRDIFF_BLAS_KERNEL=default"
kernels | grep -q "(auto" && ok "-V reports the automatic kernel choice" \
  || ko "auto kernel report"
[ "$(OPENBLAS_CORETYPE=Nehalem kernels)" = "Nehalem (OPENBLAS_CORETYPE=Nehalem in the environment)" ] \
  && ok "OPENBLAS_CORETYPE in the environment beats auto" || ko "OPENBLAS_CORETYPE over auto"
[ "$(OPENBLAS_CORETYPE=Nehalem NRDIFF_BLAS_KERNEL=Haswell kernels)" = "Haswell (NRDIFF_BLAS_KERNEL=Haswell)" ] \
  && ok "NRDIFF_BLAS_KERNEL beats OPENBLAS_CORETYPE" || ko "NRDIFF_BLAS_KERNEL over OPENBLAS_CORETYPE"
[ "$(OPENBLAS_CORETYPE=Nehalem NRDIFF_BLAS_KERNEL=Nehalem kernels --blas-kernel Haswell)" \
    = "Haswell (--blas-kernel Haswell)" ] \
  && ok "--blas-kernel beats NRDIFF_BLAS_KERNEL and OPENBLAS_CORETYPE" || ko "--blas-kernel precedence"
OPENBLAS_CORETYPE=Nehalem kernels --blas-kernel auto | grep -q "(--blas-kernel auto" \
  && ok "--blas-kernel auto over OPENBLAS_CORETYPE: chosen afresh" || ko "--blas-kernel auto over a preset"
expect_usage_error "--blas-kernel Bogus: usage error" "no 'Bogus' kernels" \
  "$nrdiff" --blas-kernel Bogus --dry-run p.yml
expect_usage_error "NRDIFF_BLAS_KERNEL=Bogus: usage error" "NRDIFF_BLAS_KERNEL=Bogus" \
  env NRDIFF_BLAS_KERNEL=Bogus "$nrdiff" --dry-run p.yml
expect_usage_error "--blas-kernel without a value" "blas-kernel" \
  "$nrdiff" --dry-run p.yml --blas-kernel
"$mpirun" 2 "$nrdiff" --blas-kernel Bogus --dry-run p.yml >out 2>err; rc=$?
[ $rc -eq 2 ] && [ "$(grep -c "no 'Bogus' kernels" err)" -eq 1 ] \
  && ok "--blas-kernel Bogus on 2 ranks: exit 2, one message" \
  || { echo "       exit $rc"; ko "--blas-kernel Bogus under MPI"; }
rm -f out err
"$mpirun" 2 "$nrdiff" --blas-kernel=Haswell -P ensemble.particles=64 -P time.steps=20 \
  -P output.file=k.h5 p.yml >kout 2>kerr \
  && /usr/bin/python3 -c "import h5py,sys; sys.exit('Haswell (--blas-kernel Haswell)' not in h5py.File('k.h5')['code'].attrs['blas'])" 2>/dev/null \
  && ok "--blas-kernel under MPI: the run completes, /code@blas says who decided" \
  || { tail -3 kerr; ko "--blas-kernel under MPI"; }
rm -f k.h5 k.h5.done kout kerr

# A bad file under MPI: every rank exits 2, the message is printed once.
printf 'grid:\n  dimension: [0]\n' >bad.yml
"$mpirun" 3 "$nrdiff" --dry-run bad.yml >out 2>err; rc=$?
n=$(grep -c "bad.yml:2:" err)
rm -f bad.yml
[ $rc -eq 2 ] && [ "$n" -eq 1 ] && ok "bad file on 3 ranks: exit 2, one message" \
  || { echo "       exit $rc, $n messages"; ko "bad file on 3 ranks"; }

# One command-line parser (src/util/cli.c) for nrdiff and nrdiff-post: every
# option of each program's table, and every line of its description, is in
# its --help; the options each program has always had are still there; a
# usage error reads the same in both programs (exit 2, nothing written).
post="$top_build/src/nrdiff-post"
cat >table_help.py <<'EOF'
import ast, re, sys
source, table, help_file = sys.argv[1:4]
text = open(source).read()
lit = r'"(?:[^"\\]|\\.)*"'
block = re.search(r"nrd_cli_option %s\[\] = \{(.*?)NRD_CLI_LAST_OPTIONS\((%s)\)\};" % (table, lit),
                  text, re.S)
entry = re.compile(r'\{"([a-z-]+)",\s*(\'.\'|0),\s*(NULL|%s),\s*((?:%s\s*)+),\s*\w+\}' % (lit, lit))
helps = open(help_file).read()
entries = entry.findall(block.group(1)) if block else []
if block:  # the options every program has (util/cli.h)
    entries += [("version", "'V'", "NULL", block.group(2)), ("help", "'h'", "NULL", '"this help"')]
n = 0
for name, letter, value, desc in entries:
    n += 1
    head = ("-%s, " % letter[1] if letter != "0" else "    ") + "--" + name
    if value != "NULL":
        head += " " + value[1:-1]
    lines = "".join(ast.literal_eval(s) for s in re.findall(lit, desc)).split("\n")
    want = re.escape("  " + head) + r" +" + r"\n +".join(re.escape(l) for l in lines) + r"\n"
    if not re.search(want, helps):
        print("not in --help: %s: %s" % (head, lines))
        sys.exit(1)
print("%d options" % n)
sys.exit(0 if n > 0 else 1)
EOF
"$nrdiff" --help >help.txt 2>err \
  && /usr/bin/python3 table_help.py "$top_src/src/run/main.c" options help.txt >out 2>>err \
  && ok "nrdiff --help: every option of the table with its description ($(cat out))" \
  || { cat out; ko "nrdiff --help against its table"; }
"$post" --help >help.txt 2>err \
  && /usr/bin/python3 table_help.py "$top_src/postprocess/post_main.c" cli_options help.txt >out 2>>err \
  && ok "nrdiff-post --help: every option of the table with its description ($(cat out))" \
  || { cat out; ko "nrdiff-post --help against its table"; }
"$nrdiff" --help >help.txt 2>err; missing=""
for o in -P,--set -n,--dry-run -r,--restart --auto-restart --print-output-file --overwrite \
         --blas-kernel --grid-index --print-params -v,--verbose -V,--version -h,--help; do
  grep -q -- "^  *${o/,/, } " help.txt || missing+=" $o"
done
[ -z "$missing" ] && ok "nrdiff --help: every option nrdiff has had" || ko "nrdiff --help lacks$missing"
"$post" --help >help.txt 2>err; missing=""
for o in -o,--output --plot --acf-from --fe-level -q,--quiet -V,--version -h,--help; do
  grep -q -- "^  *${o/,/, } " help.txt || missing+=" $o"
done
[ -z "$missing" ] && ok "nrdiff-post --help: every option nrdiff-post has had" \
  || ko "nrdiff-post --help lacks$missing"
rm -f help.txt table_help.py out err
same_usage_error() { # name, form (@: the option), nrdiff's option, nrdiff-post's, then
  local name=$1 form=$2 oa=$3 ob=$4 a=() b=() # nrdiff's arguments -- nrdiff-post's
  shift 4
  while [ "$1" != -- ]; do a+=("$1"); shift; done; shift; b=("$@")
  expect_usage_error "nrdiff: $name" "^nrdiff: error: ${form//@/$oa}\$" "$nrdiff" "${a[@]}"
  expect_usage_error "nrdiff-post: $name" "^nrdiff-post: ${form//@/$ob}\$" "$post" "${b[@]}"
}
same_usage_error "an unknown option" "unknown option '@' (see --help)" --frobnicate --frobnicate \
  --frobnicate p.yml -- --frobnicate p.yml
same_usage_error "an unknown option with a value" "unknown option '@' (see --help)" \
  --frobnicate --frobnicate --frobnicate=3 p.yml -- --frobnicate=3 p.yml
same_usage_error "an unknown letter in a bundle" "unknown option '@' (see --help)" -x -x \
  -nx p.yml -- -qx p.yml
same_usage_error "a value missing" "option '@' needs an argument (see --help)" --set --fe-level \
  p.yml --set -- p.yml --fe-level
same_usage_error "a letter's value missing" "option '@' needs an argument (see --help)" -P -o \
  p.yml -P -- p.yml -o
same_usage_error "a value to an option without one" "option '@' takes no value (see --help)" \
  --dry-run --plot --dry-run=1 p.yml -- --plot=1 p.yml
expect_usage_error "an ambiguous prefix names its options" \
  "option '--print' is ambiguous: --print-output-file, --print-params (see --help)" \
  "$nrdiff" --print p.yml
expect_usage_error "--grid-index -1: a usage error" "--grid-index needs a grid point number >= 0, got '-1'" \
  "$nrdiff" --grid-index -1 --dry-run p.yml
expect_usage_error "--grid-index=1x: a usage error" "--grid-index needs a grid point number >= 0, got '1x'" \
  "$nrdiff" --grid-index=1x --dry-run p.yml
expect_usage_error "an abbreviated --blas-kernel is refused, not ignored" "abbreviation of --blas-kernel" \
  "$nrdiff" --blas-k Haswell --dry-run p.yml
"$nrdiff" --dry -v -n --grid-index=1 -P time.steps=40 --set=grid.strength=[0,1] p.yml >out 2>err \
  && grep -q "Only grid point 1 runs" out \
  && ok "nrdiff: --name=VALUE, a prefix and repeated -P/--set all parse" || ko "nrdiff spellings"
rm -f out err

finish
