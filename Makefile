# The two commands a new user needs:
#   make demo   install deps, build, run the transport comparison, print the table
#   make test   install deps, build, run every test (release suite, then the ring suite and
#               the integration, stress and sanitizer-built observe suites (the HTTP server, the
#               stats page) under ThreadSanitizer, the same under AddressSanitizer +
#               UndefinedBehaviorSanitizer, and a short run of each libFuzzer target)
# and `make build` for just the build. Binaries land in build/bin/. `make package` makes the Debian
# packages in build/packages/ (tools/packaging.cmake).

JOBS ?= $(shell nproc)

.PHONY: all deps build package test demo tsan-ring tsan-integration asan-integration asan fuzz-build fuzz clean

all: build

deps:
	./tools/install-deps.sh

build: deps
	cmake --preset release
	cmake --build build -j $(JOBS)

# coproc_<version>_<arch>.deb (the daemon, its tools, the client library) and
# libcoproc-dev_<version>_<arch>.deb (the client SDK), built by CPack from the install components.
package: build
	cmake --build build --target package

test: build tsan-ring tsan-integration asan-integration fuzz-build
	ctest --test-dir build --output-on-failure
	ctest --test-dir build/tsan-ring --output-on-failure
	TSAN_OPTIONS="halt_on_error=1 abort_on_error=1" ctest --test-dir build/tsan -L 'integration|stress|observe' --output-on-failure
	ASAN_OPTIONS="abort_on_error=1 detect_leaks=1" UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1" \
	  ctest --test-dir build/asan -L 'integration|stress|observe' --output-on-failure
	ctest --test-dir build/fuzz -L fuzz --output-on-failure

# The ring library and its tests under ThreadSanitizer.
tsan-ring: deps
	cmake --preset tsan-ring
	cmake --build build/tsan-ring -j $(JOBS)

# The daemon, the client library and the integration tests under ThreadSanitizer:
# a data race aborts the daemon or the test process (TSAN_OPTIONS in `test`).
tsan-integration: deps
	cmake --preset tsan
	cmake --build build/tsan -j $(JOBS) --target coprocd integration_test c_api_test stress_test \
	  http_server_test stats_page_test

# The daemon, the client library and the integration tests under AddressSanitizer and
# UndefinedBehaviorSanitizer (a finding aborts the process, failing the test).
asan-integration: deps
	cmake --preset asan
	cmake --build build/asan -j $(JOBS) --target coprocd integration_test c_api_test stress_test \
	  http_server_test stats_page_test

# libFuzzer targets (clang, ASan + UBSan): replay the seed corpora and past crashes, fuzz each
# target for COPROC_FUZZ_SECONDS (20) seconds, and check any open-bug reproducers
# (tests/fuzz/README.md). `make test` runs the same tests.
fuzz-build: deps
	cmake --preset fuzz
	cmake --build build/fuzz -j $(JOBS) --target fuzz

fuzz: fuzz-build
	ctest --test-dir build/fuzz -L fuzz --output-on-failure

demo: build
	./tools/demo.sh

asan: deps
	cmake --preset asan
	cmake --build build/asan -j $(JOBS)
	ctest --test-dir build/asan --output-on-failure

clean:
	rm -rf build
