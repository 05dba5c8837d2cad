// AresChannel and DnsChannels against DNS peers on loopback. Every channel here names a
// loopback server of the test's: the system's DNS servers are never asked, and the names
// asked are under the reserved .invalid TLD.
#include "ares_channel.h"

#include "support/loop.h"
#include "support/peers.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <catch2/catch.hpp>

#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace netmond;
using namespace std::chrono_literals;
using netmond::test::LoopFixture;

namespace {

AresChannelOptions loopback(std::uint16_t port, std::chrono::milliseconds timeout = 1000ms,
                            int tries = 1) {
  AresChannelOptions o;
  o.servers = {*parse_ip("127.0.0.1", port)};
  o.timeout = timeout;
  o.tries = tries;
  return o;
}

// A reply to `query` with one answer, A 192.0.2.7, whatever the question was.
std::optional<std::string> a_reply(std::string_view query) {
  auto r = test::nxdomain_reply(query);  // the header and the question, no records
  if (!r) return r;
  (*r)[3] = static_cast<char>(0x80);  // RA, NOERROR
  (*r)[7] = 1;                        // ANCOUNT
  // The question's name by pointer, type A, class IN, TTL 60, 4 bytes of address.
  static const unsigned char answer[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7};
  r->append(reinterpret_cast<const char*>(answer), sizeof answer);
  return r;
}

// What a query's callback saw. `drop`, when set, is released inside the callback.
struct Answer {
  explicit Answer(uv_loop_t* l) : loop(l) {}
  uv_loop_t* loop;
  int calls = 0;
  std::optional<int> status;
  std::string reply;
  std::shared_ptr<AresChannel> drop;
};

void on_answer(void* arg, int status, int, unsigned char* abuf, int alen) {
  auto* a = static_cast<Answer*>(arg);
  ++a->calls;
  a->status = status;
  if (abuf != nullptr)
    a->reply.assign(reinterpret_cast<const char*>(abuf), static_cast<size_t>(alen));
  a->drop.reset();
  // LoopFixture::run_until checks between iterations only: wake it.
  if (a->loop != nullptr) uv_stop(a->loop);
}

void query_a(AresChannel& ch, const char* name, Answer& answer) {
  REQUIRE(ch.get() != nullptr);
  ares_query(ch.get(), name, ns_c_in, ns_t_a, &on_answer, &answer);
  ch.after_submit();
}

std::string first_a(const std::string& reply) {
  hostent* host = nullptr;
  ares_addrttl addrs[4];
  int n = 4;
  int rc = ares_parse_a_reply(reinterpret_cast<const unsigned char*>(reply.data()),
                              static_cast<int>(reply.size()), &host, addrs, &n);
  if (host != nullptr) ares_free_hostent(host);
  if (rc != ARES_SUCCESS || n < 1) return std::string("error: ") + ares_strerror(rc);
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &addrs[0].ipaddr, text, sizeof text);
  return text;
}

}  // namespace

TEST_CASE("AresChannelOptions compare servers by address and port", "[dns]") {
  auto a = loopback(5353);
  auto b = loopback(5353);
  // Bytes that say nothing about the server (sin_zero) do not make it another one.
  auto* in = reinterpret_cast<sockaddr_in*>(&b.servers[0].storage);
  std::memset(in->sin_zero, 0xab, sizeof in->sin_zero);
  CHECK(a == b);
  CHECK_FALSE(a < b);
  CHECK_FALSE(b < a);
  auto c = loopback(5354);
  CHECK_FALSE(a == c);
  CHECK((a < c) != (c < a));
  auto d = a;
  d.flags = ARES_FLAG_NOCHECKRESP;
  CHECK_FALSE(a == d);
  auto e = a;
  e.servers.push_back(*parse_ip("::1", 5353));
  CHECK_FALSE(a == e);
}

TEST_CASE("DnsChannels shares a channel per options and destroys it a turn after release",
          "[dns]") {
  LoopFixture fixture;
  {
    DnsChannels channels(fixture.loop());
    std::uint16_t port = test::closed_udp_port("127.0.0.1");
    auto opts = loopback(port);
    auto a = channels.get(opts);
    auto b = channels.get(loopback(port));
    REQUIRE(a != nullptr);
    CHECK(a->get() != nullptr);
    CHECK(a->error().empty());
    CHECK(a == b);
    CHECK(channels.size() == 1);

    auto flags = opts;
    flags.flags = ARES_FLAG_NOCHECKRESP;
    auto timeout = opts;
    timeout.timeout = 2000ms;
    auto tries = opts;
    tries.tries = 3;
    auto c = channels.get(flags);
    auto d = channels.get(timeout);
    auto e = channels.get(tries);
    auto f = channels.get(loopback(test::closed_udp_port("127.0.0.1")));
    CHECK(c != a);
    CHECK(d != a);
    CHECK(e != a);
    CHECK(f != a);
    CHECK(c != d);
    CHECK(channels.size() == 5);

    // One holder of two lets go: the channel stays, shared.
    b.reset();
    CHECK(channels.get(opts) == a);
    fixture.run_for(10ms);
    CHECK(channels.size() == 5);

    // The last holders let go: nothing is destroyed until the loop turns.
    AresChannel* old = a.get();
    a.reset();
    c.reset();
    CHECK(channels.size() == 5);
    // Asked again meanwhile: a new channel, not the one on its way out.
    auto again = channels.get(opts);
    CHECK(again.get() != old);
    CHECK(channels.size() == 6);
    fixture.run_for(10ms);
    CHECK(channels.size() == 4);

    again.reset();
    d.reset();
    e.reset();
    f.reset();
    CHECK(channels.size() == 4);
    fixture.run_for(10ms);
    CHECK(channels.size() == 0);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("a released channel with a query in flight is destroyed on a later turn", "[dns]") {
  LoopFixture fixture;
  {
    test::UdpPeer dns(fixture.loop(), "127.0.0.1");  // silent: the query stays in flight
    DnsChannels channels(fixture.loop());
    auto ch = channels.get(loopback(dns.port(), 5000ms));
    Answer answer{fixture.loop()};
    query_a(*ch, "silent.invalid", answer);
    REQUIRE(fixture.run_until([&] { return dns.received() >= 1; }, 2s));
    CHECK(answer.calls == 0);

    ch.reset();
    // Not synchronously: ares_destroy would have called back with ARES_EDESTRUCTION.
    CHECK(answer.calls == 0);
    CHECK(channels.size() == 1);
    REQUIRE(fixture.run_until([&] { return answer.status.has_value(); }, 1s));
    CHECK(answer.calls == 1);
    CHECK(*answer.status == ARES_EDESTRUCTION);
    CHECK(channels.size() == 0);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("the last holder may let go from inside a c-ares callback", "[dns]") {
  LoopFixture fixture;
  {
    test::UdpPeer dns(fixture.loop(), "127.0.0.1", test::nxdomain_reply);
    DnsChannels channels(fixture.loop());
    Answer answer{fixture.loop()};
    answer.drop = channels.get(loopback(dns.port()));
    std::weak_ptr<AresChannel> weak = answer.drop;
    query_a(*answer.drop, "gone.invalid", answer);
    REQUIRE(fixture.run_until([&] { return answer.status.has_value(); }));
    CHECK(*answer.status == ARES_ENOTFOUND);
    CHECK(weak.expired());  // released inside ares_process_fd, destroyed after it
    CHECK(answer.calls == 1);
    fixture.run_for(10ms);
    CHECK(channels.size() == 0);
    CHECK(answer.calls == 1);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("a channel asks its loopback server with ares_query and ares_send", "[dns]") {
  LoopFixture fixture;
  {
    test::UdpPeer answering(fixture.loop(), "127.0.0.1", a_reply);
    test::UdpPeer nx(fixture.loop(), "127.0.0.1", test::nxdomain_reply);
    DnsChannels channels(fixture.loop());
    auto ch = channels.get(loopback(answering.port()));
    auto nx_ch = channels.get(loopback(nx.port()));

    Answer queried{fixture.loop()}, sent{fixture.loop()}, missing{fixture.loop()};
    query_a(*ch, "a.invalid", queried);

    unsigned char* buf = nullptr;
    int len = 0;
    REQUIRE(ares_create_query("b.invalid", ns_c_in, ns_t_a, 0x1234, 1, &buf, &len, 0) ==
            ARES_SUCCESS);
    ares_send(ch->get(), buf, len, &on_answer, &sent);
    ares_free_string(buf);
    ch->after_submit();

    query_a(*nx_ch, "nothing.invalid", missing);

    CHECK_FALSE(queried.status);  // never inside the call
    REQUIRE(fixture.run_until([&] { return queried.status && sent.status && missing.status; }, 3s));
    CHECK(*queried.status == ARES_SUCCESS);
    CHECK(first_a(queried.reply) == "192.0.2.7");
    CHECK(*sent.status == ARES_SUCCESS);
    CHECK(first_a(sent.reply) == "192.0.2.7");
    // NXDOMAIN: an error status, and the reply is there to read.
    CHECK(*missing.status == ARES_ENOTFOUND);
    REQUIRE(missing.reply.size() >= 12);
    CHECK((missing.reply[3] & 0x0f) == 3);
    CHECK(answering.received() == 2);
    CHECK(nx.received() == 1);
    CHECK(queried.calls == 1);
    CHECK(sent.calls == 1);
    CHECK(missing.calls == 1);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("UDP answers over 512 bytes need ARES_FLAG_EDNS", "[dns]") {
  LoopFixture fixture;
  {
    // 40 answers: 16 bytes each after the question, 600 bytes and more in all.
    test::UdpPeer big(fixture.loop(), "127.0.0.1", [](std::string_view query) {
      auto r = a_reply(query);
      if (!r) return r;
      std::string answer = r->substr(r->size() - 16);
      for (int i = 1; i < 40; ++i) r->append(answer);
      (*r)[7] = 40;
      return r;
    });
    DnsChannels channels(fixture.loop());
    auto plain_opts = loopback(big.port());
    plain_opts.flags = ARES_FLAG_IGNTC;
    auto edns_opts = plain_opts;
    edns_opts.flags |= ARES_FLAG_EDNS;
    auto plain = channels.get(plain_opts);
    auto edns = channels.get(edns_opts);
    Answer cut{fixture.loop()}, whole{fixture.loop()};
    query_a(*plain, "big.invalid", cut);
    query_a(*edns, "big.invalid", whole);
    REQUIRE(fixture.run_until([&] { return cut.status && whole.status; }, 3s));
    CHECK(cut.reply.size() == 512);  // c-ares 1.18.1: PACKETSZ unless ARES_FLAG_EDNS
    CHECK(whole.reply.size() > 600);
  }
  REQUIRE(fixture.finish() == 0);
}

// The channel's timer is not asked of c-ares after every event (that walk was O(queries)),
// only kept at or before c-ares' earliest timeout: every retry and every timeout of many
// queries in flight must still happen on c-ares' schedule.
TEST_CASE("queries in flight are retried and time out on c-ares' schedule", "[dns]") {
  LoopFixture fixture;
  {
    test::UdpPeer dns(fixture.loop(), "127.0.0.1");  // silent
    DnsChannels channels(fixture.loop());
    // Two tries: 100 ms, then 200 ms (c-ares doubles it each round).
    auto ch = channels.get(loopback(dns.port(), 100ms, 2));
    REQUIRE(ch->get() != nullptr);
    struct Sent {
      std::chrono::nanoseconds at{};
      std::optional<std::chrono::nanoseconds> took;
      int status = 0;
    };
    constexpr int kQueries = 40;
    std::vector<Sent> sent(kQueries);
    for (auto& q : sent) {
      q.at = uv::now();
      ares_query(
          ch->get(), "silent.invalid", ns_c_in, ns_t_a,
          [](void* arg, int status, int, unsigned char*, int) {
            auto* s = static_cast<Sent*>(arg);
            s->took = uv::now() - s->at;
            s->status = status;
          },
          &q);
      ch->after_submit();
      fixture.run_for(3ms);  // spread over ~120 ms: the queries' timeouts all differ
    }
    REQUIRE(fixture.run_until(
        [&] {
          for (auto& q : sent)
            if (!q.took) return false;
          return true;
        },
        5s));
    for (auto& q : sent) {
      CHECK(q.status == ARES_ETIMEOUT);
      CHECK(*q.took >= 295ms);  // never before c-ares' time
      CHECK(*q.took < 800ms);   // and soon after it (the grid is 6 ms; the rest is slack)
    }
    CHECK(dns.received() == 2 * kQueries);  // every retry was sent
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("a silent server times out on the channel's own timer", "[dns]") {
  LoopFixture fixture;
  {
    test::UdpPeer dns(fixture.loop(), "127.0.0.1");
    DnsChannels channels(fixture.loop());
    auto ch = channels.get(loopback(dns.port(), 200ms, 1));
    Answer answer{fixture.loop()};
    auto start = uv::now();
    query_a(*ch, "silent.invalid", answer);
    REQUIRE(fixture.run_until([&] { return answer.status.has_value(); }, 3s));
    auto took = uv::now() - start;
    CHECK(*answer.status == ARES_ETIMEOUT);
    CHECK(took >= 190ms);
    CHECK(took < 1500ms);
    CHECK(dns.received() == 1);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("destroying DnsChannels with a query outstanding is clean", "[dns]") {
  LoopFixture fixture;
  {
    test::UdpPeer dns(fixture.loop(), "127.0.0.1");  // silent
    auto channels = std::make_unique<DnsChannels>(fixture.loop());
    Answer released{fixture.loop()}, held{fixture.loop()};
    auto ch = channels->get(loopback(dns.port(), 5000ms));
    auto other = channels->get(loopback(dns.port(), 4000ms));
    query_a(*ch, "released.invalid", released);
    query_a(*other, "held.invalid", held);
    REQUIRE(fixture.run_until([&] { return dns.received() >= 2; }, 2s));

    ch.reset();  // waiting for its loop turn when DnsChannels goes
    channels.reset();
    CHECK(released.calls == 1);
    CHECK(*released.status == ARES_EDESTRUCTION);
    // A holder that outlived DnsChannels (the daemon never does that): destroyed at once.
    CHECK(held.calls == 0);
    other.reset();
    CHECK(held.calls == 1);
    CHECK(*held.status == ARES_EDESTRUCTION);
    fixture.run_for(10ms);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("a channel whose servers cannot be set is no channel, and says why", "[dns]") {
  LoopFixture fixture;
  {
    AresChannelOptions o;
    o.servers = {SockAddr{}};  // no address family
    AresChannel ch(fixture.loop(), o);
    CHECK(ch.get() == nullptr);
    CHECK_THAT(ch.error(), Catch::Contains("cannot set DNS servers"));
    ch.after_submit();  // harmless
  }
  REQUIRE(fixture.finish() == 0);
}
