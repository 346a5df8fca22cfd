#!/usr/bin/env bash
# The systemd unit as shipped (tools/systemd/coprocd.service), checked by systemd itself:
# `systemd-analyze verify` on a copy whose ExecStart points at this build's coprocd. systemd
# only warns about a key it cannot parse, so any output at all fails the test.
set -euo pipefail
unit=$1
bin_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed "s|/usr/local/bin/|$bin_dir/|g" "$unit" > "$work/coprocd.service"
out=$(systemd-analyze verify "$work/coprocd.service" 2>&1) || { echo "$out"; exit 1; }
if [ -n "$out" ]; then
  echo "$out"
  exit 1
fi
grep -q "^ExecStart=$bin_dir/coprocd " "$work/coprocd.service"
echo "systemd-analyze verify: clean"
