#!/usr/bin/env python3
"""The soak test: runs `coproc-soak --json` and checks its report.

Usage: soak_test.py COPROC_SOAK [coproc-soak options, e.g. --seconds 120]

coproc-soak makes the checks and exits 1 when one fails; this driver also makes sure that
every check was made (a check silently left out would otherwise pass), that the run did what
a soak must do (clients killed, cancels and deadlines exercised, requests answered) and prints
the figures for the test log.
"""

import json
import subprocess
import sys

# Beyond the run itself: the capacity measurement, start-up, the drain and the settling.
OVERHEAD_S = 60
EXPECTED_CHECKS = [
    "daemon stayed up",
    "clients ran to the end",
    "no lost requests",
    "outcomes as expected",
    "daemon's books balance",
    "daemon read what clients sent",
    "clients killed",
    "resident memory flat",
    "client segment memory back to baseline",
    "descriptors back to baseline",
    "mappings back to baseline",
]


def run_seconds(args):
    for flag, scale in (("--seconds", 1), ("--minutes", 60)):
        if flag in args:
            return float(args[args.index(flag) + 1]) * scale
    return 120.0


def fail(message, report):
    sys.exit(f"FAIL: {message}\n{json.dumps(report, indent=1)}")


def main():
    soak, options = sys.argv[1], sys.argv[2:]
    timeout_s = run_seconds(options) + OVERHEAD_S
    done = subprocess.run([soak, "--json", *options], capture_output=True, text=True,
                          timeout=timeout_s)
    sys.stderr.write(done.stderr)
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        sys.exit(f"coproc-soak exited {done.returncode} without a JSON report:\n{done.stdout}")
    report.pop("samples_t_rss_anon_file_shmem_kb", None)  # one row a second: too long for a log
    if "error" in report:
        fail(f"the soak could not run: {report['error']}", report)

    checks = {c["name"]: c for c in report["checks"]}
    for name in EXPECTED_CHECKS:
        if name not in checks:
            fail(f"check '{name}' was not made", report)
    for c in report["checks"]:
        print(f"{'PASS' if c['ok'] else 'FAIL'}  {c['name']}: {c['detail']}")
    if not report["ok"] or done.returncode != 0:
        fail(f"coproc-soak exited {done.returncode}", report)

    requests, outcomes = report["requests"], report["requests"]["outcomes"]
    if report["kills"] < 1:
        fail("no client was killed", report)
    for outcome in ("ok", "cancelled", "deadline_exceeded"):
        if outcomes[outcome] < 1:
            fail(f"no request ended {outcome}: the mix did not exercise it", report)
    if requests["ended"] < report["throughput_rps"]:
        fail("fewer requests ended than one second's worth", report)

    memory, latency = report["memory_kb"], report["latency_ns"]
    print(f"{report['duration_s']:.0f} s, {requests['submitted']} requests, {report['kills']} kills, "
          f"{report['throughput_rps']:.0f} req/s (capacity {report['capacity_rps']:.0f}), "
          f"p50 {latency['p50'] / 1e6:.3f} ms, p99 {latency['p99'] / 1e6:.3f} ms; after warm-up "
          f"VmRSS - RssShmem {memory['own_min']}..{memory['own_max']} kB "
          f"(drift {100 * memory['own_drift']:.3f}%), VmRSS {memory['vm_rss_min']}.."
          f"{memory['vm_rss_max']} kB ({100 * memory['vm_rss_drift']:.3f}%)")
    print("ok")


if __name__ == "__main__":
    main()
