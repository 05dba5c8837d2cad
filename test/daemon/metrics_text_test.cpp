// The Prometheus text of check states (daemon/metrics_text.h): escaping, numbers, which
// families appear when, the histogram, and the probe_* values taken from each probe's
// details. promtool checks the whole text.
#include "metrics_text.h"

#include "support/process.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

using namespace netmond;
using namespace netmond::test;

namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos &&
         (text.rfind(line + "\n", 0) == 0 || text.find("\n" + line + "\n") != std::string::npos);
}

CheckMetrics check(std::string name, std::string type, const Result* last = nullptr,
                   Health health = Health::Unknown) {
  CheckMetrics c;
  c.name = std::move(name);
  c.type = std::move(type);
  c.target = "127.0.0.1:80";
  c.health = health;
  if (last != nullptr) c.last = LastRunMetrics::of(c.type, *last);
  return c;
}

}  // namespace

TEST_CASE("metrics text: label values and help are escaped", "[metrics]") {
  CHECK(escape_label_value("plain/name:80") == "plain/name:80");
  CHECK(escape_label_value("a\"b") == "a\\\"b");
  CHECK(escape_label_value("a\\b") == "a\\\\b");
  CHECK(escape_label_value("a\nb") == "a\\nb");
  CHECK(escape_label_value("\\\"\n") == "\\\\\\\"\\n");
  CHECK(escape_help("a\\b\nc \"q\"") == "a\\\\b\\nc \"q\"");
}

TEST_CASE("metrics text: numbers as Prometheus reads them", "[metrics]") {
  CHECK(format_value(1) == "1");
  CHECK(format_value(0) == "0");
  CHECK(format_value(0.25) == "0.25");
  CHECK(format_value(-0.0015) == "-0.0015");
  CHECK(format_value(1e-05) == "1e-05");
  CHECK(format_value(1735689600) == "1735689600");
  CHECK(format_value(std::numeric_limits<double>::quiet_NaN()) == "NaN");
  CHECK(format_value(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(format_value(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(parse_utc_seconds("2025-01-01T00:00:00Z") == 1735689600);
  CHECK(parse_utc_seconds("2025-01-01") < 0);
  CHECK(parse_utc_seconds("2025-01-01T00:00:00Zjunk") < 0);
}

TEST_CASE("metrics text: the histogram is cumulative and ends at +Inf", "[metrics]") {
  DurationHistogram h;
  h.observe(0.003);
  h.observe(0.2);
  h.observe(0.25);
  h.observe(500);
  CHECK(h.count == 4);
  CHECK(h.sum == Approx(500.453));
  MetricsSnapshot snap;
  snap.version = "1.2.3";
  CheckMetrics c = check("c", "tcp");
  c.durations = h;
  c.runs = 4;
  c.failures = 1;
  snap.checks.push_back(c);
  std::string text = format_metrics(snap);
  INFO(text);
  const std::string l = "check=\"c\",type=\"tcp\",target=\"127.0.0.1:80\"";
  CHECK(has_line(text, "netmond_check_duration_seconds_bucket{" + l + ",le=\"0.005\"} 1"));
  CHECK(has_line(text, "netmond_check_duration_seconds_bucket{" + l + ",le=\"0.1\"} 1"));
  CHECK(has_line(text, "netmond_check_duration_seconds_bucket{" + l + ",le=\"0.25\"} 3"));
  CHECK(has_line(text, "netmond_check_duration_seconds_bucket{" + l + ",le=\"60\"} 3"));
  CHECK(has_line(text, "netmond_check_duration_seconds_bucket{" + l + ",le=\"+Inf\"} 4"));
  CHECK(has_line(text, "netmond_check_duration_seconds_sum{" + l + "} 500.453"));
  CHECK(has_line(text, "netmond_check_duration_seconds_count{" + l + "} 4"));
  CHECK(has_line(text, "netmond_check_runs_total{" + l + ",result=\"success\"} 3"));
  CHECK(has_line(text, "netmond_check_runs_total{" + l + ",result=\"failure\"} 1"));
  CHECK(has_line(text, "# TYPE netmond_check_duration_seconds histogram"));
  CHECK(has_line(text, "# TYPE netmond_check_runs_total counter"));
  CHECK(has_line(text, "netmond_check_skipped_slots_total{" + l + "} 0"));
  // No run yet: no lateness histogram at all.
  CHECK(text.find("netmond_schedule_lateness_seconds") == std::string::npos);
}

TEST_CASE("metrics text: schedule lateness, a histogram without labels", "[metrics]") {
  LatenessHistogram h;
  h.observe(0.0004);
  h.observe(0.003);
  h.observe(20);
  MetricsSnapshot snap;
  snap.version = "1.2.3";
  snap.lateness = h;
  CheckMetrics c = check("c", "tcp");
  c.skipped_slots = 7;
  snap.checks.push_back(c);
  std::string text = format_metrics(snap);
  INFO(text);
  CHECK(has_line(text, "# TYPE netmond_schedule_lateness_seconds histogram"));
  CHECK(has_line(text, "netmond_schedule_lateness_seconds_bucket{le=\"0.001\"} 1"));
  CHECK(has_line(text, "netmond_schedule_lateness_seconds_bucket{le=\"0.0025\"} 1"));
  CHECK(has_line(text, "netmond_schedule_lateness_seconds_bucket{le=\"0.005\"} 2"));
  CHECK(has_line(text, "netmond_schedule_lateness_seconds_bucket{le=\"10\"} 2"));
  CHECK(has_line(text, "netmond_schedule_lateness_seconds_bucket{le=\"+Inf\"} 3"));
  CHECK(has_line(text, "netmond_schedule_lateness_seconds_sum 20.0034"));
  CHECK(has_line(text, "netmond_schedule_lateness_seconds_count 3"));
  CHECK(has_line(
      text,
      "netmond_check_skipped_slots_total{check=\"c\",type=\"tcp\",target=\"127.0.0.1:80\"} 7"));
}

TEST_CASE("metrics text: families from each probe's details, promtool accepts it", "[metrics]") {
  Result http = Result::make(Status::Unexpected, "HTTP 503", std::chrono::milliseconds(120));
  http.details["status_code"] = 503;
  http.details["cert_chain_expiry"] = "2025-01-01T00:00:00Z";
  Result http_refused = Result::make(Status::Refused, "refused", std::chrono::milliseconds(1));
  Result dns = Result::make(Status::Ok, "3 answers", std::chrono::microseconds(1500));
  dns.details["answer_count"] = 3;
  Result icmp = Result::make(Status::Ok, "5/5", std::chrono::milliseconds(10));
  icmp.details["sent"] = 5;
  icmp.details["received"] = 4;
  icmp.details["loss"] = 20.0;
  icmp.details["rtt_ms"] = 1.5;
  icmp.details["rtt_min_ms"] = 0.5;
  icmp.details["rtt_max_ms"] = 3.0;
  Result icmp_lost = Result::make(Status::Timeout, "0/1", std::chrono::seconds(1));
  icmp_lost.details["sent"] = 1;
  icmp_lost.details["received"] = 0;
  icmp_lost.details["loss"] = 100.0;
  Result ntp = Result::make(Status::Ok, "offset", std::chrono::milliseconds(2));
  ntp.details["offset_s"] = -0.0015;
  ntp.details["stratum"] = 2;

  MetricsSnapshot snap;
  snap.version = "0.1.0 \"dev\"";
  snap.last_reload_ok = false;
  snap.last_reload_seconds = 1735689600.5;
  snap.checks.push_back(check("web", "https", &http, Health::Down));
  snap.checks.push_back(check("web2", "http", &http_refused, Health::Down));
  snap.checks.push_back(check("ns/A", "dns", &dns, Health::Up));
  snap.checks.push_back(check("ping", "icmp", &icmp, Health::Up));
  snap.checks.push_back(check("ping-lost", "icmp", &icmp_lost, Health::Down));
  snap.checks.push_back(check("clock", "ntp", &ntp, Health::Up));
  snap.checks.push_back(check("new \"one\"\nx\\", "tcp"));  // no run yet
  LatenessHistogram late;
  late.observe(0.002);
  snap.lateness = late;
  const std::string text = format_metrics(snap);
  INFO(text);

  auto l = [](const std::string& name, const std::string& type) {
    return "{check=\"" + name + "\",type=\"" + type + "\",target=\"127.0.0.1:80\"";
  };
  CHECK(has_line(text, "netmond_build_info{version=\"0.1.0 \\\"dev\\\"\"} 1"));
  CHECK(has_line(text, "netmond_config_last_reload_success 0"));
  CHECK(has_line(text, "netmond_config_last_reload_timestamp_seconds 1735689600.5"));
  CHECK(has_line(text, "netmond_check_up" + l("web", "https") + "} 0"));
  CHECK(has_line(text, "netmond_check_up" + l("ns/A", "dns") + "} 1"));
  CHECK(has_line(text, "probe_success" + l("web", "https") + "} 0"));
  CHECK(has_line(text, "probe_duration_seconds" + l("web", "https") + "} 0.12"));
  CHECK(has_line(text, "probe_http_status_code" + l("web", "https") + "} 503"));
  CHECK(has_line(text, "probe_http_status_code" + l("web2", "http") + "} 0"));
  CHECK(has_line(text, "probe_ssl_earliest_cert_expiry" + l("web", "https") + "} 1735689600"));
  CHECK(text.find("probe_ssl_earliest_cert_expiry" + l("web2", "http")) == std::string::npos);
  CHECK(has_line(text, "probe_dns_answer_rrs" + l("ns/A", "dns") + "} 3"));
  CHECK(has_line(text, "probe_duration_seconds" + l("ns/A", "dns") + "} 0.0015"));
  CHECK(has_line(text, "probe_icmp_rtt_seconds" + l("ping", "icmp") + ",stat=\"min\"} 0.0005"));
  CHECK(has_line(text, "probe_icmp_rtt_seconds" + l("ping", "icmp") + ",stat=\"avg\"} 0.0015"));
  CHECK(has_line(text, "probe_icmp_rtt_seconds" + l("ping", "icmp") + ",stat=\"max\"} 0.003"));
  CHECK(has_line(text, "probe_icmp_packet_loss_ratio" + l("ping", "icmp") + "} 0.2"));
  CHECK(has_line(text, "probe_icmp_packet_loss_ratio" + l("ping-lost", "icmp") + "} 1"));
  CHECK(text.find("probe_icmp_rtt_seconds" + l("ping-lost", "icmp")) == std::string::npos);
  CHECK(has_line(text, "probe_ntp_offset_seconds" + l("clock", "ntp") + "} -0.0015"));
  CHECK(has_line(text, "probe_ntp_stratum" + l("clock", "ntp") + "} 2"));

  // The check without a run: counters at 0, no state, no probe_* and no histogram.
  const std::string fresh = l("new \\\"one\\\"\\nx\\\\", "tcp");
  CHECK(has_line(text, "netmond_check_runs_total" + fresh + ",result=\"success\"} 0"));
  CHECK(text.find("netmond_check_up" + fresh) == std::string::npos);
  CHECK(text.find("probe_success" + fresh) == std::string::npos);
  CHECK(text.find("netmond_check_duration_seconds_count" + fresh) == std::string::npos);
  // No run anywhere with a histogram: the family is left out, HELP and TYPE included.
  CHECK(text.find("netmond_check_duration_seconds") == std::string::npos);
  // Every family present has exactly one HELP and one TYPE.
  for (const char* family :
       {"netmond_build_info", "netmond_check_up", "probe_success", "probe_icmp_rtt_seconds",
        "probe_ntp_stratum", "netmond_schedule_lateness_seconds"}) {
    INFO(family);
    const std::string help = std::string("# HELP ") + family + " ";
    CHECK(text.find(help) != std::string::npos);
    CHECK(text.find(help) == text.rfind(help));
  }

  INFO("promtool is missing: run scripts/install-deps.sh (Debian package prometheus)");
  REQUIRE(run({"/bin/sh", "-c", "command -v promtool"}).code == 0);
  std::string file = write_file(temp_dir(), "unit.prom", text);
  RunResult r = run({"/bin/sh", "-c", "promtool check metrics < " + file + " 2>&1"});
  INFO(r.out);
  CHECK(r.code == 0);
}
