#include "support/nginx.h"

#include "base/address.h"
#include "base/fd.h"
#include "support/tls.h"

#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

namespace netmond::test {

namespace {

using namespace std::chrono_literals;

constexpr const char* kNginx = "/usr/sbin/nginx";
// Sends the master SIGTERM should the test process die without running ~Nginx (a crash, a
// ctest timeout), so no nginx outlives its test; the master then stops its worker.
constexpr const char* kSetpriv = "/usr/bin/setpriv";

// A listening TCP socket on ip:0; nginx takes it over.
Fd listen_on(const std::string& ip, std::uint16_t* port) {
  auto addr = parse_ip(ip, 0);
  if (!addr) throw std::invalid_argument("not an IP literal: " + ip);
  Fd fd(::socket(addr->family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  int on = 1;
  if (fd && addr->family() == AF_INET6)
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
  if (!fd || ::bind(fd.get(), addr->get(), addr->length) != 0 || ::listen(fd.get(), 511) != 0)
    throw std::runtime_error("nginx fixture: cannot listen on " + ip + ": " + std::strerror(errno));
  SockAddr local;
  local.length = sizeof local.storage;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local.storage), &local.length);
  *port = local.port();
  return fd;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

const char* const kLocations = R"(root DIR/www;
location = / { return 200 "hello netmond\n"; }
location = /notfound { return 404; }
# Relative Locations: the client must resolve them against the URL it asked for.
location = /redirect { absolute_redirect off; return 302 /target; }
location = /redirect2 { absolute_redirect off; return 302 /redirect; }
location = /redirect-loop { absolute_redirect off; return 302 /redirect-loop; }
location = /abs-redirect { return 301 $scheme://$host:$server_port/target; }
location = /target { return 200 "target ok\n"; }
location = /status/503 { return 503 "unavailable\n"; }
location = /post { return 200 "method=$request_method length=$content_length\n"; }
location = /headers { return 200 "x-netmond=$http_x_netmond\nuser-agent=$http_user_agent\n"; }
location = /big { default_type application/octet-stream; }
location = /text { }
location = /slow { default_type application/octet-stream; limit_rate 4k; alias DIR/www/big; }
)";

// master_process on: nginx 1.22 in single-process mode crashes (SIGSEGV) when it inherits
// its listening sockets. `user root`: the worker must read files in our 0700 temp dir.
const char* const kMain = R"(daemon off;
master_process on;
worker_processes 1;
user root;
pid DIR/nginx.pid;
error_log DIR/error.log notice;
events { worker_connections 1024; }
http {
  # What tests look for: the request, what was sent (and how), who asked, on which connection.
  log_format netmond '$remote_addr "$request" $status $body_bytes_sent "$sent_http_content_encoding" '
                     '"$http_user_agent" connection=$connection request=$connection_requests';
  access_log DIR/access.log netmond;
  client_body_temp_path DIR/tmp/body;
  proxy_temp_path DIR/tmp/proxy;
  fastcgi_temp_path DIR/tmp/fastcgi;
  uwsgi_temp_path DIR/tmp/uwsgi;
  scgi_temp_path DIR/tmp/scgi;
  default_type text/plain;
  gzip on;
  gzip_types text/plain;
  keepalive_timeout 10s;
  ssl_protocols TLSv1.2 TLSv1.3;
SERVERS}
)";

std::string with_dir(std::string text, const std::string& dir) {
  for (std::size_t at = 0; (at = text.find("DIR", at)) != std::string::npos; at += dir.size())
    text.replace(at, 3, dir);
  return text;
}

void write_files(const std::string& dir) {
  std::filesystem::create_directories(dir + "/www");
  std::filesystem::create_directories(dir + "/tmp");
  {
    // Varied bytes rather than one repeated: nothing on the way can shrink it.
    std::string block;
    for (int i = 0; i < 4096; ++i) block += static_cast<char>((i * 7 + i / 256) & 0xff);
    std::ofstream big(dir + "/www/big", std::ios::binary);
    for (std::size_t n = 0; n < Nginx::kBigBytes; n += block.size()) big << block;
  }
  std::string text;
  for (int i = 0; text.size() < Nginx::kTextBytes - 8; ++i) {
    std::string line = "line " + std::to_string(i) + " of the netmond text\n";
    if (text.size() + line.size() > Nginx::kTextBytes - 8) break;
    text += line;
  }
  text.append(Nginx::kTextBytes - 8 - text.size(), '.');
  write_file(dir + "/www", "text", text + "the end\n");
}

std::string host_port(const std::string& scheme, bool v6, std::uint16_t port,
                      std::string_view path) {
  return scheme + (v6 ? "://[::1]:" : "://127.0.0.1:") + std::to_string(port) + std::string(path);
}

// The worker(s) of `master`, from /proc (Linux keeps the list per thread).
std::vector<pid_t> children_of(pid_t master) {
  std::vector<pid_t> pids;
  std::ifstream in("/proc/" + std::to_string(master) + "/task/" + std::to_string(master) +
                   "/children");
  for (pid_t p; in >> p;) pids.push_back(p);
  return pids;
}

}  // namespace

Nginx::Nginx() : dir_(temp_dir()) {
  const TestPki& pki = test_pki();
  write_files(dir_);
  write_file(dir_, "locations.conf", with_dir(kLocations, dir_));

  std::vector<Fd> sockets;
  std::string servers;
  auto listen = [&](const std::string& ip, const std::string& opts) {
    std::uint16_t port = 0;
    sockets.push_back(listen_on(ip, &port));
    bool v6 = ip.find(':') != std::string::npos;
    servers +=
        "    listen " + (v6 ? "[" + ip + "]" : ip) + ":" + std::to_string(port) + opts + ";\n";
    return port;
  };
  servers += "  server {\n";
  http_port_ = listen("127.0.0.1", "");
  http6_port_ = listen("::1", "");
  servers += "    include " + dir_ + "/locations.conf;\n  }\n";
  const TestCert* certs[kTlsSites] = {&pki.valid, &pki.expired, &pki.expiring, &pki.other_name,
                                      &pki.chained};
  for (std::size_t i = 0; i < kTlsSites; ++i) {
    servers += "  server {\n";
    https_ports_[i] = listen("127.0.0.1", " ssl");
    if (i == index(TlsSite::Valid)) https6_port_ = listen("::1", " ssl");
    servers += "    ssl_certificate " + certs[i]->chain + ";\n";
    servers += "    ssl_certificate_key " + certs[i]->key + ";\n";
    servers += "    include " + dir_ + "/locations.conf;\n  }\n";
  }
  std::string conf = with_dir(kMain, dir_);
  conf.replace(conf.find("SERVERS"), 7, servers);
  std::string conf_path = write_file(dir_, "nginx.conf", conf);

  // The sockets become the child's 3, 4, ...; NGINX="3;4;...;" tells nginx to use them for
  // the `listen` lines of the same addresses instead of binding.
  ChildOptions options;
  std::string inherited;
  for (std::size_t i = 0; i < sockets.size(); ++i) {
    options.fds.push_back(sockets[i].get());
    inherited += std::to_string(3 + i) + ";";
  }
  options.env.push_back("NGINX=" + inherited);
  std::vector<std::string> argv = {kNginx,    "-p", dir_ + "/",         "-c",
                                   conf_path, "-e", dir_ + "/error.log"};
  if (::access(kSetpriv, X_OK) == 0) argv.insert(argv.begin(), {kSetpriv, "--pdeathsig", "TERM"});
  child_ = std::make_unique<ChildProcess>(std::move(argv), std::move(options));
  sockets.clear();  // nginx has its copies; ours would keep the ports open after it stops

  // The sockets listen already, so a connect proves nothing: wait for an HTTP answer, which
  // comes once the worker serves all of them.
  auto until = std::chrono::steady_clock::now() + 10s;
  while (!answers_http()) {
    if (auto code = child_->wait(0ms))
      fail("nginx exited with " + std::to_string(*code) +
           (*code == 127 ? " (cannot run " + std::string(kNginx) + ": package nginx-light)" : ""));
    if (std::chrono::steady_clock::now() >= until) fail("nginx did not answer within 10 s");
    std::this_thread::sleep_for(20ms);
  }
}

Nginx::~Nginx() { stop(); }

void Nginx::stop() {
  if (!child_) return;
  std::vector<pid_t> workers = children_of(child_->pid());
  child_->signal(SIGTERM);
  if (!child_->wait(5s)) {
    for (pid_t w : workers) ::kill(w, SIGKILL);
    for (pid_t w : children_of(child_->pid())) ::kill(w, SIGKILL);
  }
  child_.reset();  // SIGKILLs and reaps the master if it is still there
}

void Nginx::fail(const std::string& why) {
  std::string report = why + "\nnginx stderr:\n" + child_->err() + "\nerror.log:\n" + error_log();
  stop();
  throw std::runtime_error(report);
}

bool Nginx::answers_http() const {
  auto addr = parse_ip("127.0.0.1", http_port_);
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd || ::connect(fd.get(), addr->get(), addr->length) != 0) return false;
  static constexpr std::string_view kRequest = "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (::send(fd.get(), kRequest.data(), kRequest.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(kRequest.size()))
    return false;
  std::string reply;
  char buf[512];
  // HTTP/1.0: nginx closes after the reply. 100 ms per try, then the caller checks on nginx.
  for (pollfd p{fd.get(), POLLIN, 0}; ::poll(&p, 1, 100) == 1;) {
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n <= 0) break;
    reply.append(buf, static_cast<std::size_t>(n));
  }
  return reply.starts_with("HTTP/1.1 200 ") && reply.ends_with("hello netmond\n");
}

std::string Nginx::http_url(std::string_view path) const {
  return host_port("http", false, http_port_, path);
}
std::string Nginx::http6_url(std::string_view path) const {
  return host_port("http", true, http6_port_, path);
}
std::string Nginx::https_url(TlsSite site, std::string_view path) const {
  return host_port("https", false, https_port(site), path);
}
std::string Nginx::https6_url(std::string_view path) const {
  return host_port("https", true, https6_port_, path);
}

pid_t Nginx::pid() const { return child_ ? child_->pid() : -1; }

std::string Nginx::error_log() const { return read_file(dir_ + "/error.log"); }
std::string Nginx::access_log() const { return read_file(dir_ + "/access.log"); }

}  // namespace netmond::test
