#include "control_client.h"

#include <fmt/format.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace netmond::ctl {

std::string& control_socket() {
  static std::string path = kDefaultControlSocket;
  return path;
}

std::vector<std::string> check_names(const nlohmann::ordered_json& status_response) {
  std::vector<std::string> names;
  auto checks = status_response.find("checks");
  if (checks == status_response.end() || !checks->is_array()) return names;
  for (const auto& c : *checks)
    if (auto name = c.find("name"); name != c.end() && name->is_string()) names.push_back(*name);
  return names;
}

ControlClient::~ControlClient() {
  if (fd_ >= 0) ::close(fd_);
}

ControlClient::ControlClient(ControlClient&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      path_(std::move(o.path_)),
      buffer_(std::move(o.buffer_)),
      quiet_(o.quiet_) {}

std::optional<ControlClient> ControlClient::connect(const std::string& path, bool quiet) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    if (!quiet)
      fmt::print(stderr, "netmonctl: cannot connect to {}: the path is too long for a socket\n",
                 path);
    return std::nullopt;
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  ControlClient c;
  c.path_ = path;
  c.quiet_ = quiet;
  c.fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c.fd_ >= 0 && ::connect(c.fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0)
    return c;
  int err = errno;
  std::string hint;
  switch (err) {
    case ENOENT:
    case ECONNREFUSED: hint = " — is netmond running?"; break;
    case EACCES:
    case EPERM: hint = " — run as root or as a member of the socket's group"; break;
    default: break;
  }
  if (quiet) return std::nullopt;
  fmt::print(stderr, "netmonctl: cannot connect to {}: {}{}\n", path,
             err == EACCES || err == EPERM ? "permission denied" : std::strerror(err), hint);
  return std::nullopt;
}

bool ControlClient::send(const nlohmann::ordered_json& request) {
  std::string line = request.dump() + "\n";
  for (size_t done = 0; done < line.size();) {
    ssize_t n = ::send(fd_, line.data() + done, line.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (!quiet_)
        fmt::print(stderr, "netmonctl: cannot send to {}: {}\n", path_, std::strerror(errno));
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

std::optional<nlohmann::ordered_json> ControlClient::receive(bool* interrupted) {
  size_t nl;
  while ((nl = buffer_.find('\n')) == std::string::npos) {
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR && interrupted) {
      *interrupted = true;
      return std::nullopt;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (!quiet_)
        fmt::print(stderr, "netmonctl: {} closed the connection{}\n", path_,
                   n < 0 ? fmt::format(": {}", std::strerror(errno)) : "");
      return std::nullopt;
    }
    buffer_.append(buf, static_cast<size_t>(n));
  }
  std::string line = buffer_.substr(0, nl);
  buffer_.erase(0, nl + 1);
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    if (!quiet_)
      fmt::print(stderr, "netmonctl: {} sent something that is not a JSON object: {}\n", path_,
                 line.substr(0, 200));
    return std::nullopt;
  }
  return j;
}

}  // namespace netmond::ctl
