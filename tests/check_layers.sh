#!/usr/bin/env bash
# The layers of the source tree (doc/development.md), as the build keeps
# them: each folder includes only its own headers and those of the layers
# below it,
#   util <- config <- core <- io <- run,   postprocess (nrdiff-post): not run;
# core and config are pure: no MPI, no HDF5, no logging, no exit, no output
# of their own (a FILE * they are given is fine); and no source file is over
# 600 lines unless it says why in its first lines ("Longer than 600 lines:").
set -u
. "$(dirname "$0")/testlib.sh"
cd "$top_src"

# allowed "layer/..." includes per folder
declare -A allowed=(
  [src/util]="util"
  [src/config]="util config"
  [src/core]="util config core"
  [src/io]="util config core io"
  [src/run]="util config core io run"
  [postprocess]="util config core io"
  [src/import]="util io import"
)
# util headers the pure layers may use: errors and vector helpers only
pure_util="util/error.h util/simd.h"

for dir in src/util src/config src/core src/io src/run postprocess src/import; do
  bad=""
  for f in "$dir"/*.[ch]; do
    [ -e "$f" ] || continue
    while IFS= read -r inc; do
      layer=${inc%%/*}
      case " ${allowed[$dir]} " in *" $layer "*) ;; *) bad+="$f: $inc; " ;; esac
      if [ "$dir" = src/core ] || [ "$dir" = src/config ]; then
        case $layer in util) case " $pure_util " in *" $inc "*) ;; *) bad+="$f: $inc; " ;; esac ;; esac
      fi
    done < <(sed -n 's/^#include "\([a-z]*\/[a-z0-9_]*\.h\)".*/\1/p' "$f")
  done
  [ -z "$bad" ] && ok "$dir includes only ${allowed[$dir]}" || ko "$dir crosses a layer: $bad"
done

# what the pure layers may not do (comments stripped: a comment may name it)
for dir in src/core src/config; do
  hits=$(for f in "$dir"/*.[ch]; do
    sed 's://.*$::; s:/\*.*\*/::g' "$f" | grep -nE \
      '#include <(mpi|hdf5|H5[A-Za-z]*)\.h>|\bMPI_[A-Z][a-z_]*\(|\bH5[A-Z][a-z]*[A-Z]?[a-z_0-9]*\(|\b(exit|_exit|abort|quick_exit)\(|\bnrd_(warn|info|debug|fatal|abort)\b|\bNRD_ABORT\b|\b(printf|puts|perror)\(|\bstd(out|err)\b' \
      | sed "s|^|$f:|"
  done)
  [ -z "$hits" ] && ok "$dir: no MPI, HDF5, logging, exit or output of its own" \
    || { echo "$hits" | head -10 | sed 's/^/       /'; ko "$dir does what a pure layer may not"; }
done

# the programs' own folders: nothing outside the layers
stray=$(ls src/*.c src/*.h 2>/dev/null | grep -v 'src/git-describe.h')
[ -z "$stray" ] && ok "every source file is in a layer" || ko "sources outside the layers: $stray"

# sizes
long=""
for f in src/*/*.[ch] postprocess/*.[ch]; do
  n=$(wc -l <"$f")
  [ "$n" -le 600 ] && continue
  head -15 "$f" | grep -q "Longer than 600 lines:" || long+="$f ($n lines); "
done
[ -z "$long" ] && ok "no source file over 600 lines without a stated reason" \
  || ko "over 600 lines with no reason at the top: $long"

finish
