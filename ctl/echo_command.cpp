// `netmonctl echo`: a ping-like RFC 862 echo client. A thin front end over the udp_echo
// probe's engine (EchoExchange, probes/udp_echo.h): this file parses the command line,
// resolves the host, and prints the engine's events and statistics.
#include "base/address.h"
#include "base/duration.h"
#include "base/uv.h"
#include "commands.h"
#include "resolver.h"
#include "udp_echo.h"

#include <fmt/format.h>

#include <charconv>
#include <csignal>
#include <cstdio>
#include <optional>

namespace netmond::ctl {
namespace {

using std::chrono::milliseconds;

constexpr std::string_view kDefaultMessage = "netmonctl echo";

std::string usage() {
  return fmt::format(
      R"(Usage: netmonctl echo HOST[:PORT] [MESSAGE] [OPTIONS]

Sends MESSAGE to an RFC 862 echo server and checks that every byte comes back, like
ping: one line per reply, a summary at the end. Each request is MESSAGE followed by a
{}-byte trailer carrying a random per-run nonce, a sequence number and the send time,
which measures RTT, loss, duplicates, reordering, corruption and jitter against any
echo server (netmond-echo, inetd, socat).

Arguments:
  HOST[:PORT]          an IP address or a host name; PORT defaults to {}; an IPv6
                       address with a port is written [::1]:{}
  MESSAGE              the text to send (default "{}")

Options:
  -c, --count N        send N requests (default 1; 0: until interrupted)
  -i, --interval TIME  wait TIME between requests (default 1s)
  -W, --timeout TIME   wait up to TIME for each echo (default 2s)
  -s, --size BYTES     pad every request to BYTES (at least MESSAGE + {}; at most {})
      --tcp            use RFC 862 over TCP (one connection) instead of UDP
  -4, -6               use only IPv4 or only IPv6 addresses of HOST
  -h, --help           print this help and exit

TIME is seconds ("0.2") or a number with a unit ("200ms", "2s", "1m").
Ctrl-C stops sending, waits for the echoes in flight, and prints the summary; a second
Ctrl-C prints it at once.

Exit status: 0 every request was echoed correctly; 1 otherwise; 2 usage error.
)",
      kEchoTrailerSize, kEchoDefaultPort, kEchoDefaultPort, kDefaultMessage, kEchoTrailerSize,
      kEchoMaxSize);
}

struct EchoArgs {
  std::string host;
  std::uint16_t port = kEchoDefaultPort;
  std::string message{kDefaultMessage};
  unsigned count = 1;
  milliseconds interval{1000};
  milliseconds timeout{2000};
  std::size_t size = 0;
  bool tcp = false;
  IpVersion ip_version = IpVersion::Any;
  bool help = false;
};

bool parse_number(std::string_view text, unsigned long max, unsigned long* out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return !text.empty() && ec == std::errc() && end == text.data() + text.size() && *out <= max;
}

// "host", "host:port", "1.2.3.4:7", "::1", "[::1]", "[::1]:7".
bool parse_target(std::string_view text, EchoArgs* a, std::string* err) {
  HostPortText parts;
  switch (split_host_port(text, &parts)) {
    case SplitError::MissingBracket: *err = fmt::format("'{}': missing ']'", text); return false;
    case SplitError::JunkAfterBracket:
      *err = fmt::format("'{}': expected ':PORT' after ']'", text);
      return false;
    case SplitError::None: break;
  }
  std::string_view host = parts.host;
  std::optional<std::string_view> port = parts.port;
  if (host.empty()) {
    *err = fmt::format("'{}': no host", text);
    return false;
  }
  a->host = std::string(host);
  if (port) {
    unsigned long p = 0;
    if (!parse_number(*port, 65535, &p) || p == 0) {
      *err = fmt::format("'{}': the port must be a number from 1 to 65535", text);
      return false;
    }
    a->port = static_cast<std::uint16_t>(p);
  }
  return true;
}

bool parse_time(std::string_view option, std::string_view text, milliseconds* out,
                std::string* err) {
  auto d = parse_duration(text);
  if (!d || *d < milliseconds(1)) {
    *err = fmt::format("{}: '{}' is not a duration of at least 1ms (e.g. 0.2, 200ms, 2s)", option,
                       text);
    return false;
  }
  *out = *d;
  return true;
}

std::optional<EchoArgs> parse_args(const Args& args, std::string* err) {
  EchoArgs a;
  std::vector<std::string> positional;
  bool options_done = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (options_done || arg == "-" || !arg.starts_with("-")) {
      positional.emplace_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      a.help = true;
      return a;
    }
    if (arg == "--tcp") {
      a.tcp = true;
      continue;
    }
    if (arg == "-4" || arg == "-6") {
      a.ip_version = arg == "-4" ? IpVersion::V4 : IpVersion::V6;
      continue;
    }
    // The options with a value: "-c 5", "-c5", "--count 5", "--count=5".
    std::string_view name = arg;
    std::optional<std::string_view> value;
    if (arg.starts_with("--")) {
      if (auto eq = arg.find('='); eq != std::string_view::npos) {
        name = arg.substr(0, eq);
        value = arg.substr(eq + 1);
      }
    } else if (arg.size() > 2) {
      name = arg.substr(0, 2);
      value = arg.substr(2);
    }
    char opt = 0;
    if (name == "-c" || name == "--count") opt = 'c';
    if (name == "-i" || name == "--interval") opt = 'i';
    if (name == "-W" || name == "--timeout") opt = 'W';
    if (name == "-s" || name == "--size") opt = 's';
    if (opt == 0) {
      *err = fmt::format("unknown option '{}'", arg);
      return std::nullopt;
    }
    if (!value) {
      if (i + 1 == args.size()) {
        *err = fmt::format("{} needs a value", name);
        return std::nullopt;
      }
      value = args[++i];
    }
    unsigned long n = 0;
    switch (opt) {
      case 'c':
        if (!parse_number(*value, 1'000'000'000, &n)) {
          *err = fmt::format("{}: '{}' is not a count from 0 to 1000000000", name, *value);
          return std::nullopt;
        }
        a.count = static_cast<unsigned>(n);
        break;
      case 'i':
        if (!parse_time(name, *value, &a.interval, err)) return std::nullopt;
        break;
      case 'W':
        if (!parse_time(name, *value, &a.timeout, err)) return std::nullopt;
        break;
      case 's':
        if (!parse_number(*value, kEchoMaxSize, &n)) {
          *err = fmt::format("{}: '{}' is not a size from 0 to {}", name, *value, kEchoMaxSize);
          return std::nullopt;
        }
        a.size = n;
        break;
    }
  }
  if (positional.empty()) {
    *err = "missing HOST";
    return std::nullopt;
  }
  if (positional.size() > 2) {
    *err =
        fmt::format("unexpected argument '{}' (a MESSAGE with spaces needs quotes)", positional[2]);
    return std::nullopt;
  }
  if (!parse_target(positional[0], &a, err)) return std::nullopt;
  if (positional.size() == 2) a.message = positional[1];
  if (std::string problem = echo_size_problem(a.message, a.size); !problem.empty()) {
    *err = problem;
    return std::nullopt;
  }
  return a;
}

// One run of the client on its own loop: resolve, exchange, summary.
class EchoClient {
 public:
  EchoClient(uv_loop_t* loop, EchoArgs args)
      : loop_(loop),
        args_(std::move(args)),
        resolver_(loop),
        exchange_(loop),
        sigint_(loop),
        sigterm_(loop) {}

  void start() {
    sigint_.start(SIGINT, [this](int) { interrupted(); });
    sigterm_.start(SIGTERM, [this](int) { interrupted(); });
    request_ = resolver_.resolve(args_.host, args_.ip_version,
                                 [this](ResolveResult r) { on_resolved(std::move(r)); });
  }

  int exit_code() const { return code_; }

 private:
  void on_resolved(ResolveResult r) {
    if (!r.ok) {
      fmt::print(stderr, "netmonctl echo: cannot resolve '{}': {}\n", args_.host, r.error);
      return finish(kExitFailed);
    }
    target_ = r.addresses.front();
    target_.set_port(args_.port);
    peer_ = target_.with_port();
    EchoExchangeOptions o;
    o.message = args_.message;
    o.size = args_.size;
    o.count = args_.count;
    o.spacing = args_.interval;
    o.timeout = args_.timeout;
    o.tcp = args_.tcp;
    int rc = exchange_.start(
        target_, std::move(o), [this](const EchoEvent& e) { on_event(e); }, [this] { on_done(); });
    if (rc != 0) {
      fmt::print(stderr, "netmonctl echo: cannot {} {}: {}\n",
                 exchange_.failed_step() == EchoExchange::Step::Connect ? "connect to"
                                                                        : "open a socket for",
                 peer_, uv::error_text(rc));
      return finish(kExitFailed);
    }
    std::string name = parse_ip(args_.host) ? peer_ : fmt::format("{} ({})", args_.host, peer_);
    print("ECHO {} over {}: {} bytes per request\n", name, args_.tcp ? "TCP" : "UDP",
          exchange_.request_size());
  }

  void on_event(const EchoEvent& e) {
    const std::string seq = e.seq ? fmt::format("seq={}", *e.seq) : std::string();
    switch (e.kind) {
      case EchoEvent::Kind::Echo:
        return print("{} bytes from {}: {} time={}{}\n", e.bytes, peer_, seq, format_rtt(e.rtt),
                     e.reordered ? " (out of order)" : "");
      case EchoEvent::Kind::Duplicate:
        return print("{} bytes from {}: {} time={} (duplicate)\n", e.bytes, peer_, seq,
                     format_rtt(e.rtt));
      case EchoEvent::Kind::Late:
        return print("{} bytes from {}: {} time={} (late: after the {} timeout)\n", e.bytes, peer_,
                     seq, format_rtt(e.rtt), format_duration(args_.timeout));
      case EchoEvent::Kind::Mismatch: {
        std::string what = e.expected == 0 ? std::string("more bytes than were sent")
                                           : fmt::format("expected {} bytes", e.expected);
        if (e.first_difference)
          what += fmt::format(", first difference at byte {}", *e.first_difference);
        return print("{} bytes from {}: {}{}payload mismatch ({})\n", e.bytes, peer_, seq,
                     seq.empty() ? "" : " ", what);
      }
      case EchoEvent::Kind::Stale:
        return print("{} bytes from {}: stale echo of another run, ignored\n", e.bytes, peer_);
      case EchoEvent::Kind::Timeout:
        return print("timeout: {} (no echo within {})\n", seq, format_duration(args_.timeout));
      case EchoEvent::Kind::Unreachable: {
        std::string from;
        if (e.icmp && e.icmp->offender && e.text == "port unreachable")
          from = fmt::format(" (ICMP from {})", e.icmp->offender->ip());
        return print("{}: {}{}\n", e.text, seq, from);
      }
      case EchoEvent::Kind::Error: return print("{} ({})\n", e.text, peer_);
    }
  }

  void on_done() {
    const EchoStats& s = exchange_.stats();
    std::string line =
        fmt::format("{} sent, {} echoed, {} mismatched, {} lost, {} duplicates, {} reordered",
                    s.sent, s.echoed, s.mismatched, s.lost(), s.duplicates, s.reordered);
    if (s.late > 0) line += fmt::format(", {} late", s.late);
    if (s.stale > 0) line += fmt::format(", {} stale", s.stale);
    if (s.rtt.count() > 0)
      line += fmt::format(", rtt min/avg/max/mdev = {:.3f}/{:.3f}/{:.3f}/{:.3f} ms", s.rtt.min_ms(),
                          s.rtt.avg_ms(), s.rtt.max_ms(), s.rtt.mdev_ms());
    if (s.rtt.count() > 1) line += fmt::format(", jitter {:.3f} ms", s.rtt.jitter_ms());
    print("\n--- {} echo statistics ---\n{}\n", peer_, line);
    finish(s.sent > 0 && s.echoed == s.sent ? kExitOk : kExitFailed);
  }

  // First Ctrl-C: send no more, let the requests in flight come back or time out. Second:
  // the summary at once.
  void interrupted() {
    if (finished_) return;
    if (!exchange_.running()) return finish(kExitFailed);  // still resolving
    if (++interrupts_ == 1) return exchange_.drain();
    exchange_.stop();
    on_done();
  }

  void finish(int code) {
    if (finished_) return;
    finished_ = true;
    code_ = code;
    exchange_.stop();
    request_.reset();
    uv_stop(loop_);  // the resolver and the signal watchers would keep the loop running
  }

  template <typename... T>
  void print(fmt::format_string<T...> f, T&&... args) {
    fmt::print(stdout, f, std::forward<T>(args)...);
    std::fflush(stdout);  // line by line, also into a pipe
  }

  uv_loop_t* loop_;
  const EchoArgs args_;
  Resolver resolver_;
  Resolver::Request request_;
  SockAddr target_;
  std::string peer_;  // "127.0.0.1:10100"
  EchoExchange exchange_;
  uv::Signal sigint_;
  uv::Signal sigterm_;
  int interrupts_ = 0;
  bool finished_ = false;
  int code_ = kExitFailed;
};

}  // namespace

int echo_command(const Args& args) {
  std::string err;
  std::optional<EchoArgs> a = parse_args(args, &err);
  if (!a) {
    fmt::print(stderr, "netmonctl echo: {}\nRun 'netmonctl echo --help' for usage.\n", err);
    return kExitUsage;
  }
  if (a->help) {
    fmt::print("{}", usage());
    return kExitOk;
  }
  uv_loop_t loop;
  if (int rc = uv_loop_init(&loop); rc != 0) {
    fmt::print(stderr, "netmonctl echo: cannot start the event loop: {}\n", uv::error_text(rc));
    return kExitFailed;
  }
  int code = kExitFailed;
  {
    EchoClient client(&loop, std::move(*a));
    client.start();
    uv_run(&loop, UV_RUN_DEFAULT);
    code = client.exit_code();
  }
  uv_run(&loop, UV_RUN_DEFAULT);  // the close callbacks of the client's handles
  uv_loop_close(&loop);
  return code;
}

}  // namespace netmond::ctl
