// A fake DNS server on 127.0.0.1, UDP and TCP on one port, for the faults a real server
// (dnsmasq) will not produce on demand: malformed answers, a wrong transaction id, an
// answer to another question, rcodes on request, truncation, silence. It runs on the test's
// libuv loop beside the probe (no thread), so it serves only while the test runs the loop.
//
// It decodes just enough of each query to answer it (id, RD, the first question) and
// builds its replies itself, independently of the probe's own DNS code.
#pragma once

#include "base/uv.h"

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace netmond::test {

// How a FakeDnsServer answers every query (over UDP and TCP alike unless noted). Every
// reply echoes the query's id, RD and question unless the fault says otherwise.
enum class DnsFault : std::uint8_t {
  Answer,  // NOERROR with the records of FakeDnsOptions for the asked type
  // Id and question right, then ANCOUNT 1 and a record cut short (an owner label of 63
  // bytes with 9 present): the transport accepts it, parsing the answer fails.
  Garbage,
  // Bytes that are no DNS message at all ("this is not a DNS message"): a resolver drops
  // them as an answer to no query of its own, so the client sees silence.
  Noise,
  WrongId,    // the Answer reply with the id changed (xor 0x5555): to be ignored
  Truncated,  // UDP: TC set, no records; TCP: the Answer reply
  // UDP: TC set, ANCOUNT as in the Answer reply, and the records cut off in the middle of
  // the first RDATA (RFC 2181 9 lets a server leave a partial record set); TCP: the
  // Answer reply. A client must look at TC before it parses the records.
  TruncatedPartial,
  ServFail,         // rcode 2, no records
  NxDomain,         // rcode 3
  Refused,          // rcode 5
  Empty,            // NOERROR without records
  CompressionLoop,  // one answer whose owner name is "a" + a pointer back to itself
  OtherQuestion,    // the Answer reply for "other.test" instead of the asked name
  Silent,           // no reply; TCP connections are accepted and left open
};

// Set the fields a fault uses after construction (-Wmissing-field-initializers rejects a
// designated initializer that leaves fields out).
struct FakeDnsOptions {
  explicit FakeDnsOptions(DnsFault f = DnsFault::Answer) : fault(f) {}
  DnsFault fault;
  // The records of Answer (and WrongId, Truncated over TCP, OtherQuestion), by the asked
  // type: A -> one record per `a` entry, AAAA -> per `aaaa`, TXT -> one single-string
  // record per `txt` entry; other types get NOERROR without records.
  std::vector<std::string> a{"192.0.2.1"};
  std::vector<std::string> aaaa{"2001:db8::1"};
  std::vector<std::string> txt{"fake"};
  std::uint32_t ttl = 60;
  bool aa = false;  // header bits of every reply (RA is always set)
  bool ad = false;
};

// A query as the fake received it.
struct FakeDnsQuery {
  std::uint16_t id = 0;
  std::string name;  // first question, labels joined by '.', no trailing dot ("" = root)
  std::uint16_t type = 0;
  bool rd = false;
  bool edns = false;  // ARCOUNT > 0 (an OPT record, presumably)
  bool tcp = false;
};

// The name for OtherQuestion.
inline constexpr std::string_view kFakeOtherName = "other.test";

class FakeDnsServer {
 public:
  FakeDnsServer(uv_loop_t* loop, FakeDnsOptions options);
  FakeDnsServer(uv_loop_t* loop, DnsFault fault);
  // Closes the sockets and every connection; run the loop afterwards so the handles are
  // freed (LoopFixture::finish does).
  ~FakeDnsServer();
  FakeDnsServer(const FakeDnsServer&) = delete;
  FakeDnsServer& operator=(const FakeDnsServer&) = delete;

  std::uint16_t port() const { return port_; }  // UDP and TCP
  std::string server() const;                   // "127.0.0.1:<port>"
  // Changes how the following queries are answered (e.g. Silent, then Answer).
  void set_options(FakeDnsOptions options) { options_ = std::move(options); }

  int udp_queries() const { return udp_queries_; }
  int tcp_queries() const { return tcp_queries_; }
  int tcp_connections() const { return accepted_; }
  // Every query that could be decoded, in arrival order (undecodable ones count above).
  const std::vector<FakeDnsQuery>& queries() const { return queries_; }

  // The reply to `query` under `fault` (std::nullopt: none); public for the fixture's own
  // test. `tcp` selects Truncated's TCP behaviour.
  static std::optional<std::string> reply(const FakeDnsOptions& options, std::string_view query,
                                          bool tcp, FakeDnsQuery* decoded);

 private:
  struct Connection;
  void on_datagram(ssize_t nread, const uv_buf_t* buf, const sockaddr* addr);
  void on_connection(int status);
  void on_read(Connection& c, ssize_t nread, const uv_buf_t* buf);
  void write_next(Connection& c);
  void close(Connection& c);

  FakeDnsOptions options_;
  uv::Udp udp_;
  uv::TcpServer tcp_;
  std::uint16_t port_ = 0;
  char udp_buf_[65536];
  // Never shrinks while the server lives: callbacks hold Connection pointers.
  std::vector<std::unique_ptr<Connection>> connections_;
  int udp_queries_ = 0;
  int tcp_queries_ = 0;
  int accepted_ = 0;
  std::vector<FakeDnsQuery> queries_;
};

}  // namespace netmond::test
