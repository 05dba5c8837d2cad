#!/usr/bin/env bash
# The .deb as an admin gets it: cpack builds it from the build tree, dpkg installs it on
# this machine, and then the files are where docs/operations.md#install says, the programs
# run from there, the man pages render without a warning, the example config validates,
# the units are enabled, and `dpkg --purge` leaves nothing behind.
#
# It touches only the package's own paths, and only when none of them exists yet: it
# skips (exit 77) without root, when the netmond package is installed (dpkg -s netmond),
# or when a file the package ships is already there (a cmake --install, say). Package
# tests of several build trees take turns on a lock.
# Usage: package_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
fail=0
ok() { echo "ok: $*"; }
bad() {
  echo "FAIL: $*"
  fail=1
}
skip() {
  echo "SKIP: $*"
  exit 77
}

[[ $(id -u) == 0 ]] || skip "needs root: the test installs the package with dpkg -i"
for tool in cpack dpkg-deb dpkg-shlibdeps man flock; do
  command -v "$tool" >/dev/null || skip "$tool is missing (scripts/install-deps.sh installs it)"
done

lockdir=/run/lock
[[ -d $lockdir ]] || lockdir=/tmp
exec 9>"$lockdir/netmond-package-test.lock"
flock -w 100 9 || skip "another package test has held $lockdir/netmond-package-test.lock for 100 s"
if dpkg -s netmond >/dev/null 2>&1; then
  skip "the netmond package is installed on this machine (dpkg -s netmond): the test would replace and purge it"
fi

tmp=$(mktemp -d)
installed=""
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  if [[ -n $installed ]]; then
    dpkg --purge netmond >/dev/null 2>&1 || echo "FAIL: cleanup: dpkg --purge netmond failed"
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# The package, in a directory of its own (a `make package` may run in the build tree).
if ! (cd "$tmp" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/out" \
  >"$tmp/cpack.log" 2>&1); then
  cat "$tmp/cpack.log"
  echo "FAIL: cpack"
  exit 1
fi
version=$("$build/daemon/netmond" --version | sed -n 's/^netmond //p')
deb=$tmp/out/netmond_${version}_$(dpkg --print-architecture).deb
[[ -f $deb ]] || {
  ls "$tmp/out"
  echo "FAIL: no $deb"
  exit 1
}
ok "cpack: $(basename "$deb")"

depends=$(dpkg-deb -f "$deb" Depends)
if [[ $depends == *libc6* && $depends == *libuv1* && $depends == *libcurl4* ]]; then
  ok "Depends: $depends"
else
  bad "Depends lacks libc6, libuv1 or libcurl4: '$depends'"
fi
if [[ $(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles) == /etc/netmond.yaml ]]; then
  ok "conffiles: /etc/netmond.yaml"
else
  bad "conffiles is not /etc/netmond.yaml"
fi

# What the package ships; none of its files may exist yet, and the directories that do not
# exist now must be gone again after the purge.
# "TYPE PATH" lines: d for a directory.
dpkg-deb -c "$deb" | awk '{ p = $6; sub(/^\./, "", p); sub(/\/$/, "", p)
  if (p != "") print substr($1, 1, 1), p }' >"$tmp/paths"
new_dirs=()
while read -r type path; do
  if [[ $type == d ]]; then
    [[ -e $path ]] || new_dirs+=("$path")
  elif [[ -e $path || -L $path ]]; then
    skip "$path exists and belongs to no netmond package (a cmake --install?): not replacing it"
  fi
done <"$tmp/paths"

installed=1
if ! DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >"$tmp/dpkg-i.log" 2>&1; then
  cat "$tmp/dpkg-i.log"
  echo "FAIL: dpkg -i"
  exit 1
fi
ok "dpkg -i"
dpkg -L netmond >"$tmp/owned"

for path in /usr/sbin/netmond /usr/bin/netmond-echo /usr/bin/netmonctl \
  /lib/systemd/system/netmond.service /lib/systemd/system/netmond-echo.service \
  /lib/systemd/system/netmond-echo.socket /etc/netmond.yaml \
  /usr/share/man/man8/netmond.8.gz /usr/share/man/man8/netmond-echo.8.gz \
  /usr/share/man/man1/netmonctl.1.gz /usr/share/man/man5/netmond.yaml.5.gz \
  /usr/share/bash-completion/completions/netmond \
  /usr/share/bash-completion/completions/netmonctl \
  /usr/share/doc/netmond/README.md /usr/share/doc/netmond/operations.md \
  /usr/share/doc/netmond/configuration.md /usr/share/doc/netmond/echo.md \
  /usr/share/doc/netmond/examples/netmond.yaml; do
  if [[ -f $path ]] && grep -qxF "$path" "$tmp/owned"; then
    ok "installed: $path"
  else
    bad "not installed by the package: $path"
  fi
done
for unit in netmond.service netmond-echo.service netmond-echo.socket; do
  cmp -s "$src/systemd/$unit" "/lib/systemd/system/$unit" || bad "$unit differs from systemd/$unit"
done
cmp -s "$src/etc/netmond.yaml" /etc/netmond.yaml || bad "/etc/netmond.yaml differs from etc/netmond.yaml"
[[ $(stat -c %a /etc/netmond.yaml) == 644 ]] || bad "/etc/netmond.yaml is not mode 0644"
[[ $(dpkg-query -W -f='${Conffiles}' netmond) == *"/etc/netmond.yaml "* ]] ||
  bad "dpkg does not list /etc/netmond.yaml as a conffile"

for prog in /usr/sbin/netmond /usr/bin/netmond-echo /usr/bin/netmonctl; do
  out=$("$prog" --version 2>&1) || true
  if [[ $out == "$(basename "$prog") $version" ]]; then ok "$prog --version: $out"; else bad "$prog --version: '$out'"; fi
done
if out=$(/usr/sbin/netmond --check-config -c /etc/netmond.yaml 2>&1); then
  ok "netmond --check-config -c /etc/netmond.yaml"
else
  bad "netmond --check-config -c /etc/netmond.yaml: $out"
fi

for page in man8/netmond.8 man8/netmond-echo.8 man1/netmonctl.1 man5/netmond.yaml.5; do
  file=/usr/share/man/$page.gz
  warnings=$(MANWIDTH=80 man -l "$file" 2>&1 >/dev/null) || true
  text=$(MANWIDTH=80 man -l "$file" 2>/dev/null) || true
  if [[ -n $warnings ]]; then
    bad "man -l $file warns: $warnings"
  elif [[ $text != *NAME* ]] || [[ $text != *"$version"* ]]; then
    bad "man -l $file: no NAME section or version"
  else
    ok "man -l $file"
  fi
done

comp=$(bash -c 'source /usr/share/bash-completion/completions/netmonctl
  COMP_WORDS=(netmonctl ec); COMP_CWORD=1; _netmonctl; echo "${COMPREPLY[*]}"' 2>&1) || true
if [[ $comp == echo ]]; then ok "completion: netmonctl ec -> echo"; else bad "completion: netmonctl ec -> '$comp'"; fi
comp=$(bash -c 'source /usr/share/bash-completion/completions/netmond
  COMP_WORDS=(netmond --log-format ""); COMP_CWORD=2; _netmond; echo "${COMPREPLY[*]}"' 2>&1) || true
if [[ $comp == "text json" ]]; then ok "completion: netmond --log-format"; else bad "completion: netmond --log-format -> '$comp'"; fi

# Enabled as debhelper does (symlinks, with or without a running systemd); the socket is
# the alternative to netmond-echo.service and stays disabled.
for link in multi-user.target.wants/netmond.service multi-user.target.wants/netmond-echo.service; do
  if [[ -L /etc/systemd/system/$link ]]; then ok "enabled: $link"; else bad "not enabled: $link"; fi
done
[[ ! -e /etc/systemd/system/sockets.target.wants/netmond-echo.socket ]] ||
  bad "netmond-echo.socket is enabled"

installed=""
if ! dpkg --purge netmond >"$tmp/purge.log" 2>&1; then
  cat "$tmp/purge.log"
  bad "dpkg --purge netmond"
fi
dpkg -s netmond >/dev/null 2>&1 && bad "dpkg -s netmond: still known after the purge"
left=""
while read -r type path; do
  [[ -e $path || -L $path ]] || continue
  if [[ $type != d ]]; then
    left+=" $path"
  else
    for dir in "${new_dirs[@]}"; do [[ $path == "$dir" ]] && left+=" $path"; done
  fi
done <"$tmp/paths"
left+=$(find /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled \
  /var/lib/systemd/deb-systemd-helper-masked -name '*netmond*' -printf ' %p' 2>/dev/null || true)
if [[ -z $left ]]; then ok "dpkg --purge netmond: nothing left"; else bad "left after the purge:$left"; fi

exit "$fail"
