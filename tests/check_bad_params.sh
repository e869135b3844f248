#!/usr/bin/env bash
# Malformed parameter files (tests/params/*.yml, listed with the expected
# line and message in tests/params/expected.txt) must make
# 'nrdiff --dry-run FILE' exit with status 2, name FILE:LINE: and the problem
# on stderr, and write nothing.  Also: a missing file and bad -P overrides.
#
# NRDIFF names the program (default: ../src/nrdiff next to this script).
# Works from any directory and with srcdir != builddir.
set -u
here=$(cd "$(dirname "$0")" && pwd)
data="$here/params"
nrdiff=${NRDIFF:-$here/../src/nrdiff}
case $nrdiff in /*) ;; *) nrdiff="$PWD/$nrdiff" ;; esac # we cd below

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   - $1"; }
ko() {
  fail=$((fail + 1))
  echo "FAIL - $1"
  shift
  for why in "$@"; do echo "       $why"; done
  [ -s "$scratch/err" ] && sed 's/^/       stderr: /' "$scratch/err"
}

# Each run gets a fresh empty working directory; its output goes elsewhere so
# that "nothing written" means the directory is still empty.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# expect_failure NAME PATTERN... -- ARGS...: exit 2, every pattern on stderr,
# working directory untouched.
expect_failure() {
  local name=$1
  shift
  local patterns=()
  while [ "$1" != "--" ]; do
    patterns+=("$1")
    shift
  done
  shift
  local work
  work=$(mktemp -d "$scratch/work.XXXXXX")
  (cd "$work" && "$nrdiff" --dry-run "$@" >"$scratch/out" 2>"$scratch/err")
  local rc=$? problems=()
  [ $rc -eq 2 ] || problems+=("exit status $rc, expected 2")
  local pat
  for pat in "${patterns[@]}"; do
    grep -qF -- "$pat" "$scratch/err" || problems+=("stderr lacks: $pat")
  done
  [ -z "$(ls -A "$work")" ] ||
    problems+=("wrote into the working directory:" "$(ls -A "$work")")
  rm -rf "$work"
  if [ ${#problems[@]} -eq 0 ]; then ok "$name"; else ko "$name" "${problems[@]}"; fi
}

if [ ! -x "$nrdiff" ]; then
  echo "FAIL - $nrdiff is not an executable (set NRDIFF)"
  echo "0 passed, 1 failed"
  exit 1
fi

# A valid file must pass, or every failure below could be for a wrong reason.
good="$scratch/good.yml"
printf 'run:\n  seed: 7\ngrid:\n  dimension: [4]\n' >"$good"
work=$(mktemp -d "$scratch/work.XXXXXX")
if (cd "$work" && "$nrdiff" --dry-run "$good" >"$scratch/out" 2>"$scratch/err") &&
  [ -z "$(ls -A "$work")" ]; then
  ok "a valid file passes and writes nothing"
else
  ko "a valid file passes and writes nothing"
fi
rm -rf "$work"

n_files=0
while IFS= read -r entry || [ -n "$entry" ]; do
  case $entry in '' | '#'*) continue ;; esac
  read -r file line message <<<"$entry"
  n_files=$((n_files + 1))
  if [ ! -f "$data/$file" ]; then
    ko "$file" "listed in expected.txt but missing from $data"
    continue
  fi
  expect_failure "$file (line $line)" "$file:$line:" "$message" -- "$data/$file"
done <"$data/expected.txt"

# Every malformed file must be listed, so none is silently skipped.
for f in "$data"/*.yml; do
  grep -q "^$(basename "$f") " "$data/expected.txt" ||
    ko "$(basename "$f")" "not listed in expected.txt"
done
if [ "$n_files" -ge 18 ]; then
  ok "$n_files malformed files checked"
else
  ko "malformed files" "only $n_files listed"
fi

expect_failure "missing file" "no-such-file.yml: cannot open parameter file" \
  -- "$scratch/no-such-file.yml"
expect_failure "bad -P value" "-P grid.dimension=abc" "grid.dimension" \
  -- -P grid.dimension=abc "$good"
expect_failure "-P out of range" "-P ensemble.particles=0" "must be >= 1" \
  -- -P ensemble.particles=0 "$good"
expect_failure "-P without =" "-P grid.dimension" "SECTION.KEY=VALUE" \
  -- -P grid.dimension "$good"
expect_failure "-P unknown key" "-P grid.dimesion=[4]" \
  "did you mean 'grid.dimension'?" -- -P grid.dimesion=[4] "$good"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
