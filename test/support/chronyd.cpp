#include "support/chronyd.h"

#include "support/dnsmasq.h"  // udp_exchange
#include "support/peers.h"

#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <stdexcept>

namespace netmond::test {

namespace {

using namespace std::chrono_literals;

constexpr const char* kChronyd = "/usr/sbin/chronyd";
constexpr int kStartAttempts = 5;

std::uint32_t get32(const std::string& s, std::size_t at) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v = v << 8 | static_cast<unsigned char>(s[at + i]);
  return v;
}

// The user chronyd keeps running as: ourselves (root in CI), so that it drops no privileges
// and can write its files in our temporary directory. -U lets it start as non-root.
std::string current_user() {
  const passwd* pw = ::getpwuid(::geteuid());
  return pw != nullptr ? pw->pw_name : "root";
}

}  // namespace

std::string ntp_request_bytes(std::uint64_t transmit) {
  std::string q(48, '\0');
  q[0] = 0x23;  // LI 0, version 4, mode 3
  for (int i = 0; i < 8; ++i) q[40 + i] = static_cast<char>(transmit >> (56 - 8 * i));
  return q;
}

Chronyd::Chronyd(std::vector<std::string> extra) {
  std::string why;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    if (start(extra, &why)) return;
    // Someone took the port between our check and chronyd's bind: try another one.
    if (why.find("Could not bind") == std::string::npos &&
        why.find("Address already in use") == std::string::npos)
      break;
  }
  throw std::runtime_error(why);
}

bool Chronyd::start(const std::vector<std::string>& extra, std::string* why) {
  port_ = closed_udp_port("127.0.0.1");
  const std::string dir = temp_dir();
  std::string conf = "port " + std::to_string(port_) +
                     "\n"
                     "bindaddress 127.0.0.1\n"
                     "allow 127.0.0.1\n"
                     "local stratum " +
                     std::to_string(kStratum) +
                     "\n"
                     // No command sockets: neither UDP nor the Unix one under /run/chrony.
                     "cmdport 0\n"
                     "bindcmdaddress /\n"
                     "user " +
                     current_user() + "\npidfile " + dir + "/chronyd.pid\ndriftfile " + dir +
                     "/chronyd.drift\n";
  for (const std::string& line : extra) conf += line + "\n";
  const std::string path = write_file(dir, "chrony.conf", conf);

  // -x: never touch the system clock; -d: stay attached, log to stderr; -U: no root check.
  child_ = std::make_unique<ChildProcess>(
      with_parent_death_signal({kChronyd, "-x", "-d", "-U", "-f", path}));

  const auto until = std::chrono::steady_clock::now() + 10s;
  while (!answers()) {
    const std::string log = child_->err();
    if (auto code = child_->wait(0ms)) {
      *why = "chronyd exited with " + std::to_string(*code) +
             (*code == 127 ? " (cannot run " + std::string(kChronyd) + ": package chrony)" : "") +
             "\nchronyd stderr:\n" + child_->err();
      child_.reset();
      return false;
    }
    if (std::chrono::steady_clock::now() >= until ||
        log.find("Could not bind") != std::string::npos) {
      *why = "chronyd did not answer within 10 s\nchronyd stderr:\n" + log;
      stop();
      return false;
    }
  }
  return true;
}

bool Chronyd::answers() const {
  std::random_device rd;
  const std::uint64_t nonce = static_cast<std::uint64_t>(rd()) << 32 | rd() | 1;
  auto reply = udp_exchange("127.0.0.1", port_, ntp_request_bytes(nonce), 100ms);
  // A server reply (mode 4) at our stratum that echoes our nonce as its origin.
  return reply && reply->size() >= 48 && ((*reply)[0] & 7) == 4 &&
         static_cast<unsigned char>((*reply)[1]) == kStratum &&
         (std::uint64_t{get32(*reply, 24)} << 32 | get32(*reply, 28)) == nonce;
}

Chronyd::~Chronyd() { stop(); }

void Chronyd::stop() {
  if (!child_) return;
  child_->signal(SIGTERM);
  child_->wait(5s);
  child_.reset();  // SIGKILLs and reaps it if it is still there
}

pid_t Chronyd::pid() const { return child_ ? child_->pid() : -1; }

std::string Chronyd::log() const { return child_ ? child_->err() : std::string(); }

}  // namespace netmond::test
