#include "metrics_text.h"

#include <fmt/format.h>

#include <cmath>
#include <ctime>

namespace netmond {

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

std::string escape_help(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

double parse_utc_seconds(std::string_view text) {
  std::tm tm{};
  std::string s(text);
  const char* end = ::strptime(s.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (end == nullptr || *end != '\0') return -1;
  return static_cast<double>(::timegm(&tm));
}

namespace {

// The samples of one family, written out with its HELP and TYPE once it has any.
class Family {
 public:
  Family(std::string_view name, std::string_view type, std::string_view help)
      : name_(name), type_(type), help_(help) {}

  // `labels` is the check's label text; `extra` more labels (`,stat="min"`) or "".
  void add(std::string_view suffix, std::string_view labels, std::string_view extra,
           std::string_view value) {
    samples_ += name_;
    samples_ += suffix;
    samples_ += '{';
    samples_ += labels;
    samples_ += extra;
    samples_ += "} ";
    samples_ += value;
    samples_ += '\n';
  }
  void add(std::string_view labels, double value) { add("", labels, "", format_value(value)); }
  void add_unlabelled(std::string_view value) { add_plain("", "", value); }

 private:
  // A sample whose labels may be none (then without braces).
  void add_plain(std::string_view suffix, std::string_view labels, std::string_view value) {
    if (!labels.empty()) return add(suffix, labels, "", value);
    samples_ += name_;
    samples_ += suffix;
    samples_ += ' ';
    samples_ += value;
    samples_ += '\n';
  }

 public:
  // A histogram's _bucket, _sum and _count samples, with `labels` ("" for none).
  template <const auto& Bounds>
  void add_histogram(std::string_view labels, const Histogram<Bounds>& h) {
    const std::string prefix = labels.empty() ? "" : std::string(labels) + ",";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < Bounds.size(); ++i) {
      cumulative += h.counts[i];
      add("_bucket", prefix, fmt::format("le=\"{}\"", format_value(Bounds[i])),
          std::to_string(cumulative));
    }
    add("_bucket", prefix, "le=\"+Inf\"", std::to_string(h.count));
    add_plain("_sum", labels, format_value(h.sum));
    add_plain("_count", labels, std::to_string(h.count));
  }

  void write_to(std::string& out) const {
    if (samples_.empty()) return;
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name_, escape_help(help_), name_, type_);
    out += samples_;
  }

 private:
  std::string_view name_, type_, help_;
  std::string samples_;
};

// A number from the details, if the key holds one.
std::optional<double> number(const Result& r, const char* key) {
  auto it = r.details.find(key);
  if (it == r.details.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

bool is_http(std::string_view type) { return type == "http" || type == "https"; }

}  // namespace

LastRunMetrics LastRunMetrics::of(std::string_view type, const Result& r) {
  LastRunMetrics m;
  m.ok = r.ok();
  m.duration_seconds = std::chrono::duration<double>(r.latency).count();
  if (is_http(type)) {
    m.http_status_code = number(r, "status_code").value_or(0);
    auto it = r.details.find("cert_chain_expiry");
    if (it != r.details.end() && it->is_string()) {
      double t = parse_utc_seconds(it->get<std::string>());
      if (t >= 0) m.cert_expiry_seconds = t;
    }
  } else if (type == "dns") {
    m.dns_answers = number(r, "answer_count");
  } else if (type == "icmp") {
    auto seconds = [&](const char* key) -> std::optional<double> {
      if (auto ms = number(r, key)) return *ms / 1e3;
      return std::nullopt;
    };
    m.icmp_rtt_min_seconds = seconds("rtt_min_ms");
    m.icmp_rtt_avg_seconds = seconds("rtt_ms");
    m.icmp_rtt_max_seconds = seconds("rtt_max_ms");
    auto sent = number(r, "sent");
    auto loss = number(r, "loss");
    if (sent && loss && *sent > 0) m.icmp_loss_ratio = *loss / 100;
  } else if (type == "ntp") {
    m.ntp_offset_seconds = number(r, "offset_s");
    m.ntp_stratum = number(r, "stratum");
  }
  return m;
}

std::string format_metrics(const MetricsSnapshot& snap) {
  Family build_info("netmond_build_info", "gauge",
                    "Always 1; the version label is netmond's version.");
  Family reload_ok("netmond_config_last_reload_success", "gauge",
                   "1 if the last configuration load (start or reload) succeeded, else 0.");
  Family reload_time("netmond_config_last_reload_timestamp_seconds", "gauge",
                     "Unix time of the last successful configuration load.");
  Family up("netmond_check_up", "gauge",
            "1 while the check is UP, 0 while DOWN; absent until its first state is known.");
  Family runs("netmond_check_runs_total", "counter",
              "Finished runs of the check since it (re)started, by result.");
  Family durations("netmond_check_duration_seconds", "histogram",
                   "How long the check's runs took (the last attempt of each run).");
  Family skipped("netmond_check_skipped_slots_total", "counter",
                 "Schedule slots the check passed over because its previous run was still going.");
  Family lateness("netmond_schedule_lateness_seconds", "histogram",
                  "How late runs started after their due time, all checks together.");
  Family success("probe_success", "gauge", "1 if the check's last run succeeded, else 0.");
  Family duration("probe_duration_seconds", "gauge", "How long the check's last run took.");
  Family http_status("probe_http_status_code", "gauge",
                     "HTTP status code of the last run's final response; 0 without one.");
  Family cert_expiry("probe_ssl_earliest_cert_expiry", "gauge",
                     "Unix time when the first certificate of the chain expires.");
  Family dns_answers("probe_dns_answer_rrs", "gauge",
                     "Records in the answer section of the last DNS response.");
  Family icmp_rtt("probe_icmp_rtt_seconds", "gauge",
                  "Round-trip time of the last run's echo replies (stat: min, avg, max).");
  Family icmp_loss("probe_icmp_packet_loss_ratio", "gauge",
                   "Share of the last run's echo requests that got no reply (0..1).");
  Family ntp_offset("probe_ntp_offset_seconds", "gauge",
                    "Offset of this host's clock from the NTP server (positive: behind).");
  Family ntp_stratum("probe_ntp_stratum", "gauge", "Stratum of the NTP server.");

  build_info.add("", fmt::format("version=\"{}\"", escape_label_value(snap.version)), "", "1");
  reload_ok.add_unlabelled(snap.last_reload_ok ? "1" : "0");
  reload_time.add_unlabelled(format_value(snap.last_reload_seconds));
  if (snap.lateness) lateness.add_histogram("", *snap.lateness);

  for (const CheckMetrics& c : snap.checks) {
    const std::string labels =
        fmt::format("check=\"{}\",type=\"{}\",target=\"{}\"", escape_label_value(c.name),
                    escape_label_value(c.type), escape_label_value(c.target));
    if (c.health != Health::Unknown) up.add(labels, c.health == Health::Up ? 1 : 0);
    runs.add("", labels, ",result=\"success\"", std::to_string(c.runs - c.failures));
    runs.add("", labels, ",result=\"failure\"", std::to_string(c.failures));
    if (c.durations) durations.add_histogram(labels, *c.durations);
    skipped.add("", labels, "", std::to_string(c.skipped_slots));

    if (!c.last) continue;
    const LastRunMetrics& r = *c.last;
    success.add(labels, r.ok ? 1 : 0);
    duration.add(labels, r.duration_seconds);
    if (r.http_status_code) http_status.add(labels, *r.http_status_code);
    if (r.cert_expiry_seconds) cert_expiry.add(labels, *r.cert_expiry_seconds);
    if (r.dns_answers) dns_answers.add(labels, *r.dns_answers);
    const std::pair<const std::optional<double>*, const char*> rtts[] = {
        {&r.icmp_rtt_min_seconds, "min"},
        {&r.icmp_rtt_avg_seconds, "avg"},
        {&r.icmp_rtt_max_seconds, "max"}};
    for (const auto& [rtt, stat] : rtts)
      if (*rtt) icmp_rtt.add("", labels, fmt::format(",stat=\"{}\"", stat), format_value(**rtt));
    if (r.icmp_loss_ratio) icmp_loss.add(labels, *r.icmp_loss_ratio);
    if (r.ntp_offset_seconds) ntp_offset.add(labels, *r.ntp_offset_seconds);
    if (r.ntp_stratum) ntp_stratum.add(labels, *r.ntp_stratum);
  }

  std::string out;
  for (const Family* f : {&build_info, &reload_ok, &reload_time, &lateness, &up, &runs, &durations,
                          &skipped, &success, &duration, &http_status, &cert_expiry, &dns_answers,
                          &icmp_rtt, &icmp_loss, &ntp_offset, &ntp_stratum})
    f->write_to(out);
  return out;
}

}  // namespace netmond
