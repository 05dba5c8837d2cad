#include "support/control_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace netmond::test {

using namespace std::chrono_literals;

ControlConnection::ControlConnection(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  // The socket file exists from bind(), a moment before listen(): a connect in between is
  // refused. A loaded machine stretches that moment (a test failed on it under ASan with
  // -j2), so a refusal is tried again for a while, as a client started with the daemon
  // would.
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  for (;;) {
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd && ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      fd_ = std::move(fd);
      return;
    }
    error_ = errno;
    if (error_ != ECONNREFUSED || std::chrono::steady_clock::now() > deadline) return;
    std::this_thread::sleep_for(5ms);
  }
}

bool ControlConnection::send_raw(const std::string& bytes) {
  for (size_t done = 0; done < bytes.size();) {
    ssize_t n = ::send(fd_.get(), bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

bool ControlConnection::fill(std::chrono::steady_clock::time_point deadline) {
  if (eof_) return false;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  pollfd p{fd_.get(), POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
  char buf[65536];
  ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
  if (n <= 0) {
    eof_ = true;
    return false;
  }
  buffer_.append(buf, static_cast<size_t>(n));
  return true;
}

std::optional<nlohmann::json> ControlConnection::read(std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  size_t nl;
  while ((nl = buffer_.find('\n')) == std::string::npos)
    if (!fill(deadline)) return std::nullopt;
  std::string line = buffer_.substr(0, nl);
  buffer_.erase(0, nl + 1);
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

std::optional<nlohmann::json> ControlConnection::request(const nlohmann::json& request,
                                                         std::chrono::milliseconds limit) {
  if (!send_raw(request.dump() + "\n")) return std::nullopt;
  return read(limit);
}

bool ControlConnection::closed_by_peer(std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!eof_) {
    buffer_.clear();
    if (!fill(deadline) && !eof_) return false;
  }
  return true;
}

namespace {

// Whether a socket bound to `path` listens, as /proc/net/unix says: its Flags column has
// __SO_ACCEPTCON (0x10000) once listen() ran. Asking this way opens no connection, which
// the daemon would count as a client.
bool listening(const std::string& path) {
  std::ifstream in("/proc/net/unix");
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string num, refcount, protocol, flags, type, state, inode, bound;
    if (!(fields >> num >> refcount >> protocol >> flags >> type >> state >> inode >> bound))
      continue;
    if (bound == path && (std::stoul(flags, nullptr, 16) & 0x10000) != 0) return true;
  }
  return false;
}

}  // namespace

bool wait_for_socket(const std::string& path, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  struct stat st {};
  while (::stat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode) || !listening(path)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

}  // namespace netmond::test
