#!/usr/bin/env python3
"""Smoke test of `coproc-bench ort`: both modes run end to end and report sane numbers.

Usage: ort_smoke_test.py COPROC_BENCH MODEL

Tiny iteration counts: this checks the plumbing (worker process, identical inputs, output
comparison, JSON), not performance.
"""

import json
import subprocess
import sys

TIMEOUT_S = 90


def run_json(args):
    done = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S)
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} exited {done.returncode}\n{done.stderr}")
    return json.loads(done.stdout)


def check(condition, message, report):
    if not condition:
        sys.exit(f"FAIL: {message}\n{json.dumps(report, indent=1)}")


def should_report_latency_cases_with_positive_numbers(bench, model):
    report = run_json([bench, "ort", "--model", model, "--json", "--batches", "1,32", "--rounds", "2",
                       "--iterations", "5", "--seconds", "0.05", "--warmup-ms", "10"])
    cases = report.get("cases", [])
    check([c["batch"] for c in cases] == [1, 32], "one case per batch size", report)
    for c in cases:
        for key in ("coproc_p50_ns", "ort_p50_ns", "coproc_p99_ns", "ort_p99_ns", "ratio_p50"):
            check(c[key] > 0, f"batch {c['batch']}: {key} > 0", report)
        check(c["coproc_samples"] == 10 and c["ort_samples"] == 10,
              f"batch {c['batch']}: 2 rounds of 5 calls per side", report)
        check(c["outputs_agree"], f"batch {c['batch']}: coproc and ORT outputs agree", report)
    check(report["ort_call_overhead"]["identity_p50_ns"] > 0, "ORT call overhead measured", report)


def should_report_throughput_of_both_sides(bench, model):
    report = run_json([bench, "ort", "--model", model, "--json", "--processes", "2",
                       "--rounds", "2", "--warmup-ms", "50", "--duration-ms", "300"])
    for side in ("coproc", "ort"):
        check(report[side]["throughput_rps"] > 0 and report[side]["p99_ns"] > 0,
              f"{side}: positive throughput and p99", report)
        check(report[side]["errors"] == 0, f"{side}: no errors", report)
    check(report["throughput_ratio"] > 0, "a throughput ratio", report)
    check(report["outputs_agree"], "coproc and ORT outputs agree", report)


def main():
    bench, model = sys.argv[1], sys.argv[2]
    should_report_latency_cases_with_positive_numbers(bench, model)
    should_report_throughput_of_both_sides(bench, model)
    print("ok")


if __name__ == "__main__":
    main()
