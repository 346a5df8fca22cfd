#!/usr/bin/env bash
# The systemd unit as shipped (tools/systemd/coprocd.service.in), checked by systemd itself:
# `systemd-analyze verify` on a copy whose install paths name this build (ExecStart its coprocd).
# systemd only warns about a key it cannot parse, so any output at all fails the test. The unit as
# installed is checked by tests/install.
set -euo pipefail
unit_in=$1
bin_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed -e "s|@CMAKE_INSTALL_FULL_BINDIR@|$bin_dir|g" -e "s|@CMAKE_INSTALL_FULL_DOCDIR@|$work|g" \
  "$unit_in" > "$work/coprocd.service"
if grep -n "@[A-Za-z_]*@" "$work/coprocd.service"; then
  echo "a placeholder this test does not fill: add it here"
  exit 1
fi
out=$(systemd-analyze verify "$work/coprocd.service" 2>&1) || { echo "$out"; exit 1; }
if [ -n "$out" ]; then
  echo "$out"
  exit 1
fi
grep -q "^ExecStart=$bin_dir/coprocd " "$work/coprocd.service"
echo "systemd-analyze verify: clean"
