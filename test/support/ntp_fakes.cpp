#include "support/ntp_fakes.h"

#include "support/peers.h"

#include <sys/socket.h>
#include <time.h>

#include <cmath>
#include <cstring>
#include <stdexcept>

namespace netmond::test {

namespace {

constexpr std::size_t kHeader = 48;
constexpr std::uint64_t kUnixToNtp = 2'208'988'800;

// The fake's clock as an NTP timestamp, written out by hand (not with the probe's code).
std::uint64_t fake_now(double offset) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  const auto seconds = static_cast<std::uint64_t>(ts.tv_sec) + kUnixToNtp;
  const auto fraction = (static_cast<std::uint64_t>(ts.tv_nsec) << 32) / 1'000'000'000;
  const auto shift = static_cast<std::int64_t>(std::llround(offset * 4294967296.0));
  return (seconds << 32) + fraction + static_cast<std::uint64_t>(shift);
}

void put(std::string& out, std::size_t at, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out[at + i] = static_cast<char>(v >> (8 * (bytes - 1 - i)));
}

std::uint32_t short_format(double seconds) {
  return static_cast<std::uint32_t>(std::llround(seconds * 65536.0));
}

}  // namespace

FakeNtpServer::FakeNtpServer(uv_loop_t* loop, FakeNtpOptions options, const std::string& ip)
    : options_(std::move(options)), loop_(loop) {
  fd_ = bound_socket(ip, SOCK_DGRAM | SOCK_NONBLOCK, &port_);
  std::uint16_t other = 0;
  other_fd_ = bound_socket(ip, SOCK_DGRAM, &other);
  poll_.init(loop, fd_.get());
  poll_.start(UV_READABLE, [this](int status, int) {
    if (status == 0) on_readable();
  });
}

FakeNtpServer::FakeNtpServer(uv_loop_t* loop, NtpFault fault)
    : FakeNtpServer(loop, FakeNtpOptions(fault)) {}

FakeNtpServer::~FakeNtpServer() = default;

void FakeNtpServer::on_readable() {
  for (;;) {
    char buf[2048];
    FakeNtpRequest request;
    request.from.length = sizeof request.from.storage;
    ssize_t n =
        ::recvfrom(fd_.get(), buf, sizeof buf, 0,
                   reinterpret_cast<sockaddr*>(&request.from.storage), &request.from.length);
    if (n < 0) return;
    const std::uint64_t received = fake_now(options_.offset);
    request.bytes.assign(buf, static_cast<std::size_t>(n));
    requests_.push_back(request);
    if (options_.fault == NtpFault::Silent) continue;
    if (options_.delays.empty()) {
      reply(request, received);
      continue;
    }
    auto timer = std::make_unique<uv::Timer>(loop_);
    timer->start(options_.delays[(requests_.size() - 1) % options_.delays.size()],
                 [this, request, received] { reply(request, received); });
    held_.push_back(std::move(timer));
  }
}

void FakeNtpServer::reply(const FakeNtpRequest& request, std::uint64_t received) {
  const FakeNtpOptions& o = options_;
  auto send = [&](const std::string& bytes, int fd) {
    ::sendto(fd, bytes.data(), bytes.size(), 0, request.from.get(), request.from.length);
  };
  if (o.fault == NtpFault::Garbage || o.fault == NtpFault::NoiseFirst) {
    send(std::string("this is not an NTP packet but 48 bytes of text.."), fd_.get());
    if (o.fault == NtpFault::Garbage) return;
  }
  std::string r(kHeader, '\0');
  std::uint8_t leap = o.leap, version = 4, mode = 4, stratum = o.stratum;
  std::uint32_t reference_id = o.reference_id;
  if (o.fault == NtpFault::Kiss) {
    leap = 3;
    stratum = 0;
    reference_id = 0;
    for (std::size_t i = 0; i < 4; ++i)
      reference_id =
          reference_id << 8 | static_cast<unsigned char>(i < o.kiss.size() ? o.kiss[i] : '\0');
  }
  if (o.fault == NtpFault::WrongMode) mode = 3;
  if (o.fault == NtpFault::BadVersion) version = 2;
  r[0] = static_cast<char>(leap << 6 | version << 3 | mode);
  r[1] = static_cast<char>(stratum);
  r[2] = static_cast<char>(o.poll);
  r[3] = static_cast<char>(o.precision);
  put(r, 4, short_format(o.root_delay), 4);
  put(r, 8, short_format(o.root_dispersion), 4);
  put(r, 12, reference_id, 4);
  put(r, 16, received - (std::uint64_t{64} << 32), 8);  // last set a minute ago
  // Origin: the request's transmit timestamp, copied as the bytes came.
  if (request.bytes.size() >= kHeader) r.replace(24, 8, request.bytes, 40, 8);
  if (o.wrong_origin) r[31] = static_cast<char>(r[31] ^ 0x5a);
  put(r, 32, received, 8);
  // Transmit: the receive time, so a held reply's hold counts as network delay.
  put(r, 40, o.fault == NtpFault::ZeroTransmit ? 0 : received, 8);
  if (o.fault == NtpFault::Short) r.resize(20);
  send(r, o.fault == NtpFault::OtherPort ? other_fd_.get() : fd_.get());
}

}  // namespace netmond::test
