#!/usr/bin/env bash
# Builds the llama.cpp that coproc's LLM engine is held against (issue 15): llama-bench,
# llama-batched-bench, llama-tokenize, llama-server and the libllama shared library, from the
# llama.cpp vendored in the llama-cpp-python source package (pinned below).
#
#   tools/llm/build_llamacpp.sh [BUILD_DIR]      BUILD_DIR defaults to build/llamacpp
#
# Environment:
#   LLAMACPP_SRC   an already unpacked llama.cpp tree to build instead of downloading the sdist
#   JOBS           parallel compile jobs (default: nproc)
#
# The sdist is fetched with pip (no binaries, no dependencies) into BUILD_DIR/sdist and unpacked
# there once; a second run reuses both and only lets CMake rebuild what changed. It is a one-off
# (about 12 minutes on 2 cores) and is not part of `make test`: the tests read the fixtures that
# tools/llm/make_reference_fixtures.sh produced with this build and that are committed.
#
# Configuration: Release, GGML_NATIVE=ON (the reference runs with the instructions this CPU
# has, as its users' builds do), shared libraries (llama_reference links libllama.so), and nothing
# that reaches the network at build or run time: no curl, no OpenSSL, no prebuilt web UI download.
set -euo pipefail

readonly kLlamaCppPythonVersion=0.3.36

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build_dir=${1:-${repo_root}/build/llamacpp}
mkdir -p "${build_dir}"
build_dir=$(cd "${build_dir}" && pwd)
jobs=${JOBS:-$(nproc)}

if [[ -n "${LLAMACPP_SRC:-}" ]]; then
  src_dir=${LLAMACPP_SRC}
else
  sdist_dir=${build_dir}/sdist
  sdist_name=llama_cpp_python-${kLlamaCppPythonVersion}
  src_dir=${sdist_dir}/${sdist_name}/vendor/llama.cpp
  if [[ ! -f "${src_dir}/CMakeLists.txt" ]]; then
    mkdir -p "${sdist_dir}"
    if [[ ! -f "${sdist_dir}/${sdist_name}.tar.gz" ]]; then
      echo "build_llamacpp: downloading llama-cpp-python ${kLlamaCppPythonVersion} (source)"
      python3 -m pip download --no-deps --no-binary :all: --dest "${sdist_dir}" \
        "llama-cpp-python==${kLlamaCppPythonVersion}"
    fi
    tar -xzf "${sdist_dir}/${sdist_name}.tar.gz" -C "${sdist_dir}"
  fi
fi
if [[ ! -f "${src_dir}/include/llama.h" ]]; then
  echo "build_llamacpp: ${src_dir} is not a llama.cpp source tree (no include/llama.h)" >&2
  exit 1
fi

echo "build_llamacpp: ${src_dir} -> ${build_dir}"
cmake -S "${src_dir}" -B "${build_dir}" \
  -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=ON \
  -DGGML_NATIVE=ON \
  -DLLAMA_CURL=OFF \
  -DLLAMA_OPENSSL=OFF \
  -DLLAMA_USE_PREBUILT_UI=OFF \
  -DLLAMA_BUILD_UI=OFF \
  -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_TOOLS=ON \
  -DLLAMA_BUILD_SERVER=ON
cmake --build "${build_dir}" -j "${jobs}" \
  --target llama llama-bench llama-batched-bench llama-tokenize llama-server

for tool in llama-bench llama-batched-bench llama-tokenize llama-server; do
  if [[ ! -x "${build_dir}/bin/${tool}" ]]; then
    echo "build_llamacpp: ${tool} was not built" >&2
    exit 1
  fi
done
echo "build_llamacpp: done; binaries and libllama in ${build_dir}/bin"
