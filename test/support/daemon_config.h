// Small configurations for the black-box tests of the netmond binary.
#pragma once

#include <string>

namespace netmond::test {

// Turns the control socket off: a test daemon must not take the machine's
// /run/netmond/control.sock (netmond creates /run/netmond when it is missing).
inline const std::string kNoControl = "control: {socket: \"\"}\n";

// One server, 127.0.0.1, with two tcp checks: "open" on `open_port` and "closed" on
// `closed_port`, both every `interval`.
inline std::string two_tcp_checks(int open_port, int closed_port,
                                  const std::string& interval = "60s") {
  return "servers:\n"
         "  - address: 127.0.0.1\n"
         "    interval: " +
         interval +
         "\n"
         "    services:\n"
         "      - {type: tcp, port: " +
         std::to_string(open_port) +
         ", name: open}\n"
         "      - {type: tcp, port: " +
         std::to_string(closed_port) + ", name: closed}\n";
}

}  // namespace netmond::test
