// Descriptor exhaustion: with the open-files limit reached, a probe run fails at once with
// local_error naming "too many open files" (no crash, no hang, nothing left open), and the
// same probe objects succeed again once descriptors are free. A check whose socket is
// kept between runs (udp, udp_echo, ntp) needs no new descriptor, so it keeps working.
// Loopback peers only.
#include "dns.h"
#include "http.h"
#include "icmp.h"
#include "ntp.h"
#include "tcp.h"
#include "udp.h"
#include "udp_echo.h"

#include "support/dns_fakes.h"
#include "support/dns_spec.h"
#include "support/http_fakes.h"
#include "support/loop.h"
#include "support/ntp_fakes.h"
#include "support/peers.h"
#include "support/probe_harness.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <catch2/catch.hpp>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

using namespace netmond;
using namespace std::chrono_literals;
using netmond::test::LoopFixture;
using netmond::test::ProbeHarness;

namespace {

// Lowers this process's soft open-files limit to a little above what is open now and
// fills the table with /dev/null, so that the next socket() fails with EMFILE; puts
// everything back when destroyed.
class DescriptorHog {
 public:
  DescriptorHog() {
    REQUIRE(getrlimit(RLIMIT_NOFILE, &saved_) == 0);
    rlimit low = saved_;
    low.rlim_cur = test::open_fd_count() + 16;
    REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
    fill();
  }
  ~DescriptorHog() {
    release();
    setrlimit(RLIMIT_NOFILE, &saved_);
  }
  DescriptorHog(const DescriptorHog&) = delete;
  DescriptorHog& operator=(const DescriptorHog&) = delete;

  void fill() {
    for (;;) {
      Fd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
      if (!fd) break;
      held_.push_back(std::move(fd));
    }
    REQUIRE(errno == EMFILE);
  }
  void release() { held_.clear(); }

 private:
  rlimit saved_{};
  std::vector<Fd> held_;
};

std::optional<std::string> echo_back(std::string_view request) { return std::string(request); }

struct Probes {
  std::string name;
  std::unique_ptr<Probe> probe;
};

}  // namespace

TEST_CASE("probes: with no descriptor left, runs fail with too many open files, then recover",
          "[fds]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    test::TcpListener listener("127.0.0.1");
    test::UdpPeer echo(fixture.loop(), "127.0.0.1", echo_back);
    test::FakeNtpServer ntp(fixture.loop(), test::NtpFault::Answer);
    test::FakeHttpServer web(fixture.loop(), test::HttpFault::Normal);
    test::FakeDnsServer dns(fixture.loop(), test::DnsFault::Answer);
    const Endpoint local = test::endpoint("127.0.0.1");

    TcpSpec tcp;
    tcp.port = listener.port();
    UdpSpec udp;
    udp.port = echo.port();
    UdpEchoSpec udp_echo;
    udp_echo.port = echo.port();
    NtpSpec ntp_spec;
    ntp_spec.port = ntp.port();
    HttpSpec http;
    http.url = web.url();
    std::vector<Probes> probes;
    probes.push_back({"http", make_probe(h.ctx, local, http)});
    probes.push_back(
        {"dns",
         make_probe(h.ctx, local, test::loopback_dns_spec(dns.port(), "fake.test", RrType::A))});
    probes.push_back({"tcp", make_probe(h.ctx, local, tcp)});
    probes.push_back({"udp", make_probe(h.ctx, local, udp)});
    probes.push_back({"udp_echo", make_probe(h.ctx, local, udp_echo)});
    probes.push_back({"ntp", make_probe(h.ctx, local, ntp_spec)});
    probes.push_back({"icmp", make_probe(h.ctx, local, IcmpSpec{})});

    const std::size_t fds = test::open_fd_count();
    {
      DescriptorHog hog;
      for (auto& p : probes) {
        INFO(p.name);
        auto r = test::run_probe(fixture, *p.probe, 2s);
        REQUIRE(r);
        CHECK(r->status == Status::LocalError);
        CHECK_THAT(r->message, Catch::EndsWith(": too many open files"));
      }
      // Free descriptors: the same probe objects work again.
      hog.release();
      for (auto& p : probes) {
        INFO(p.name);
        auto r = test::run_probe(fixture, *p.probe, 2s);
        REQUIRE(r);
        CHECK(r->status == Status::Ok);
        INFO(r->message);
      }
      // Exhausted again: what keeps its socket needs no new one and carries on (udp,
      // udp_echo and ntp their own, icmp the shared one per family); tcp, http and dns
      // (c-ares closes a socket once no query is left on it) open one per run and fail
      // again, each with the same precise reason.
      hog.fill();
      for (auto& p : probes) {
        INFO(p.name);
        auto r = test::run_probe(fixture, *p.probe, 2s);
        REQUIRE(r);
        INFO(r->message);
        if (p.name == "tcp" || p.name == "http" || p.name == "dns") {
          CHECK(r->status == Status::LocalError);
          CHECK_THAT(r->message, Catch::EndsWith(": too many open files"));
        } else
          CHECK(r->status == Status::Ok);
      }
    }
    probes.clear();
    CHECK(test::open_fd_count() <= fds);
  }
  REQUIRE(fixture.finish() == 0);
}
