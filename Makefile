# Thin wrappers over the CMake presets (CMakePresets.json): CMake users can run the same
# `cmake --preset`, `cmake --build --preset` and `ctest --preset` commands by hand.
.PHONY: all deps build build-asan build-fuzz run test test-default test-asan test-fuzz fuzz clean \
  bench soak package

JOBS ?= $(shell nproc)
CONFIG ?= etc/netmond.yaml
# Seconds per fuzz target: `make fuzz` (docs/reliability.md#fuzzing), and the short run of
# every target in `make test`.
FUZZ_SECONDS ?= 60
FUZZ_TEST_SECONDS ?= 5
# How long `make soak` runs netmond (bench/run-soak.sh --duration: 90s, 30m, 2h).
DURATION ?= 30m

all: build

deps:
	@./scripts/install-deps.sh

build: deps
	cmake --preset default >/dev/null
	cmake --build --preset default -j $(JOBS)

build-asan: deps
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS)

# The libFuzzer targets (fuzz/): clang-14, ASan + UBSan, a build tree of their own.
build-fuzz: deps
	cmake --preset fuzz >/dev/null
	cmake --build --preset fuzz -j $(JOBS)

# Runs a local echo server and the daemon in the foreground on the example config until
# Ctrl-C (scripts/run-local.sh).
run: build
	./scripts/run-local.sh $(CONFIG)

test: test-default test-asan test-fuzz

test-default: build
	ctest --preset default -j $(JOBS)

test-asan: build-asan
	ctest --preset asan -j $(JOBS)

# Every fuzz target for a few seconds from its seeds, so that a regression shows in CI.
test-fuzz: build-fuzz
	./scripts/run-fuzz.sh $(FUZZ_TEST_SECONDS)

# Every fuzz target for FUZZ_SECONDS each (make fuzz FUZZ_SECONDS=600); a crash fails it and
# leaves its input in build/fuzz/crashes/TARGET/.
fuzz: build-fuzz
	./scripts/run-fuzz.sh $(FUZZ_SECONDS)

# The Debian package: build/default/netmond_<version>_amd64.deb (and its -dbgsym .ddeb);
# install it with `sudo apt install ./build/default/netmond_*.deb` (docs/operations.md#install).
package: build
	cmake --build --preset default --target package

# Loopback benchmarks (bench/README.md): bounded runs, figures in build/default/bench/.
# Speed targets live here, never in the unit tests.
bench: build
	./bench/run.sh --build-dir build/default

# netmond for DURATION with thousands of checks, some failing, reloaded every minute: fails
# if its memory or descriptors grow (bench/README.md#soak; plot in build/default/bench/).
soak: build
	./bench/run-soak.sh --build-dir build/default --duration $(DURATION)

clean:
	rm -rf build
