#!/bin/sh
# Refresh the --print-params block of doc/parameters.md from a built
# src/nrdiff (tests/check_cli.sh fails while it is stale).
set -e
cd "$(dirname "$0")/.."
nrdiff=${1:-src/nrdiff}
"$nrdiff" --print-params >doc/.params.yml
awk -v f=doc/.params.yml '
  /<!-- begin print-params -->/ { print; print "```yaml"; while ((getline l < f) > 0) print l; skip = 1; next }
  /<!-- end print-params -->/ { print "```"; skip = 0 }
  !skip' doc/parameters.md >doc/.parameters.md
mv doc/.parameters.md doc/parameters.md
rm -f doc/.params.yml
