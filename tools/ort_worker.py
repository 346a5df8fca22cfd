#!/usr/bin/env python3
"""ONNX Runtime as a child of coproc-bench: times InferenceSession runs in-process.

coproc-bench cannot link ONNX Runtime (no C/C++ headers on the machine), so it starts this worker
and speaks to it over stdin/stdout, one line per request and one line per reply. Fields are
separated by TABs (paths may hold spaces). Replies start with "ok" or "error<TAB>message".
Diagnostics go to stderr; stdout carries only replies.

  load  PATH THREADS            InferenceSession with intra_op = inter_op = THREADS, sequential
                                execution, graph optimisation ALL, CPUExecutionProvider.
                                -> ok VERSION
  input NAME DTYPE DIMS FILE    input NAME is the raw little-endian DTYPE ("float32", "int64",
                                ...) array of shape DIMS ("1,128") in FILE, dense row-major.
                                coproc-bench writes the same bytes it gives its own runtime, so
                                both sides run on identical inputs.  -> ok
  outputs DIR                   runs once with the inputs given, writes output j as raw bytes
                                to DIR/ort.out<j>.raw and binds preallocated buffers of those
                                shapes for every later run.  -> ok DTYPE:DIMS ... (one per output)
  run ITERATIONS MAX_NS         times calls until ITERATIONS calls or MAX_NS elapsed (at least one
                                call).  -> ok N SAMPLE_NS...
  loop START_NS WARMUP_NS DURATION_NS
                                closed loop, one call after another, from START_NS
                                (CLOCK_MONOTONIC, as coproc_now_ns) for WARMUP_NS + DURATION_NS;
                                keeps calls that started after the warm-up and ended before the
                                end, as coproc-bench load does.  -> ok N SAMPLE_NS...
  overhead ITERATIONS           the fixed cost of one timed call through this path: an Identity
                                model on one float, same session options.
                                -> ok IDENTITY_P50_NS IDENTITY_P99_NS TIMER_P50_NS
  quit                          (or end of input) exit 0

Timed calls go through IOBinding with inputs bound once as OrtValues and outputs bound to
preallocated OrtValues, so a call is one run_with_iobinding: no per-call numpy conversion or
output allocation (coproc's runtime also writes into caller-owned outputs). Each call is timed
with time.perf_counter_ns() (CLOCK_MONOTONIC on Linux) around that one call.
"""

import sys
import time

import numpy as np
import onnxruntime as ort

DTYPES = {"float32", "float16", "int64", "int32", "int8", "uint8", "bool"}


class Worker:
    def __init__(self):
        self.session = None
        self.threads = 1
        self.feeds = {}
        self.binding = None
        self.bound = []  # the OrtValues the binding reads and writes, kept alive here

    def options(self):
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = self.threads
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return so

    def load(self, path, threads):
        self.threads = int(threads)
        self.session = ort.InferenceSession(path, self.options(),
                                            providers=["CPUExecutionProvider"])
        self.feeds = {}
        self.binding = None
        self.bound = []
        return [ort.__version__]

    def input(self, name, dtype, dims, path):
        if dtype not in DTYPES:
            raise ValueError(f"input {name}: unknown dtype {dtype}")
        shape = tuple(int(d) for d in dims.split(",")) if dims else ()
        array = np.fromfile(path, dtype=np.dtype(dtype))
        self.feeds[name] = np.ascontiguousarray(array.reshape(shape))
        self.binding = None
        return []

    def outputs(self, directory):
        declared = [i.name for i in self.session.get_inputs()]
        missing = [n for n in declared if n not in self.feeds]
        if missing:
            raise ValueError("inputs not given: " + ", ".join(missing))
        results = self.session.run(None, self.feeds)
        binding = self.session.io_binding()
        self.bound = []
        for name, array in self.feeds.items():
            value = ort.OrtValue.ortvalue_from_numpy(array)
            binding.bind_ortvalue_input(name, value)
            self.bound.append(value)
        reply = []
        for j, (meta, array) in enumerate(zip(self.session.get_outputs(), results)):
            array = np.ascontiguousarray(array)
            array.tofile(f"{directory}/ort.out{j}.raw")
            value = ort.OrtValue.ortvalue_from_numpy(np.empty_like(array))
            binding.bind_ortvalue_output(meta.name, value)
            self.bound.append(value)
            reply.append(f"{array.dtype.name}:{','.join(str(d) for d in array.shape)}")
        self.binding = binding
        return reply

    def bound_binding(self):
        if self.binding is None:
            raise ValueError("no outputs bound: send 'outputs' after the inputs")
        return self.binding

    def run(self, iterations, max_ns):
        binding, run = self.bound_binding(), self.session.run_with_iobinding
        iterations, end = int(iterations), time.perf_counter_ns() + int(max_ns)
        samples = []
        while True:
            t0 = time.perf_counter_ns()
            run(binding)
            t1 = time.perf_counter_ns()
            samples.append(t1 - t0)
            if len(samples) >= iterations or t1 >= end:
                return [str(len(samples))] + [" ".join(map(str, samples))]

    def loop(self, start_ns, warmup_ns, duration_ns):
        binding, run = self.bound_binding(), self.session.run_with_iobinding
        start_ns = int(start_ns)
        measure_from = start_ns + int(warmup_ns)
        end = measure_from + int(duration_ns)
        # perf_counter_ns and monotonic_ns both read CLOCK_MONOTONIC on Linux, as coproc_now_ns.
        while time.monotonic_ns() < start_ns:
            time.sleep(0.0001)
        samples = []
        t1 = time.perf_counter_ns()
        while t1 < end:
            t0 = time.perf_counter_ns()
            run(binding)
            t1 = time.perf_counter_ns()
            if t0 >= measure_from and t1 <= end:
                samples.append(t1 - t0)
        return [str(len(samples))] + [" ".join(map(str, samples))]

    def overhead(self, iterations):
        from onnx import TensorProto, helper

        graph = helper.make_graph(
            [helper.make_node("Identity", ["x"], ["y"])], "identity",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8
        session = ort.InferenceSession(model.SerializeToString(), self.options(),
                                       providers=["CPUExecutionProvider"])
        binding = session.io_binding()
        x = ort.OrtValue.ortvalue_from_numpy(np.zeros(1, np.float32))
        y = ort.OrtValue.ortvalue_from_numpy(np.zeros(1, np.float32))
        binding.bind_ortvalue_input("x", x)  # x and y live until the calls are done
        binding.bind_ortvalue_output("y", y)
        iterations = int(iterations)
        identity, timer = [], []
        for _ in range(iterations // 10):  # warm-up
            session.run_with_iobinding(binding)
        for _ in range(iterations):
            t0 = time.perf_counter_ns()
            session.run_with_iobinding(binding)
            identity.append(time.perf_counter_ns() - t0)
            t0 = time.perf_counter_ns()
            timer.append(time.perf_counter_ns() - t0)
        identity.sort()
        timer.sort()
        at = lambda v, q: v[int(q * (len(v) - 1))]  # noqa: E731 (same rule as bench/common/stats.h)
        return [str(at(identity, 0.5)), str(at(identity, 0.99)), str(at(timer, 0.5))]


def main():
    worker = Worker()
    commands = {"load": worker.load, "input": worker.input, "outputs": worker.outputs,
                "run": worker.run, "loop": worker.loop, "overhead": worker.overhead}
    for line in sys.stdin:
        fields = line.rstrip("\n").split("\t")
        if fields[0] == "quit":
            break
        try:
            command = commands.get(fields[0])
            if command is None:
                raise ValueError(f"unknown command '{fields[0]}'")
            reply = "\t".join(["ok"] + command(*fields[1:]))
        except Exception as e:  # every failure goes back to coproc-bench as a reply
            reply = "error\t" + f"{fields[0]}: {type(e).__name__}: {e}".replace("\n", " ")
        sys.stdout.write(reply + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
