#!/bin/sh
# Installs the Debian 12 packages netmond needs to build, test and run, skipping what is
# already there. Used by `make run`, `make test` and CI; safe to run again.
set -eu

packages="
  build-essential cmake ninja-build pkg-config
  libuv1-dev libc-ares-dev libcurl4-openssl-dev libyaml-cpp-dev
  libspdlog-dev libfmt-dev nlohmann-json3-dev catch2 libsystemd-dev libedit-dev
  libssl-dev libpcre2-dev zlib1g-dev libmicrohttpd-dev
  iproute2 procps openssl curl nginx-light dnsmasq-base bind9-dnsutils chrony
  iputils-ping fping systemd nftables
  scdoc dpkg-dev man-db groff-base prometheus
  gdb valgrind gnuplot-nox
  clang-14 libclang-rt-14-dev
"

missing=""
for p in $packages; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-deps: need root or sudo to install:$missing" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# nginx-light and chrony are test peers (test/support/nginx.*, chronyd), started by the
# tests on loopback high ports; their packages would start a system nginx on port 80 and a
# system chronyd. A policy-rc.d that forbids starting services (exit 101, see
# invoke-rc.d(8)) keeps them stopped, unless the machine already has its own policy.
# iputils-ping and fping are what `make bench` compares the icmp probe with; systemd
# brings systemd-analyze, which tests the units (test/systemd/units_test.sh); nftables drops
# every other echo reply in the icmp loss test (test/probes/icmp_test.cpp). scdoc turns
# docs/man/*.scd into the man pages at build time; dpkg-dev's dpkg-shlibdeps writes the
# .deb's Depends (`make package`); man-db and groff-base render the pages in the package
# test (test/package/package_test.sh). prometheus brings promtool, which validates the
# /metrics text in the tests (test/daemon/metrics_test.cpp); the package would also start a
# Prometheus server on :9090, which the same policy keeps stopped. clang-14 builds the
# libFuzzer targets (fuzz/, `make fuzz`, and a short run of each in `make test`); libFuzzer
# and clang's sanitizer runtimes are in libclang-rt-14-dev, only a recommendation of clang's
# packages, so --no-install-recommends below would leave it out. valgrind's memcheck runs the
# release daemon through every probe type, a reload and a stop (test/daemon/memcheck_test.cpp).
# gnuplot-nox draws the soak's plot (`make soak`, bench/run-soak.sh).
policy=/usr/sbin/policy-rc.d
own_policy=""
if [ ! -e "$policy" ]; then
  own_policy=1
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  trap '$sudo rm -f "$policy"' EXIT
fi
# shellcheck disable=SC2086
$sudo apt-get install -y --no-install-recommends $missing
if [ -n "$own_policy" ]; then
  $sudo rm -f "$policy"
fi
