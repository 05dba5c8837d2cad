// A network namespace that a test creates for itself, with only `lo` up: traffic to any
// non-loopback address fails at once with "network unreachable" and never leaves it.
#pragma once

#include <string>
#include <vector>

namespace netmond::test {

class NetNs {
 public:
  // Creates netmond-test-<pid>-<n>; resolv.conf inside points at 127.0.0.1 (closed), so
  // nothing run inside ever asks the host's resolver.
  NetNs();
  ~NetNs();
  NetNs(const NetNs&) = delete;
  NetNs& operator=(const NetNs&) = delete;

  // False when namespaces cannot be made here (not root, no `ip`); the reason is in why().
  bool ok() const { return ok_; }
  const std::string& why() const { return why_; }
  const std::string& name() const { return name_; }
  // `argv` prefixed so that it runs inside the namespace.
  std::vector<std::string> wrap(std::vector<std::string> argv) const;

 private:
  std::string name_;
  bool ok_ = false;
  std::string why_;
};

}  // namespace netmond::test
