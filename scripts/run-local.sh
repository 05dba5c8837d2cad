#!/bin/sh
# `make run`: a local netmond-echo on 127.0.0.1:10100 (the example config's echo check
# talks to it), then netmond in the foreground on the example config until Ctrl-C; the
# echo server is stopped (by PID) when netmond ends.
set -u
build=${BUILD_DIR:-build/default}
config=${1:-etc/netmond.yaml}

"$build/echo/netmond-echo" --listen 127.0.0.1:10100 &
echo_pid=$!
trap 'kill "$echo_pid" 2>/dev/null; wait "$echo_pid" 2>/dev/null' EXIT
trap 'exit 130' INT TERM

"$build/daemon/netmond" -c "$config"
exit $?
