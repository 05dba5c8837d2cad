// The SNTP client's protocol logic without sockets: the time format and its era
// arithmetic, the header, the request, the judgement of responses, offset and delay, the
// kiss-o'-death back-off.
#include "ntp_packet.h"

#include <catch2/catch.hpp>

#include <string>

using namespace netmond;

namespace {

constexpr NtpTimestamp kNonce = 0x0123456789abcdefULL;

// Seconds (since 1900, era 0) and a fraction as an NTP timestamp.
constexpr NtpTimestamp ts(std::uint64_t seconds, double fraction = 0) {
  return (seconds << 32) + static_cast<std::uint64_t>(fraction * 4294967296.0);
}

// A valid server reply to kNonce: received at T2, sent at T3.
NtpPacket reply(NtpTimestamp t2 = ts(3'900'000'000, 0.25), NtpTimestamp t3 = 0) {
  NtpPacket p;
  p.version = 4;
  p.mode = 4;
  p.stratum = 2;
  p.poll = 6;
  p.precision = -20;
  p.root_delay = 0x00000800;       // 1/32 s
  p.root_dispersion = 0x00001000;  // 1/16 s
  p.reference_id = 0xc0000201;
  p.reference = t2 - ts(64);
  p.origin = kNonce;
  p.receive = t2;
  p.transmit = t3 != 0 ? t3 : t2 + ts(0, 0.001);
  return p;
}

NtpResponse judge(const NtpPacket& p) { return judge_ntp_response(encode_ntp(p), kNonce); }

}  // namespace

TEST_CASE("ntp: timestamps from the realtime clock", "[ntp]") {
  CHECK(ntp_from_timespec(timespec{0, 0}) == kNtpUnixOffset << 32);
  CHECK(ntp_from_timespec(timespec{1, 500'000'000}) == ((kNtpUnixOffset + 1) << 32 | 0x80000000));
  // Rounded to the nearest 2^-32 s: one nanosecond is 4.29 units.
  CHECK((ntp_from_timespec(timespec{0, 1}) & 0xffffffff) == 4);
  CHECK((ntp_from_timespec(timespec{0, 999'999'999}) & 0xffffffff) == 0xfffffffc);
  // 2036-02-07 06:28:16 UTC: era 1 begins, the seconds field starts again at 0.
  const time_t rollover = static_cast<time_t>((std::uint64_t{1} << 32) - kNtpUnixOffset);
  CHECK(ntp_from_timespec(timespec{rollover, 0}) == 0);
  CHECK(ntp_from_timespec(timespec{rollover - 1, 0}) == ts(0xffffffff));
}

TEST_CASE("ntp: differences are signed and right across the era rollover", "[ntp]") {
  CHECK(ntp_diff(ts(100, 0.5), ts(100)) == 0.5);
  CHECK(ntp_diff(ts(100), ts(100, 0.5)) == -0.5);
  // One second before and one after the 2036 rollover are two seconds apart.
  const NtpTimestamp before = ts(0xffffffff);
  const NtpTimestamp after = ts(1);
  CHECK(ntp_diff(after, before) == 2.0);
  CHECK(ntp_diff(before, after) == -2.0);
  CHECK(ntp_short_seconds(0x00018000) == 1.5);
}

TEST_CASE("ntp: the header encodes and decodes field for field", "[ntp]") {
  NtpPacket p = reply();
  p.leap = 2;
  p.poll = -3;
  const std::string wire = encode_ntp(p);
  REQUIRE(wire.size() == kNtpHeaderSize);
  CHECK(static_cast<unsigned char>(wire[0]) == (2 << 6 | 4 << 3 | 4));
  CHECK(static_cast<unsigned char>(wire[2]) == 0xfd);
  // The origin timestamp sits at byte 24, big-endian (chrony's NTP_Packet layout).
  CHECK(static_cast<unsigned char>(wire[24]) == 0x01);
  CHECK(static_cast<unsigned char>(wire[31]) == 0xef);
  auto back = decode_ntp(wire);
  REQUIRE(back);
  CHECK(*back == p);
  CHECK_FALSE(decode_ntp(wire.substr(0, 47)));
  CHECK(decode_ntp(wire + std::string(20, 'x')) == p);  // extension fields are skipped
}

TEST_CASE("ntp: a request reveals nothing but its random transmit timestamp", "[ntp]") {
  const std::string wire = encode_ntp(ntp_request(kNonce));
  REQUIRE(wire.size() == 48);
  CHECK(wire[0] == 0x23);  // LI 0, version 4, mode 3 (client)
  CHECK(wire[3] == 32);    // precision 2^32 s: no real clock's
  for (std::size_t i = 1; i < 40; ++i) {
    if (i == 3) continue;
    INFO("byte " << i);
    CHECK(wire[i] == 0);
  }
  CHECK(decode_ntp(wire)->transmit == kNonce);
}

TEST_CASE("ntp: a good reply is a sample", "[ntp]") {
  NtpResponse r = judge(reply());
  CHECK(r.kind == NtpResponse::Kind::Good);
  REQUIRE(r.packet);
  CHECK(r.packet->stratum == 2);
  // Version 3 servers are answered as well.
  NtpPacket v3 = reply();
  v3.version = 3;
  CHECK(judge(v3).kind == NtpResponse::Kind::Good);
}

TEST_CASE("ntp: datagrams that are no usable reply are bogus, and say why", "[ntp]") {
  const std::string good = encode_ntp(reply());
  auto bogus = [](std::string_view bytes) {
    NtpResponse r = judge_ntp_response(bytes, kNonce);
    CHECK(r.kind == NtpResponse::Kind::Bogus);
    return r.reason;
  };
  CHECK(bogus(good.substr(0, 20)) == "short packet (20 bytes, an NTP header has 48)");
  CHECK(bogus(good + "xy") == "length 50 is not a multiple of 4");
  NtpPacket p = reply();
  p.version = 2;
  CHECK(bogus(encode_ntp(p)) == "version 2 (expected 3 or 4)");
  p = reply();
  p.mode = 3;
  CHECK(bogus(encode_ntp(p)) == "mode 3 (expected 4, server)");
  p.mode = 5;  // broadcast
  CHECK(bogus(encode_ntp(p)) == "mode 5 (expected 4, server)");
  p = reply();
  p.transmit = 0;
  CHECK(bogus(encode_ntp(p)) == "transmit timestamp is zero");
  CHECK(bogus("this is not an NTP packet but 48 bytes of text..") == "version 6 (expected 3 or 4)");
}

TEST_CASE("ntp: a reply with another origin timestamp is stale, not ours", "[ntp]") {
  NtpPacket p = reply();
  p.origin = kNonce ^ 1;
  NtpResponse r = judge(p);
  CHECK(r.kind == NtpResponse::Kind::Stale);
  // Even a kiss-o'-death: a spoofed DENY must not stop the probe.
  p.stratum = 0;
  p.reference_id = 0x44454e59;  // DENY
  CHECK(judge(p).kind == NtpResponse::Kind::Stale);
}

TEST_CASE("ntp: stratum 0 is a kiss-o'-death with its code", "[ntp]") {
  NtpPacket p = reply();
  p.leap = 3;
  p.stratum = 0;
  p.reference_id = 0x52415445;  // RATE
  NtpResponse r = judge(p);
  CHECK(r.kind == NtpResponse::Kind::Kiss);
  CHECK(r.kiss == "RATE");
  CHECK(ntp_kiss_code(0x44454e59) == "DENY");
  CHECK(ntp_kiss_code(0x52535452) == "RSTR");
  CHECK(ntp_kiss_code(0x41420000) == "AB");  // trailing NULs dropped
  CHECK(ntp_kiss_code(0x0102fe41) == "0x0102fe41");
  CHECK(ntp_kiss_meaning("RATE") == "rate exceeded");
  CHECK(ntp_kiss_meaning("XXXX").empty());
  CHECK(ntp_kiss_action("RATE") == NtpKissAction::SlowDown);
  CHECK(ntp_kiss_action("DENY") == NtpKissAction::Stop);
  CHECK(ntp_kiss_action("RSTR") == NtpKissAction::Stop);
  CHECK(ntp_kiss_action("INIT") == NtpKissAction::None);
}

TEST_CASE("ntp: answers that fail a sanity test are rejected, and say why", "[ntp]") {
  auto rejected = [](const NtpPacket& p, Status status) {
    NtpResponse r = judge(p);
    CHECK(r.kind == NtpResponse::Kind::Rejected);
    CHECK(r.status == status);
    return r.reason;
  };
  NtpPacket p = reply();
  p.leap = 3;
  CHECK(rejected(p, Status::Unexpected) == "server unsynchronised (leap indicator 3)");
  p = reply();
  p.stratum = 16;
  CHECK(rejected(p, Status::Unexpected) == "server unsynchronised (stratum 16)");
  p.stratum = 200;
  CHECK(rejected(p, Status::Unexpected) == "server unsynchronised (stratum 200)");
  p = reply();
  p.receive = 0;
  CHECK(rejected(p, Status::BadResponse) == "receive timestamp is zero");
  p = reply();
  p.root_delay = 16 << 16;
  p.root_dispersion = 8 << 16;
  CHECK(rejected(p, Status::Unexpected) ==
        "root distance 16.000000 s (root delay 16.000000 s / 2 + root dispersion 8.000000 s) is "
        "not below 16 s");
  p.root_dispersion = (8 << 16) - 1;  // just below
  CHECK(judge(p).kind == NtpResponse::Kind::Good);
  p = reply(ts(1000, 0.5), ts(1000, 0.25));
  CHECK(rejected(p, Status::BadResponse) ==
        "transmit timestamp is 0.250000 s before the receive timestamp");
  p = reply(ts(1000), ts(1005));
  CHECK(rejected(p, Status::BadResponse) ==
        "the server claims to have held the request 5.000000 s (at most 4 s is believed)");
}

TEST_CASE("ntp: offset and delay from T1..T4", "[ntp]") {
  // The server is 1 s ahead; 10 ms each way; it holds the request 2 ms.
  const NtpTimestamp t1 = ts(3'900'000'000);
  const NtpTimestamp t2 = t1 + ts(1, 0.010);
  const NtpTimestamp t3 = t2 + ts(0, 0.002);
  const NtpTimestamp t4 = t1 + ts(0, 0.022);
  NtpSample s = ntp_sample(reply(t2, t3), t1, t4);
  CHECK(s.offset == Approx(1.0).margin(1e-9));
  CHECK(s.delay == Approx(0.020).margin(1e-9));
  // We are ahead: the offset is negative.
  s = ntp_sample(reply(t1 - ts(2), t1 - ts(2) + ts(0, 0.001)), t1, t1 + ts(0, 0.003));
  CHECK(s.offset == Approx(-2.001).margin(1e-9));
  CHECK(s.delay == Approx(0.002).margin(1e-9));
}

TEST_CASE("ntp: offset and delay are right across the era rollover", "[ntp]") {
  // T1 just before the 2036 rollover, T2..T4 just after it.
  const NtpTimestamp t1 = ts(0xffffffff, 0.9);
  const NtpTimestamp t2 = ts(0, 0.95);  // 1.05 s later, the server 1 s ahead
  const NtpTimestamp t3 = ts(0, 0.96);
  const NtpTimestamp t4 = ts(0, 0.01);  // 0.11 s after T1
  NtpSample s = ntp_sample(reply(t2, t3), t1, t4);
  CHECK(s.offset == Approx(1.0).margin(1e-6));
  CHECK(s.delay == Approx(0.1).margin(1e-6));
}

TEST_CASE("ntp: the delay is floored at the server's precision", "[ntp]") {
  // A reply that claims more processing time than the whole round trip.
  const NtpTimestamp t1 = ts(1000);
  NtpPacket p = reply(t1, t1 + ts(0, 0.5));
  p.precision = -10;  // about 1 ms
  NtpSample s = ntp_sample(p, t1, t1 + ts(0, 0.1));
  CHECK(s.delay == Approx(1.0 / 1024));
}

TEST_CASE("ntp: reference ids as people read them", "[ntp]") {
  CHECK(ntp_reference_text(2, 0xc0000201) == "192.0.2.1");
  CHECK(ntp_reference_text(8, 0x7f7f0101) == "127.127.1.1");
  CHECK(ntp_reference_text(1, 0x47505300) == "GPS");
  CHECK(ntp_reference_text(1, 0x50505320) == "PPS");
  CHECK(ntp_reference_text(0, 0x52415445) == "RATE");
}

TEST_CASE("ntp: RATE backs off from 64 s, doubling up to 1024 s", "[ntp]") {
  using std::chrono::seconds;
  CHECK(ntp_rate_backoff(1) == seconds(64));
  CHECK(ntp_rate_backoff(2) == seconds(128));
  CHECK(ntp_rate_backoff(3) == seconds(256));
  CHECK(ntp_rate_backoff(5) == seconds(1024));
  CHECK(ntp_rate_backoff(50) == seconds(1024));
}

TEST_CASE("ntp: offsets are written with a sign and microseconds", "[ntp]") {
  CHECK(format_ntp_offset(0.000123) == "+0.000123 s");
  CHECK(format_ntp_offset(-1.5) == "-1.500000 s");
  CHECK(format_ntp_offset(0) == "+0.000000 s");
}
