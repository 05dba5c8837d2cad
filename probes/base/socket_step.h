// SocketStep: where setting up a probe's socket failed, so that its message can tell a
// local problem (the socket, an option, the interface, the source address) from the
// network's answer (connect, send). Shared by DatagramSocket, uv::TcpConnection and
// EchoExchange, and turned into words once, by NetworkProbe::finish_setup_failure().
#pragma once

#include <cstdint>

namespace netmond {

enum class SocketStep : std::uint8_t {
  None,
  Socket,   // socket() itself
  Option,   // a socket option netmond needs (IP_RECVERR, ...)
  Device,   // SO_BINDTODEVICE: the check's interface
  Bind,     // bind(): the check's source_address
  Connect,  // connect(), or the first send() on a connected datagram socket
  Watch,    // handing the socket to the loop
};

}  // namespace netmond
