# Thin wrappers over the CMake presets (CMakePresets.json): CMake users can run the same
# `cmake --preset`, `cmake --build --preset` and `ctest --preset` commands by hand.
.PHONY: all deps build build-asan run test test-default test-asan clean bench package

JOBS ?= $(shell nproc)
CONFIG ?= etc/netmond.yaml

all: build

deps:
	@./scripts/install-deps.sh

build: deps
	cmake --preset default >/dev/null
	cmake --build --preset default -j $(JOBS)

build-asan: deps
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS)

# Runs a local echo server and the daemon in the foreground on the example config until
# Ctrl-C (scripts/run-local.sh).
run: build
	./scripts/run-local.sh $(CONFIG)

test: test-default test-asan

test-default: build
	ctest --preset default -j $(JOBS)

test-asan: build-asan
	ctest --preset asan -j $(JOBS)

# The Debian package: build/default/netmond_<version>_amd64.deb (and its -dbgsym .ddeb);
# install it with `sudo apt install ./build/default/netmond_*.deb` (docs/operations.md#install).
package: build
	cmake --build --preset default --target package

# Loopback benchmarks (bench/README.md): bounded runs, figures in build/default/bench/.
# Speed targets live here, never in the unit tests.
bench: build
	./bench/run.sh --build-dir build/default

clean:
	rm -rf build
