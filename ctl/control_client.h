// A blocking client of netmond's control socket (docs/control.md): one connection, JSON
// lines out and in. netmonctl is a CLI, so plain blocking sockets are enough.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace netmond::ctl {

inline constexpr const char* kDefaultControlSocket = "/run/netmond/control.sock";

// The socket netmonctl talks to: -s SOCKET, else kDefaultControlSocket.
std::string& control_socket();

// The check names in a `status` response, in the daemon's order (empty when it has none).
std::vector<std::string> check_names(const nlohmann::ordered_json& status_response);

class ControlClient {
 public:
  ControlClient() = default;
  ~ControlClient();
  ControlClient(ControlClient&& o) noexcept;
  ControlClient(const ControlClient&) = delete;
  ControlClient& operator=(const ControlClient&) = delete;

  // Connects to `path`. On failure, prints the reason with a hint to stderr
  // ("... — is netmond running?") and returns nullopt. A `quiet` client prints nothing,
  // now or later (the shell's tab completion asks while the user types).
  static std::optional<ControlClient> connect(const std::string& path, bool quiet = false);
  // Sends one request line.
  bool send(const nlohmann::ordered_json& request);
  // Reads one line and parses it. Returns nullopt (after printing why) when the daemon
  // closed the connection, the read failed or was interrupted (*interrupted is then true),
  // or the line is not JSON.
  std::optional<nlohmann::ordered_json> receive(bool* interrupted = nullptr);

 private:
  int fd_ = -1;
  std::string path_;
  std::string buffer_;
  bool quiet_ = false;
};

}  // namespace netmond::ctl
