// Network namespaces that a test creates for itself (`ip netns add`; needs root), so that
// tests can exercise unreachable networks without a packet ever leaving this machine.
#pragma once

#include "base/fd.h"

#include <string>
#include <vector>

namespace netmond::test {

// Runs /usr/sbin/ip with `args`; true when it exits 0 (its stderr is printed otherwise).
bool ip(std::vector<std::string> args);

// A namespace with a unique name, deleted on destruction. Bare: even lo is down until
// the test brings it up. Check ok() before use; not root means not ok.
class Netns {
 public:
  Netns();
  ~Netns();
  Netns(const Netns&) = delete;
  Netns& operator=(const Netns&) = delete;
  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }

  // Brings lo up: loopback works, any other address fails with "network unreachable".
  bool up_loopback();
  // Points resolv.conf inside (for programs run through wrap()) at 127.0.0.1, where
  // nothing listens: nothing run inside ever asks the host's resolvers.
  bool isolate_resolver();
  // `argv` prefixed so that it runs inside the namespace.
  std::vector<std::string> wrap(std::vector<std::string> argv) const;

 private:
  std::string name_;
  bool ok_ = false;
  bool resolv_conf_ = false;
};

// Moves the calling thread (and so the sockets it creates from now on) into `ns`, and back
// to the original namespace on destruction.
class EnterNetns {
 public:
  explicit EnterNetns(const Netns& ns);
  ~EnterNetns();
  EnterNetns(const EnterNetns&) = delete;
  EnterNetns& operator=(const EnterNetns&) = delete;
  bool ok() const { return ok_; }

 private:
  Fd original_;
  bool ok_ = false;
};

// Two namespaces joined by a veth pair: the client (10.200.0.1/30, lo up, default route via
// the router) and a router (10.200.0.2/30, forwarding on) whose route to 198.51.100.0/24
// is "unreachable", so it answers packets for it with ICMP host unreachable.
struct RoutedNetwork {
  Netns client;
  Netns router;
  bool ok = false;
  RoutedNetwork();
};

}  // namespace netmond::test
