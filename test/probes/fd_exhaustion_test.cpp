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

// Lowers this process's soft open-files limit to a little above what is open now; fill()
// then takes every descriptor left, so that the next socket() fails with EMFILE. Puts
// everything back when destroyed.
//
// While the table is full, the test uses no Catch assertion: the sanitizers' runtime needs
// a descriptor for some of its checks (UBSan's vptr check opens a pipe to probe memory), and
// would report a false error. Results are kept and checked once descriptors are free.
class DescriptorHog {
 public:
  DescriptorHog() {
    REQUIRE(getrlimit(RLIMIT_NOFILE, &saved_) == 0);
    rlimit low = saved_;
    low.rlim_cur = test::open_fd_count() + 16;
    REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
  }
  ~DescriptorHog() {
    release();
    setrlimit(RLIMIT_NOFILE, &saved_);
  }
  DescriptorHog(const DescriptorHog&) = delete;
  DescriptorHog& operator=(const DescriptorHog&) = delete;

  // True when the table is full (the last open() failed with EMFILE).
  bool fill() {
    for (;;) {
      Fd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
      if (!fd) return errno == EMFILE;
      held_.push_back(std::move(fd));
    }
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
    auto make_all = [&] {
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
      return probes;
    };
    // Each run's result; no assertion in here (see DescriptorHog).
    auto run_all = [&](std::vector<Probes>& probes) {
      std::vector<std::optional<Result>> results;
      for (auto& p : probes) results.push_back(test::run_probe(fixture, *p.probe, 2s));
      return results;
    };

    // Every type once, with descriptors to spare: all up (and the sanitizers' checks of
    // these code paths done while they can open what they need).
    {
      std::vector<Probes> warm = make_all();
      auto results = run_all(warm);
      for (std::size_t i = 0; i < warm.size(); ++i) {
        INFO(warm[i].name);
        REQUIRE(results[i]);
        CHECK(results[i]->status == Status::Ok);
      }
    }

    std::vector<Probes> probes = make_all();
    const std::size_t fds = test::open_fd_count();
    {
      DescriptorHog hog;
      const bool full = hog.fill();
      auto exhausted = run_all(probes);
      hog.release();
      REQUIRE(full);
      for (std::size_t i = 0; i < probes.size(); ++i) {
        INFO(probes[i].name);
        REQUIRE(exhausted[i]);
        CHECK(exhausted[i]->status == Status::LocalError);
        CHECK_THAT(exhausted[i]->message, Catch::EndsWith(": too many open files"));
      }

      // Descriptors free again: the same probe objects work again.
      auto recovered = run_all(probes);
      for (std::size_t i = 0; i < probes.size(); ++i) {
        INFO(probes[i].name);
        REQUIRE(recovered[i]);
        INFO(recovered[i]->message);
        CHECK(recovered[i]->status == Status::Ok);
      }

      // Exhausted again: what keeps its socket needs no new one and carries on (udp,
      // udp_echo and ntp their own, icmp the shared one per family); tcp, http and dns
      // (c-ares closes a socket once no query is left on it) open one per run and fail
      // again, each with the same precise reason.
      const bool full_again = hog.fill();
      auto again = run_all(probes);
      hog.release();
      REQUIRE(full_again);
      for (std::size_t i = 0; i < probes.size(); ++i) {
        const std::string& name = probes[i].name;
        INFO(name);
        REQUIRE(again[i]);
        INFO(again[i]->message);
        if (name == "tcp" || name == "http" || name == "dns") {
          CHECK(again[i]->status == Status::LocalError);
          CHECK_THAT(again[i]->message, Catch::EndsWith(": too many open files"));
        } else {
          CHECK(again[i]->status == Status::Ok);
        }
      }
    }
    probes.clear();
    CHECK(test::open_fd_count() <= fds);
  }
  REQUIRE(fixture.finish() == 0);
}
