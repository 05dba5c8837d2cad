#include "support/netns.h"

#include "support/process.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace netmond::test {

bool ip(std::vector<std::string> args) {
  args.insert(args.begin(), "/usr/sbin/ip");
  auto r = run(args, std::chrono::seconds(10));
  if (r.code != 0) std::fprintf(stderr, "ip failed (%d): %s\n", r.code, r.err.c_str());
  return r.code == 0;
}

Netns::Netns() {
  static std::atomic<int> counter{0};
  name_ = "netmond-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  ok_ = ::geteuid() == 0 && ip({"netns", "add", name_});
}

Netns::~Netns() {
  if (ok_) ip({"netns", "delete", name_});
  if (resolv_conf_) std::filesystem::remove_all("/etc/netns/" + name_);
}

bool Netns::up_loopback() { return ok_ && ip({"-n", name_, "link", "set", "lo", "up"}); }

bool Netns::isolate_resolver() {
  if (!ok_) return false;
  // `ip netns exec` bind-mounts /etc/netns/NAME/* over /etc/* for the program it runs.
  std::filesystem::create_directories("/etc/netns/" + name_);
  resolv_conf_ = true;
  std::ofstream("/etc/netns/" + name_ + "/resolv.conf") << "nameserver 127.0.0.1\n";
  return true;
}

std::vector<std::string> Netns::wrap(std::vector<std::string> argv) const {
  std::vector<std::string> out = {"/usr/sbin/ip", "netns", "exec", name_};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

EnterNetns::EnterNetns(const Netns& ns) {
  if (!ns.ok()) return;
  original_.reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  Fd target(::open(("/run/netns/" + ns.name()).c_str(), O_RDONLY | O_CLOEXEC));
  ok_ = original_ && target && ::setns(target.get(), CLONE_NEWNET) == 0;
}

EnterNetns::~EnterNetns() {
  // Staying in the namespace would poison every later test in this process.
  if (ok_ && ::setns(original_.get(), CLONE_NEWNET) != 0) std::abort();
}

RoutedNetwork::RoutedNetwork() {
  if (!client.ok() || !router.ok()) return;
  const std::string& c = client.name();
  const std::string& r = router.name();
  // veth names are per namespace, so fixed names do not clash between namespaces.
  ok = ip({"link", "add", "vc", "netns", c, "type", "veth", "peer", "name", "vr", "netns", r}) &&
       ip({"-n", c, "addr", "add", "10.200.0.1/30", "dev", "vc"}) &&
       ip({"-n", c, "link", "set", "vc", "up"}) && client.up_loopback() &&
       ip({"-n", r, "addr", "add", "10.200.0.2/30", "dev", "vr"}) &&
       ip({"-n", r, "link", "set", "vr", "up"}) && router.up_loopback() &&
       ip({"-n", c, "route", "add", "default", "via", "10.200.0.2"}) &&
       ip({"-n", r, "route", "add", "unreachable", "198.51.100.0/24"}) &&
       ip({"netns", "exec", r, "/bin/sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"});
}

}  // namespace netmond::test
