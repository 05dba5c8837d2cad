// Fake HTTP/1.1 servers on 127.0.0.1 for the faults a real server (nginx) will not produce
// on demand: silence, trickled headers, endless or exploding bodies, redirect loops, broken
// framing. They run on the test's libuv loop, beside the probe under test, so they serve
// while the test runs the loop and need no thread (nothing for ASan/TSan to race on, and
// nothing to join); consequently they make progress only while the loop runs.
#pragma once

#include "base/uv.h"

#include <uv.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace netmond::test {

// How a FakeHttpServer answers every request (each connection behaves the same).
enum class HttpFault : std::uint8_t {
  Normal,          // 200 with Content-Length and `body`; HTTP/1.1 keep-alive
  Silent,          // reads the request, never answers, keeps the connection open
  TrickleHeaders,  // a valid 200, one byte every `trickle_interval`
  EndlessBody,     // 200, chunked, 16 KiB chunks until `endless_limit` or the client leaves
  GzipBomb,        // 200, Content-Encoding: gzip, inflating to `bomb_mib` MiB of zeros
  // 302 to /loop/<n> for the n-th request: never the same URL twice, so only a redirect
  // count ends it (a client that spots a repeated URL cannot stop early).
  RedirectLoop,
  RedirectTo,         // 302 to `location`
  BadChunked,         // 200, chunked, with the chunk size line "zz"; stays open
  Garbage,            // "this is not http\r\n\r\n" instead of a status line; stays open
  CloseAfterRequest,  // reads the request, then closes (FIN): an empty reply
};

// Set the fields a fault uses after construction (-Wmissing-field-initializers rejects a
// designated initializer that leaves fields out).
struct FakeHttpOptions {
  explicit FakeHttpOptions(HttpFault f = HttpFault::Normal) : fault(f) {}
  HttpFault fault;
  std::string body = "ok";                               // Normal
  std::chrono::milliseconds trickle_interval{50};        // TrickleHeaders
  std::chrono::milliseconds chunk_interval{0};           // EndlessBody: 0 = as fast as it drains
  std::uint64_t endless_limit = std::uint64_t{1} << 30;  // EndlessBody: body bytes, then "0"
  std::size_t bomb_mib = 512;                            // GzipBomb: inflated size in MiB
  std::string location;                                  // RedirectTo
};

// Request bodies are read by Content-Length only (no chunked uploads, no 100-continue).
// Constructing one ignores SIGPIPE for the whole process, as netmond's main() does.
class FakeHttpServer {
 public:
  FakeHttpServer(uv_loop_t* loop, FakeHttpOptions options);
  FakeHttpServer(uv_loop_t* loop, HttpFault fault);
  // Closes the listener and every connection; run the loop afterwards so the handles are
  // freed (LoopFixture::finish does).
  ~FakeHttpServer();
  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  std::uint16_t port() const { return port_; }
  // "http://127.0.0.1:<port><path>"
  std::string url(std::string_view path = "/") const;

  int connections() const { return accepted_; }  // accepted so far
  int open_connections() const { return accepted_ - closed_; }
  int requests() const { return static_cast<int>(targets_.size()); }  // complete heads
  // Each request's target ("/", "/loop/1", ...), in arrival order.
  const std::vector<std::string>& targets() const { return targets_; }
  // The last request's head as received: request line, headers, blank line.
  const std::string& last_request() const { return last_request_; }
  // Bytes handed to the kernel over all connections (headers, framing and body).
  std::uint64_t bytes_sent() const { return bytes_sent_; }

 private:
  struct Connection;
  void on_connection(int status);
  void on_read(Connection& c, ssize_t nread, const uv_buf_t* buf);
  void on_request(Connection& c, const std::string& head);
  void queue(Connection& c, std::string data);
  void queue_external(Connection& c, const char* data, std::size_t size);
  void write_next(Connection& c);
  void on_drained(Connection& c);
  void send_chunk(Connection& c);
  void trickle(Connection& c);
  void close(Connection& c);

  uv_loop_t* loop_;
  FakeHttpOptions options_;
  uv::TcpServer server_;
  std::uint16_t port_ = 0;
  std::string chunk_;  // EndlessBody: one 16 KiB chunk with its framing, written repeatedly
  const std::string* bomb_ = nullptr;  // GzipBomb: the shared compressed body
  // Never shrinks while the server lives: callbacks hold Connection pointers, and a test
  // makes a handful of connections.
  std::vector<std::unique_ptr<Connection>> connections_;
  int accepted_ = 0;
  int closed_ = 0;
  std::vector<std::string> targets_;
  std::string last_request_;
  std::uint64_t bytes_sent_ = 0;
};

// A gzip member (RFC 1952) of `mib` MiB of zeros, about 1 KiB per MiB; built once per size
// and kept for the process. Built from one deflate block repeated, since deflating 512 MiB
// takes seconds.
const std::string& gzip_zeros(std::size_t mib);

// The process's resident set size in bytes (/proc/self/statm), for bounds on memory growth.
std::size_t resident_bytes();

}  // namespace netmond::test
