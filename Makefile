# The two commands a new user needs:
#   make demo   install deps, build, run the transport comparison, print the table
#   make test   install deps, build, run every test (release suite + ThreadSanitizer ring suite)
# and `make build` for just the build. Binaries land in build/bin/.

JOBS ?= $(shell nproc)

.PHONY: all deps build test demo tsan-ring asan clean

all: build

deps:
	./tools/install-deps.sh

build: deps
	cmake --preset release
	cmake --build build -j $(JOBS)

test: build tsan-ring
	ctest --test-dir build --output-on-failure
	ctest --test-dir build/tsan-ring --output-on-failure

# The ring library and its tests under ThreadSanitizer.
tsan-ring: deps
	cmake --preset tsan-ring
	cmake --build build/tsan-ring -j $(JOBS)

demo: build
	./tools/demo.sh

asan: deps
	cmake --preset asan
	cmake --build build/asan -j $(JOBS)
	ctest --test-dir build/asan --output-on-failure

clean:
	rm -rf build
