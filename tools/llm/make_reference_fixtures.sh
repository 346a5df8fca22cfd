#!/usr/bin/env bash
# Regenerates the committed llama.cpp parity fixtures of coproc's LLM engine (issue 15):
# tests/fixtures/llm/greedy.json and tests/fixtures/llm/teacher_forced.json.
#
#   tools/llm/make_reference_fixtures.sh [LLAMACPP_BUILD_DIR] [MODEL]
#
#   LLAMACPP_BUILD_DIR  the build of tools/llm/build_llamacpp.sh (default build/llamacpp)
#   MODEL               SmolLM2-135M-Instruct.Q4_1.gguf (default build/models/...)
#   THREADS             environment; llama.cpp's threads (default 2, what the fixtures record)
#
# It compiles tools/llm/llama_reference.cc against that build's libllama, runs it on the model
# (reference_fixtures.py drives it over a pipe and writes the JSON), and leaves the fixtures for
# you to review and commit. A one-off, like the build: the tests only read the committed files.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build_dir=$(cd "${1:-${repo_root}/build/llamacpp}" && pwd)
model=${2:-${repo_root}/build/models/SmolLM2-135M-Instruct.Q4_1.gguf}
threads=${THREADS:-2}
out_dir=${repo_root}/tests/fixtures/llm

src_dir=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "${build_dir}/CMakeCache.txt")
if [[ ! -f "${src_dir}/include/llama.h" || ! -e "${build_dir}/bin/libllama.so" ]]; then
  echo "make_reference_fixtures: ${build_dir} is not a llama.cpp build (run tools/llm/build_llamacpp.sh)" >&2
  exit 1
fi
if [[ ! -f "${model}" ]]; then
  echo "make_reference_fixtures: no model at ${model}" >&2
  exit 1
fi

# The version the build stamped into itself: common/build-info.cpp and the pkg-config file.
commit=$(sed -n 's/.*LLAMA_COMMIT = "\(.*\)";/\1/p' "${build_dir}/common/build-info.cpp")
build_number=$(sed -n 's/.*LLAMA_BUILD_NUMBER = \([0-9]*\);/\1/p' "${build_dir}/common/build-info.cpp")
version=$(sed -n 's/^Version: //p' "${build_dir}/llama.pc")

work_dir=$(mktemp -d)
trap 'rm -rf "${work_dir}"' EXIT
runner=${work_dir}/llama_reference
c++ -std=c++17 -O2 -Wall -Wextra -I"${src_dir}/include" -I"${src_dir}/ggml/include" \
  "${repo_root}/tools/llm/llama_reference.cc" -L"${build_dir}/bin" -lllama -lggml -lggml-base \
  -Wl,-rpath,"${build_dir}/bin" -o "${runner}"

mkdir -p "${out_dir}"
python3 "${repo_root}/tools/llm/reference_fixtures.py" --runner "${runner}" --model "${model}" \
  --threads "${threads}" --out-dir "${out_dir}" --llama-commit "${commit:-unknown}" \
  --llama-build-number "${build_number:-unknown}" --llama-version "${version:-unknown}"
