// STUB: replaced by the c-ares implementation.
#include "resolver.h"

namespace netmond {
struct Resolver::Request::Pending {};
struct Resolver::Impl {};
Resolver::Request::Request(Request&&) noexcept = default;
Resolver::Request& Resolver::Request::operator=(Request&&) noexcept = default;
void Resolver::Request::reset() { pending_.reset(); }
bool Resolver::Request::pending() const { return pending_ != nullptr; }
Resolver::Resolver(uv_loop_t*, ResolverOptions) {}
Resolver::~Resolver() = default;
Resolver::Request Resolver::resolve(const std::string&, IpVersion, Fn) { return {}; }
}  // namespace netmond
