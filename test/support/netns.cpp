#include "support/netns.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace netmond::test {

namespace {
bool sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }
}  // namespace

NetNs::NetNs() {
  static int counter = 0;
  name_ = "netmond-test-" + std::to_string(getpid()) + "-" + std::to_string(++counter);
  if (geteuid() != 0) {
    why_ = "not root: cannot create a network namespace";
    return;
  }
  if (!sh("ip netns add " + name_)) {
    why_ = "'ip netns add' failed";
    return;
  }
  std::filesystem::create_directories("/etc/netns/" + name_);
  std::ofstream("/etc/netns/" + name_ + "/resolv.conf") << "nameserver 127.0.0.1\n";
  ok_ = sh("ip netns exec " + name_ + " ip link set lo up");
  if (!ok_) why_ = "could not bring lo up in the namespace";
}

NetNs::~NetNs() {
  if (geteuid() != 0) return;
  sh("ip netns delete " + name_);
  std::filesystem::remove_all("/etc/netns/" + name_);
}

std::vector<std::string> NetNs::wrap(std::vector<std::string> argv) const {
  std::vector<std::string> out = {"/usr/bin/env", "ip", "netns", "exec", name_};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

}  // namespace netmond::test
