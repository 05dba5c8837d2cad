// What one run of a probe found out.
#pragma once

#include <nlohmann/json.hpp>

#include <cassert>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace netmond {

// One taxonomy for every probe type: which layer failed, as one word in logs and JSON
// (after haproxy's check statuses). Keep in step with docs/probes.md.
enum class Status : std::uint8_t {
  Ok,
  Timeout,        // no answer before netmond's deadline
  Refused,        // TCP RST / ICMP port unreachable
  Unreachable,    // no route, network or host unreachable
  ResolveFailed,  // the name did not resolve
  TlsError,       // handshake or certificate failure
  BadResponse,    // malformed answer, protocol violation
  Unexpected,     // a valid answer that fails an expectation (HTTP 503, NXDOMAIN, ...)
  KissOfDeath,    // NTP server told us to go away
  LocalError,     // could not even try: socket(), bind(), permissions
};

// The machine code of a status: "ok", "timeout", "refused", "unreachable", ...
std::string_view code(Status status);

struct Result {
  Status status = Status::LocalError;
  std::string message;                 // one human line: "connected", "port closed (...)"
  std::chrono::nanoseconds latency{};  // steady clock, from the run's start
  nlohmann::ordered_json details =
      nlohmann::ordered_json::object();  // typed, per probe type; keys keep their order

  bool ok() const { return status == Status::Ok; }

  // Appends `key: value` to the details without looking `key` up first: for a probe's own
  // keys, which are distinct by construction. (ordered_json's operator[] searches every
  // key and builds a key string each time: half of a udp_echo run's result building.)
  template <typename Value>
  void add(std::string_view key, Value&& value) {
    assert(!details.contains(key));
    details.get_ref<nlohmann::ordered_json::object_t&>().emplace_back(std::string(key),
                                                                      std::forward<Value>(value));
  }

  static Result make(Status status, std::string message, std::chrono::nanoseconds latency = {}) {
    Result r;
    r.status = status;
    r.message = std::move(message);
    r.latency = latency;
    return r;
  }
};

}  // namespace netmond
