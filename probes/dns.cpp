#include "dns.h"

#include "ares_channel.h"
#include "base/address.h"
#include "base/duration.h"
#include "base/random.h"
#include "dns_message.h"
#include "network_probe.h"
#include "regex.h"
#include "resolver.h"

#include <ares.h>
#include <fmt/format.h>

#include <strings.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>
#include <utility>

namespace netmond {

namespace {

constexpr unsigned kMaxTries = 5;
constexpr std::string_view kDefaultQuery = "example.com";
// TC is not among them: a truncated UDP answer is always replaced by the TCP one.
constexpr std::array<std::string_view, 4> kFlagNames = {"AA", "RD", "RA", "AD"};

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

void parse_record_types(Params& p, DnsSpec* out) {
  const YAML::Node* n = p.node("record_types");
  if (n == nullptr) return;
  std::vector<YAML::Node> items;
  if (n->IsScalar()) {
    items.push_back(*n);
  } else if (n->IsSequence() && n->size() > 0) {
    for (const auto& item : *n) items.push_back(item);
  } else {
    p.error("record_types", "expected a record type or a list of them, e.g. [A, MX]");
    return;
  }
  std::vector<std::uint16_t> types;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string suffix = n->IsSequence() ? fmt::format("[{}]", i) : "";
    std::optional<RrType> t;
    if (items[i].IsScalar()) t = rr_type_from_name(items[i].Scalar());
    if (!t) {
      std::string list;
      for (auto name : rr_type_names()) list += (list.empty() ? "" : ", ") + std::string(name);
      p.error_at(items[i], "record_types", suffix,
                 fmt::format("'{}' is not a supported record type ({})",
                             items[i].IsScalar() ? items[i].Scalar() : "?", list));
      continue;
    }
    const auto code = static_cast<std::uint16_t>(*t);
    if (std::find(types.begin(), types.end(), code) != types.end()) {
      p.error_at(items[i], "record_types", suffix,
                 fmt::format("{} is listed twice", rr_type_name(code)));
      continue;
    }
    types.push_back(code);
  }
  if (types.size() == items.size()) {
    out->record_types = types;
    out->record_type = types.front();
  }
}

void parse_string_list(Params& p, std::string_view key, std::vector<std::string>* out) {
  const YAML::Node* n = p.node(key);
  if (n == nullptr) return;
  std::vector<YAML::Node> items;
  if (n->IsScalar()) {
    items.push_back(*n);
  } else if (n->IsSequence()) {
    for (const auto& item : *n) items.push_back(item);
  } else {
    p.error(key, "expected a string or a list of strings");
    return;
  }
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (!items[i].IsScalar())
      p.error_at(items[i], key, n->IsSequence() ? fmt::format("[{}]", i) : "", "expected a string");
    else
      out->push_back(items[i].Scalar());
  }
}

}  // namespace

std::string DnsSpec::name_suffix() const { return "dns/" + rr_type_name(record_type); }

std::string DnsSpec::expansion_name() const { return rr_type_name(record_type); }

std::vector<DnsSpec> DnsSpec::expand() const {
  std::vector<DnsSpec> out;
  for (std::uint16_t t : record_types) {
    DnsSpec s = *this;
    s.record_type = t;
    s.record_types = {t};  // a check is one type: changing the list elsewhere keeps it equal
    out.push_back(std::move(s));
  }
  return out;
}

bool parse(Params& p, DnsSpec* out) {
  std::string s;
  if (p.get("server", &s)) {
    HostPortText hp;
    if (s.empty())
      p.error("server", "server is empty");
    else if (parse_ip(s) || valid_hostname(s))
      out->server = s;
    else if (split_host_port(s, &hp) == SplitError::None && hp.port && !hp.port->empty() &&
             hp.port->find_first_not_of("0123456789") == std::string_view::npos &&
             (parse_ip(hp.host) || valid_hostname(hp.host)))
      p.error("server", fmt::format("'{}': give the port in 'port', not in 'server'", s));
    else
      p.error("server", fmt::format("'{}' is not an IP address or a hostname", s));
  }
  p.get_port("port", &out->port);
  if (p.get_choice("protocol", {"udp", "tcp"}, &s)) out->tcp = s == "tcp";
  if (p.get("query", &s)) {
    std::string wire, error;
    const std::string name = reverse_name(s).value_or(s);
    if (s.empty())
      p.error("query", "query is empty");
    else if (!encode_dns_query(0, name, 1, DnsQueryOptions{}, &wire, &error))
      p.error("query", fmt::format("'{}' is not a valid domain name: {}", s, error));
    else
      out->query = s;
  }
  parse_record_types(p, out);
  if (p.get("expect_rcode", &s)) {
    if (auto rc = rcode_from_name(s))
      out->expect_rcode = *rc;
    else
      p.error("expect_rcode",
              fmt::format("'{}' is not an rcode (NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ...)", s));
  }
  // Expecting NXDOMAIN (or any error) means expecting no answers, unless said otherwise.
  if (!p.get("min_answers", &out->min_answers, 0, 1000) && out->expect_rcode != 0)
    out->min_answers = 0;
  std::vector<std::string> expect;
  parse_string_list(p, "expect", &expect);
  for (const auto& pattern : expect) {
    std::string error;
    if (!Regex::compile(pattern, &error))
      p.error("expect", fmt::format("bad regular expression /{}/: {}", pattern, error));
  }
  out->expect = expect;
  p.get("recursion", &out->recursion);
  std::vector<std::string> flags;
  parse_string_list(p, "expect_flags", &flags);
  for (auto& f : flags) {
    f = upper(f);
    if (std::find(kFlagNames.begin(), kFlagNames.end(), f) == kFlagNames.end())
      p.error("expect_flags", fmt::format("'{}' is not a flag (AA, RD, RA, AD)", f));
  }
  out->expect_flags = flags;
  p.get("tries", &out->tries, 1, kMaxTries);
  return !p.failed();
}

namespace {

// Where a dns check sends its query: its server key, else the server's address when it is
// an IP literal; "" means the system's resolvers.
std::string server_host(const Endpoint& e, const DnsSpec& s) {
  if (!s.server.empty()) return s.server;
  if (parse_ip(e.host)) return e.host;
  return "";
}

std::string query_name(const Endpoint& e, const DnsSpec& s) {
  std::string q = s.query;
  if (q.empty()) q = parse_ip(e.host) ? std::string(kDefaultQuery) : e.host;
  // "a.test." and "a.test" are the same name; "." is the root.
  while (q.size() > 1 && q.back() == '.') q.pop_back();
  if (s.record_type == static_cast<std::uint16_t>(RrType::PTR))
    if (auto r = reverse_name(q)) return *r;
  return q;
}

}  // namespace

bool DnsSpec::uses_ip_version(const Endpoint& e) const { return !server_host(e, *this).empty(); }

std::string describe_target(const Endpoint& e, const DnsSpec& s) {
  const std::string server = server_host(e, s);
  return fmt::format("{} {} @{}", query_name(e, s), rr_type_name(s.record_type),
                     server.empty() ? "system" : host_port(server, s.port));
}

namespace {

std::chrono::milliseconds per_try(std::chrono::milliseconds timeout, unsigned tries) {
  // c-ares doubles the timeout at every round over the servers: t + 2t + 4t ... should fill
  // the check's timeout. Rounded up, so that a silent server's run ends at the check's
  // deadline (expire()), not when c-ares gives up a few milliseconds before it (400 ms in
  // 3 tries rounded down is 57 + 114 + 228 = 399 ms); the last try is the one cut short.
  const std::chrono::milliseconds::rep rounds = (1 << tries) - 1;
  return std::max(std::chrono::milliseconds(1),
                  (timeout + std::chrono::milliseconds(rounds - 1)) / rounds);
}

class DnsProbe final : public Probe {
 public:
  DnsProbe(ProbeContext& ctx, Endpoint endpoint, DnsSpec spec)
      : resolver_(ctx.resolver),
        channels_(ctx.dns),
        endpoint_(std::move(endpoint)),
        spec_(std::move(spec)),
        server_(server_host(endpoint_, spec_)),
        query_(query_name(endpoint_, spec_)),
        deferred_(ctx.loop) {
    std::string unused;
    for (const auto& pattern : spec_.expect)
      if (auto re = Regex::compile(pattern, &unused)) expect_.push_back(std::move(*re));
  }
  ~DnsProbe() override { cancel(); }

  void start(std::chrono::milliseconds timeout, DoneFn done) override;
  Result expire() override;
  void cancel() override;

 private:
  // What c-ares carries for one query: the answer finds the probe through the weak pointer
  // only while the run that sent it is still the probe's current one.
  struct Pending {
    DnsProbe* probe;
  };

  void on_server(ResolveResult r);
  void send(bool tcp);
  static void on_answer(void* arg, int status, int timeouts, unsigned char* abuf,
                        int alen) noexcept;
  void on_reply(int status, std::string_view wire);
  void judge(const DnsMessage& m);
  void finish(Status status, std::string message);
  Result make_result(Status status, std::string message) const;
  std::string timeout_text() const;
  std::string server_text() const;

  Resolver& resolver_;
  DnsChannels& channels_;
  const Endpoint endpoint_;
  const DnsSpec spec_;
  const std::string server_;
  const std::string query_;
  std::vector<Regex> expect_;
  // The channels this check used last, over UDP [0] and TCP [1], kept between runs: a run
  // whose options are unchanged reuses its channel instead of having DnsChannels set up a
  // new one (a c-ares init reads resolv.conf and opens sockets; 5x the CPU of a query).
  // They go with the check, and a channel with its last check.
  struct Kept {
    AresChannelOptions options;
    std::shared_ptr<AresChannel> channel;
  };
  Kept kept_[2];

  // The run in flight.
  DoneFn done_;
  std::chrono::nanoseconds started_{};
  std::chrono::milliseconds timeout_{};
  std::optional<SockAddr> server_address_;
  std::optional<std::chrono::nanoseconds> resolve_time_;
  Resolver::Request request_;
  std::shared_ptr<AresChannel> channel_;
  std::shared_ptr<Pending> pending_;
  bool over_tcp_ = false;
  bool retried_over_tcp_ = false;
  std::optional<DnsMessage> answer_;
  std::optional<Result> result_;
  uv::Deferred deferred_;
};

void DnsProbe::start(std::chrono::milliseconds timeout, DoneFn done) {
  cancel();
  done_ = std::move(done);
  timeout_ = timeout;
  started_ = uv::now();
  server_address_.reset();
  resolve_time_.reset();
  answer_.reset();
  over_tcp_ = spec_.tcp;
  retried_over_tcp_ = false;
  if (server_.empty()) {
    // The system's resolvers (/etc/resolv.conf), as c-ares reads them.
    send(over_tcp_);
    return;
  }
  request_ = resolver_.resolve(server_, endpoint_.ip_version,
                               [this](ResolveResult r) { on_server(std::move(r)); });
}

void DnsProbe::on_server(ResolveResult r) {
  resolve_time_ = uv::now() - started_;
  if (!r.ok)
    return finish(Status::ResolveFailed,
                  fmt::format("cannot resolve the DNS server '{}': {}", server_, r.error));
  server_address_ = r.addresses.front();
  server_address_->set_port(spec_.port);
  send(over_tcp_);
}

void DnsProbe::send(bool tcp) {
  over_tcp_ = tcp;
  AresChannelOptions o;
  if (server_address_) o.servers = {*server_address_};
  // Over TCP c-ares does not resend on the same connection: one try with all the time
  // there is; over UDP, `tries` datagrams whose doubling timeouts add up to the timeout.
  o.tries = tcp ? 1 : static_cast<int>(spec_.tries);
  o.timeout = tcp ? timeout_ : per_try(timeout_, spec_.tries);
  // NOCHECKRESP: SERVFAIL and REFUSED come back as answers instead of "could not contact
  // server"; IGNTC: a truncated UDP answer comes back to us, and we ask again over TCP
  // ourselves, so the result can say which transport answered.
  // source_address and interface, as every probe applies them.
  if (!endpoint_.source_address.empty()) o.local = parse_ip(endpoint_.source_address);
  o.device = endpoint_.interface;
  o.flags = ARES_FLAG_NOCHECKRESP | ARES_FLAG_IGNTC | (tcp ? ARES_FLAG_USEVC : 0);
  Kept& kept = kept_[tcp ? 1 : 0];
  if (!kept.channel || !(kept.options == o)) kept = Kept{o, channels_.get(o)};
  channel_ = kept.channel;
  if (channel_->get() == nullptr)
    return finish(Status::LocalError, "cannot set up the DNS channel: " + channel_->error());
  std::string wire, error;
  DnsQueryOptions q;
  q.recursion_desired = spec_.recursion;
  // No EDNS(0): c-ares 1.18 reads at most 512 bytes of a UDP answer unless its own EDNS
  // flag is on, and that flag makes it rewrite queries and flip the shared channel's
  // setting on a SERVFAIL. A larger answer comes back truncated (TC) and is asked again
  // over TCP, as DNS did before EDNS.
  q.edns_udp_size = 0;
  q.authentic_data = std::find(spec_.expect_flags.begin(), spec_.expect_flags.end(), "AD") !=
                     spec_.expect_flags.end();
  // c-ares 1.18 sends the transaction id it is given (ares_send keeps the query's bytes):
  // an unpredictable one, so that an off-path forger must guess it.
  const auto id = static_cast<std::uint16_t>(random_u64());
  if (!encode_dns_query(id, query_, spec_.record_type, q, &wire, &error))
    return finish(Status::LocalError, fmt::format("cannot ask for '{}': {}", query_, error));
  pending_ = std::make_shared<Pending>(Pending{this});
  // c-ares owns a heap copy of the weak pointer until its callback, which frees it.
  auto* arg = new std::weak_ptr<Pending>(pending_);
  // ares_send may answer at once, from inside this call (a send that fails with "network
  // unreachable"): on_answer then finishes the run and drops channel_, so hold our own.
  const std::shared_ptr<AresChannel> channel = channel_;
  ares_send(channel->get(), reinterpret_cast<const unsigned char*>(wire.data()),
            static_cast<int>(wire.size()), &DnsProbe::on_answer, arg);
  channel->after_submit();
}

void DnsProbe::on_answer(void* arg, int status, int /*timeouts*/, unsigned char* abuf,
                         int alen) noexcept {
  std::unique_ptr<std::weak_ptr<Pending>> weak(static_cast<std::weak_ptr<Pending>*>(arg));
  auto pending = weak->lock();
  if (!pending) return;  // the run ended (deadline, cancel): a late answer is discarded
  std::string_view wire;
  if (abuf != nullptr && alen > 0)
    wire = std::string_view(reinterpret_cast<const char*>(abuf), static_cast<std::size_t>(alen));
  pending->probe->on_reply(status, wire);
}

void DnsProbe::on_reply(int status, std::string_view wire) {
  pending_.reset();
  if (status == ARES_EDESTRUCTION) return;
  if (status == ARES_ETIMEOUT) return finish(Status::Timeout, timeout_text());
  // c-ares 1.18 reports every failed exchange with the server alike (ICMP port
  // unreachable, a TCP reset or close, an unreachable network) as ECONNREFUSED.
  if (status == ARES_ECONNREFUSED && channel_ && !channel_->socket_error().empty())
    return finish(Status::LocalError, channel_->socket_error());
  if (status == ARES_ECONNREFUSED)
    return finish(Status::Refused,
                  fmt::format("no answer from {}: refused, closed or unreachable", server_text()));
  if (status != ARES_SUCCESS && wire.empty())
    return finish(Status::BadResponse, fmt::format("query failed: {}", ares_strerror(status)));
  // TC first: a truncated answer may end in the middle of a record.
  if (!over_tcp_ && wire.size() >= 12 && (static_cast<std::uint8_t>(wire[2]) & 0x02) != 0) {
    retried_over_tcp_ = true;
    return send(true);
  }
  DnsMessage m;
  std::string error;
  if (!parse_dns_message(wire, &m, &error))
    return finish(Status::BadResponse, "malformed response (" + error + ")");
  // (c-ares has matched the transaction id and the question already, and dropped
  // anything else: a spoofed or stray datagram never ends a run.)
  const std::string expected = query_ == "." ? query_ : query_ + ".";
  if (m.question_name.empty() || strcasecmp(m.question_name.c_str(), expected.c_str()) != 0 ||
      m.question_type != spec_.record_type)
    return finish(
        Status::BadResponse,
        fmt::format("response for a different question ({} {}, asked {} {})", m.question_name,
                    rr_type_name(m.question_type), expected, rr_type_name(spec_.record_type)));
  answer_ = std::move(m);
  judge(*answer_);
}

void DnsProbe::judge(const DnsMessage& m) {
  const std::string type = rr_type_name(spec_.record_type);
  if (m.rcode != spec_.expect_rcode) {
    std::string text = rcode_name(m.rcode);
    if (spec_.expect_rcode != 0) text += " (expected " + rcode_name(spec_.expect_rcode) + ")";
    return finish(Status::Unexpected, text);
  }
  // Only the records of the type asked count as answers: a CNAME chain before them does not.
  std::vector<const DnsRecord*> answers;
  for (const auto& r : m.answers)
    if (r.type == spec_.record_type) answers.push_back(&r);
  if (answers.size() < spec_.min_answers) {
    if (answers.empty())
      return finish(Status::Unexpected, fmt::format("no answer for {} IN {}", query_, type));
    return finish(
        Status::Unexpected,
        fmt::format("{} {} for {} IN {}, expected at least {}", answers.size(),
                    answers.size() == 1 ? "answer" : "answers", query_, type, spec_.min_answers));
  }
  for (const auto& flag : spec_.expect_flags) {
    const bool set = flag == "AA" ? m.aa : flag == "RD" ? m.rd : flag == "RA" ? m.ra : m.ad;
    if (!set) return finish(Status::Unexpected, fmt::format("flag {} not set in the answer", flag));
  }
  for (const auto& re : expect_) {
    bool found = false;
    for (const auto* r : answers) {
      std::string error;
      if (re.search(r->data, &error) == Regex::Match::Found) {
        found = true;
        break;
      }
    }
    if (!found) {
      const std::string first = answers.empty() ? "(none)" : answers.front()->data;
      return finish(Status::Unexpected,
                    fmt::format("answer {} did not match expect /{}/", first, re.pattern()));
    }
  }
  std::string list;
  for (const auto* r : answers) list += (list.empty() ? "" : ", ") + r->data;
  if (answers.empty()) list = "(no answers)";
  finish(Status::Ok, fmt::format("{} {}: {}", type, query_, list));
}

std::string DnsProbe::timeout_text() const {
  if (over_tcp_) return fmt::format("timeout after {} (over TCP)", format_duration(timeout_));
  return fmt::format("timeout after {} ({} {})", format_duration(timeout_), spec_.tries,
                     spec_.tries == 1 ? "try" : "tries");
}

std::string DnsProbe::server_text() const {
  if (server_address_) return server_address_->with_port();
  return server_.empty() ? "system" : host_port(server_, spec_.port);
}

Result DnsProbe::make_result(Status status, std::string message) const {
  Result r = Result::make(status, std::move(message), uv::now() - started_);
  r.add("server", server_text());
  if (resolve_time_) r.add("resolve_ms", to_ms(*resolve_time_));
  r.add("query", query_);
  r.add("type", rr_type_name(spec_.record_type));
  r.add("transport", over_tcp_ ? "tcp" : "udp");
  if (retried_over_tcp_) r.add("truncated_over_udp", true);
  if (answer_) {
    r.add("rcode", rcode_name(answer_->rcode));
    nlohmann::ordered_json flags = nlohmann::ordered_json::array();
    const std::pair<bool, const char*> bits[] = {
        {answer_->qr, "QR"}, {answer_->aa, "AA"}, {answer_->tc, "TC"}, {answer_->rd, "RD"},
        {answer_->ra, "RA"}, {answer_->ad, "AD"}, {answer_->cd, "CD"}};
    for (const auto& [set, name] : bits)
      if (set) flags.push_back(name);
    r.add("flags", std::move(flags));
    nlohmann::ordered_json answers = nlohmann::ordered_json::array();
    for (const auto& rec : answer_->answers)
      answers.push_back({{"name", rec.name},
                         {"type", rr_type_name(rec.type)},
                         {"ttl", rec.ttl},
                         {"data", rec.data}});
    r.add("answer_count", answer_->answers.size());
    r.add("answers", std::move(answers));
  }
  return r;
}

void DnsProbe::finish(Status status, std::string message) {
  result_ = make_result(status, std::move(message));
  request_.reset();
  pending_.reset();
  channel_.reset();
  deferred_.post([this] {
    DoneFn done = std::move(done_);
    Result r = std::move(*result_);
    done_ = nullptr;
    result_.reset();
    if (done) done(std::move(r));  // may destroy this probe: nothing follows
  });
}

Result DnsProbe::expire() {
  Result r;
  if (result_) {
    r = std::move(*result_);
  } else if (!server_.empty() && !server_address_) {
    r = make_result(Status::Timeout, fmt::format("timeout after {} while resolving '{}'",
                                                 format_duration(timeout_), server_));
    r.add("phase", "resolve");
  } else {
    r = make_result(Status::Timeout, timeout_text());
    r.add("phase", over_tcp_ ? "tcp" : "udp");
  }
  cancel();
  return r;
}

void DnsProbe::cancel() {
  // c-ares 1.18 cannot cancel one query of a shared channel: the query stays with c-ares
  // (until its own timeout, which the check's timeout bounds, or until the channel goes
  // when no check holds it) and its answer finds no Pending and is dropped.
  request_.reset();
  pending_.reset();
  channel_.reset();
  deferred_.cancel();
  done_ = nullptr;
  result_.reset();
}

}  // namespace

std::unique_ptr<Probe> make_probe(ProbeContext& ctx, const Endpoint& e, const DnsSpec& s) {
  return std::make_unique<DnsProbe>(ctx, e, s);
}

}  // namespace netmond
