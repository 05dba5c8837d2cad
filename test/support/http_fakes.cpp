#include "support/http_fakes.h"

#include "base/address.h"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>

namespace netmond::test {

namespace {

constexpr std::size_t kChunkPayload = 16 * 1024;
// A request head longer than this is not one the probe would send: give up on the client.
constexpr std::size_t kMaxHead = 64 * 1024;
constexpr std::size_t kMiB = 1024 * 1024;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// The value of header `name` in a request head (first occurrence, surrounding blanks
// trimmed), or nullopt.
std::optional<std::string_view> header(std::string_view head, std::string_view name) {
  std::size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos && pos + 2 < head.size()) {
    std::size_t start = pos + 2;
    std::size_t end = head.find("\r\n", start);
    if (end == std::string_view::npos) break;
    std::string_view line = head.substr(start, end - start);
    std::size_t colon = line.find(':');
    if (colon != std::string_view::npos && iequals(line.substr(0, colon), name)) {
      std::string_view v = line.substr(colon + 1);
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
      return v;
    }
    pos = end;
  }
  return std::nullopt;
}

// The request line's n-th word (0 = method, 1 = target).
std::string word(std::string_view head, int n) {
  std::string_view line = head.substr(0, head.find("\r\n"));
  for (int i = 0; i < n; ++i) {
    std::size_t sp = line.find(' ');
    if (sp == std::string_view::npos) return {};
    line.remove_prefix(sp + 1);
  }
  return std::string(line.substr(0, line.find(' ')));
}

std::string deflate_raw(z_stream& z, const unsigned char* in, std::size_t size, int flush) {
  std::string out;
  z.next_in = const_cast<unsigned char*>(in);
  z.avail_in = static_cast<uInt>(size);
  unsigned char buf[64 * 1024];
  // deflate() fills the buffer at most ceil(output / 64 KiB) times, then leaves room.
  do {
    z.next_out = buf;
    z.avail_out = sizeof buf;
    if (deflate(&z, flush) == Z_STREAM_ERROR) throw std::runtime_error("deflate failed");
    out.append(reinterpret_cast<char*>(buf), sizeof buf - z.avail_out);
  } while (z.avail_out == 0);
  return out;
}

void put_le32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::string build_gzip_zeros(std::size_t mib) {
  if (mib == 0) throw std::invalid_argument("gzip_zeros: 0 MiB");
  const std::vector<unsigned char> zeros(kMiB);
  z_stream z{};
  // Raw deflate (windowBits < 0): the gzip header and trailer are written below.
  if (deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("deflateInit2 failed");
  // A full flush ends each MiB on a byte boundary with the history reset, so every MiB
  // compresses to the same bytes: compress two and check, then repeat the block.
  std::string block = deflate_raw(z, zeros.data(), zeros.size(), Z_FULL_FLUSH);
  std::string again = deflate_raw(z, zeros.data(), zeros.size(), Z_FULL_FLUSH);
  std::string last = deflate_raw(z, nullptr, 0, Z_FINISH);
  deflateEnd(&z);
  if (block != again) throw std::runtime_error("gzip_zeros: deflate blocks differ");

  std::string out("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10);  // gzip, deflate, Unix
  out.reserve(out.size() + block.size() * mib + last.size() + 8);
  const uLong block_crc = crc32(0, zeros.data(), static_cast<uInt>(zeros.size()));
  uLong crc = block_crc;
  out += block;
  for (std::size_t i = 1; i < mib; ++i) {
    out += block;
    crc = crc32_combine(crc, block_crc, static_cast<z_off_t>(kMiB));
  }
  out += last;
  put_le32(out, static_cast<std::uint32_t>(crc));
  put_le32(out, static_cast<std::uint32_t>(mib * kMiB));  // ISIZE: the size modulo 2^32
  return out;
}

}  // namespace

const std::string& gzip_zeros(std::size_t mib) {
  static std::mutex mutex;
  static std::map<std::size_t, std::string> built;
  std::lock_guard lock(mutex);
  auto it = built.find(mib);
  if (it == built.end()) it = built.emplace(mib, build_gzip_zeros(mib)).first;
  return it->second;  // std::map never moves its elements
}

std::size_t resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) throw std::runtime_error("cannot open /proc/self/statm");
  unsigned long size = 0, resident = 0;
  int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  if (n != 2) throw std::runtime_error("cannot parse /proc/self/statm");
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

// One accepted client. Writes go out one at a time (TcpStream has one write request);
// a piece is either owned here or points at memory the server keeps (the endless chunk,
// the gzip body, the trickled response).
struct FakeHttpServer::Connection {
  struct Piece {
    std::string owned;
    const char* external = nullptr;
    std::size_t size = 0;
    const char* data() const { return external != nullptr ? external : owned.data(); }
  };

  uv::TcpStream stream;
  std::optional<uv::Timer> timer;  // TrickleHeaders, paced EndlessBody
  char buf[16 * 1024];
  std::string in;         // received, not yet a complete request
  std::deque<Piece> out;  // front is being written while `writing`
  bool writing = false;
  bool open = true;
  bool answered = false;        // one-shot faults answer the first request only
  bool streaming = false;       // EndlessBody: more chunks follow when the queue drains
  bool shutdown_after = false;  // CloseAfterRequest, "Connection: close": FIN when drained
  std::uint64_t streamed = 0;   // EndlessBody payload bytes queued
  std::string trickled;         // TrickleHeaders: the whole response
  std::size_t trickle_pos = 0;
};

FakeHttpServer::FakeHttpServer(uv_loop_t* loop, HttpFault fault)
    : FakeHttpServer(loop, FakeHttpOptions(fault)) {}

FakeHttpServer::FakeHttpServer(uv_loop_t* loop, FakeHttpOptions options)
    : loop_(loop), options_(std::move(options)) {
  // libuv writes with write(2), so writing to a client that has left (EndlessBody's normal
  // end) raises SIGPIPE and kills the test binary. netmond's main() ignores it; so must a
  // process hosting these fakes.
  std::signal(SIGPIPE, SIG_IGN);
  if (options_.fault == HttpFault::EndlessBody) {
    char size_line[16];
    std::snprintf(size_line, sizeof size_line, "%zx\r\n", kChunkPayload);
    chunk_ = size_line + std::string(kChunkPayload, 'x') + "\r\n";
  }
  if (options_.fault == HttpFault::GzipBomb) bomb_ = &gzip_zeros(options_.bomb_mib);

  auto addr = parse_ip("127.0.0.1");
  int rc = server_.init(loop_, AF_INET);
  if (rc == 0) rc = server_.bind(addr->get(), 0);
  if (rc == 0) rc = server_.listen(64, [this](int status) { on_connection(status); });
  if (rc != 0) throw std::runtime_error("FakeHttpServer: " + uv::error_text(rc));
  SockAddr local;
  local.length = sizeof local.storage;
  ::getsockname(server_.fileno(), reinterpret_cast<sockaddr*>(&local.storage), &local.length);
  port_ = local.port();
}

FakeHttpServer::~FakeHttpServer() = default;  // handles close with their owners

std::string FakeHttpServer::url(std::string_view path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
}

void FakeHttpServer::on_connection(int status) {
  if (status < 0) return;
  auto owned = std::make_unique<Connection>();
  Connection& c = *owned;
  if (server_.accept(c.stream) != 0) return;
  connections_.push_back(std::move(owned));
  ++accepted_;
  int rc = c.stream.read_start(
      c.buf, sizeof c.buf, [this, &c](ssize_t nread, const uv_buf_t* b) { on_read(c, nread, b); });
  if (rc != 0) close(c);
}

void FakeHttpServer::on_read(Connection& c, ssize_t nread, const uv_buf_t* buf) {
  if (nread < 0) {  // EOF or reset: the client is gone
    close(c);
    return;
  }
  c.in.append(buf->base, static_cast<std::size_t>(nread));
  // Every complete request in the buffer (a client may pipeline); bounded by its size.
  while (c.open) {
    std::size_t end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (c.in.size() > kMaxHead) close(c);
      return;
    }
    std::size_t head_size = end + 4;
    std::size_t body_size = 0;
    if (auto cl = header(std::string_view(c.in).substr(0, head_size), "Content-Length"))
      body_size = std::strtoull(std::string(*cl).c_str(), nullptr, 10);
    if (body_size > kMaxHead) {
      close(c);
      return;
    }
    if (c.in.size() < head_size + body_size) return;  // the body is still coming
    std::string head = c.in.substr(0, head_size);
    c.in.erase(0, head_size + body_size);
    targets_.push_back(word(head, 1));
    last_request_ = head;
    on_request(c, head);
  }
}

void FakeHttpServer::on_request(Connection& c, const std::string& head) {
  const bool keep_alive = !iequals(header(head, "Connection").value_or(""), "close");
  switch (options_.fault) {
    case HttpFault::Normal: {
      std::string response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                             std::to_string(options_.body.size()) + "\r\n\r\n";
      if (word(head, 0) != "HEAD") response += options_.body;
      queue(c, std::move(response));
      c.shutdown_after = !keep_alive;
      return;
    }
    case HttpFault::RedirectLoop:
      queue(c, "HTTP/1.1 302 Found\r\nLocation: /loop/" + std::to_string(targets_.size()) +
                   "\r\nContent-Length: 0\r\n\r\n");
      c.shutdown_after = !keep_alive;
      return;
    case HttpFault::RedirectTo:
      queue(c, "HTTP/1.1 302 Found\r\nLocation: " + options_.location +
                   "\r\nContent-Length: 0\r\n\r\n");
      c.shutdown_after = !keep_alive;
      return;
    default: break;
  }
  // The one-shot faults: the first request decides the connection's fate.
  if (c.answered) return;
  c.answered = true;
  switch (options_.fault) {
    case HttpFault::Silent: return;
    case HttpFault::TrickleHeaders:
      c.trickled =
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Trickle: one byte at a time\r\n"
          "Content-Length: 2\r\n\r\nok";
      c.timer.emplace(loop_);
      c.timer->start(
          options_.trickle_interval, [this, &c] { trickle(c); }, options_.trickle_interval);
      return;
    case HttpFault::EndlessBody:
      queue(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n");
      c.streaming = true;
      if (options_.chunk_interval.count() > 0) c.timer.emplace(loop_);
      return;
    case HttpFault::GzipBomb:
      queue(c,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\n"
            "Content-Length: " +
                std::to_string(bomb_->size()) + "\r\n\r\n");
      queue_external(c, bomb_->data(), bomb_->size());
      return;
    case HttpFault::BadChunked:
      queue(c,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
            "zz\r\nhello\r\n0\r\n\r\n");
      return;
    case HttpFault::Garbage: queue(c, "this is not http\r\n\r\n"); return;
    case HttpFault::CloseAfterRequest:
      c.shutdown_after = true;
      write_next(c);  // nothing queued: shuts down at once
      return;
    default: return;
  }
}

void FakeHttpServer::queue(Connection& c, std::string data) {
  Connection::Piece p;
  p.size = data.size();
  p.owned = std::move(data);
  c.out.push_back(std::move(p));
  write_next(c);
}

void FakeHttpServer::queue_external(Connection& c, const char* data, std::size_t size) {
  Connection::Piece p;
  p.external = data;
  p.size = size;
  c.out.push_back(std::move(p));
  write_next(c);
}

void FakeHttpServer::write_next(Connection& c) {
  if (!c.open || c.writing) return;
  if (c.out.empty()) {
    on_drained(c);
    return;
  }
  c.writing = true;
  const Connection::Piece& p = c.out.front();
  int rc = c.stream.write(p.data(), p.size, [this, &c](int status) {
    c.writing = false;
    if (status < 0) {  // EPIPE, ECONNRESET: the client left
      close(c);
      return;
    }
    bytes_sent_ += c.out.front().size;
    c.out.pop_front();
    write_next(c);  // write callbacks run on a later loop turn: no recursion
  });
  if (rc != 0) close(c);
}

void FakeHttpServer::on_drained(Connection& c) {
  if (c.shutdown_after) {
    c.shutdown_after = false;
    // FIN, then wait for the client's own close (read returns EOF): a close() with unread
    // data would send RST and turn "empty reply" into "connection reset".
    if (c.stream.shutdown([this, &c](int status) {
          if (status < 0) close(c);
        }) != 0)
      close(c);
    return;
  }
  if (!c.streaming) return;
  if (c.timer && !c.timer->active()) {
    c.timer->start(options_.chunk_interval, [this, &c] { send_chunk(c); });
    return;
  }
  if (!c.timer) send_chunk(c);
}

void FakeHttpServer::send_chunk(Connection& c) {
  if (!c.open || c.writing) return;
  if (c.streamed >= options_.endless_limit) {
    c.streaming = false;
    queue(c, "0\r\n\r\n");
    return;
  }
  c.streamed += kChunkPayload;
  queue_external(c, chunk_.data(), chunk_.size());
}

void FakeHttpServer::trickle(Connection& c) {
  if (!c.open || c.writing) return;  // the previous byte is still on its way
  if (c.trickle_pos >= c.trickled.size()) {
    c.timer->stop();
    return;
  }
  queue_external(c, c.trickled.data() + c.trickle_pos, 1);
  ++c.trickle_pos;
}

void FakeHttpServer::close(Connection& c) {
  if (!c.open) return;
  c.open = false;
  c.streaming = false;
  c.writing = false;
  c.out.clear();  // the pending write (if any) is dropped with the stream
  c.timer.reset();
  c.stream.reset();
  ++closed_;
}

}  // namespace netmond::test
