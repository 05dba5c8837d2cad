// MetricsServer (daemon/metrics_server.h): the text of a scrape is formatted on a thread
// while the loop goes on, scrapes that arrive meanwhile share it, and a server stopped
// with scrapes waiting closes them cleanly. The formatting here is held on a latch the
// test opens, so "the loop went on" is a fact, not a timing.
#include "metrics_server.h"

#include "support/http_client.h"
#include "support/loop.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <memory>
#include <string>
#include <thread>

using namespace netmond;
using namespace std::chrono_literals;
using netmond::test::http;
using netmond::test::HttpReply;
using netmond::test::LoopFixture;

namespace {

// A render whose formatting waits until open() is called; counts snapshots and formats.
struct HeldRender {
  std::atomic<int> snapshots{0};
  std::atomic<int> formatted{0};
  std::atomic<int> formatting{0};  // formats waiting on the latch
  std::promise<void> latch;
  std::shared_future<void> opened = latch.get_future().share();

  MetricsServer::Render render() {
    return [this]() -> MetricsServer::Format {
      int n = ++snapshots;  // on the loop
      return [this, n] {
        ++formatting;
        opened.wait();
        ++formatted;
        return "text " + std::to_string(n) + "\n";
      };
    };
  }
  void open() { latch.set_value(); }
};

// A free loopback port for the server (bound and released; the tests are the only users
// of the port in the moment between).
std::string free_listen_address() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
}

}  // namespace

TEST_CASE("metrics server: the text is formatted off the loop and shared by waiting scrapes",
          "[metrics]") {
  LoopFixture fixture;
  {
    HeldRender held;
    MetricsServer server(fixture.loop(), held.render());
    const std::string listen = free_listen_address();
    REQUIRE(server.start(listen));
    const std::string url = "http://" + listen + "/metrics";

    // The curl threads and the formatting change what run_until() waits for without waking
    // the loop: a tick makes it look every 5 ms. It also counts the loop's turns.
    int ticks = 0;
    uv::Timer tick(fixture.loop());
    tick.start(
        5ms, [&] { ++ticks; }, 5ms);

    auto first = std::async(std::launch::async, [&] { return http(url, "GET", 10s); });
    REQUIRE(fixture.run_until([&] { return held.formatting == 1; }, 5s));
    // The formatting is held: the loop still turns (a blocked loop would not come back
    // from run_for at all until the latch opened, and nothing opens it).
    ticks = 0;
    fixture.run_for(100ms);
    CHECK(ticks >= 10);

    // Two more scrapes while it is held: they wait for the same text, no second snapshot.
    auto second = std::async(std::launch::async, [&] { return http(url, "GET", 10s); });
    auto third = std::async(std::launch::async, [&] { return http(url, "GET", 10s); });
    fixture.run_for(200ms);
    CHECK(held.snapshots == 1);
    CHECK(first.wait_for(0s) == std::future_status::timeout);

    held.open();
    REQUIRE(fixture.run_until(
        [&] {
          return first.wait_for(0s) == std::future_status::ready &&
                 second.wait_for(0s) == std::future_status::ready &&
                 third.wait_for(0s) == std::future_status::ready;
        },
        10s));
    for (auto* f : {&first, &second, &third}) {
      HttpReply r = f->get();
      CHECK(r.status == 200);
      CHECK(r.body == "text 1\n");
    }
    CHECK(held.formatted == 1);

    // The next scrape takes a new snapshot.
    auto fourth = std::async(std::launch::async, [&] { return http(url, "GET", 10s); });
    REQUIRE(
        fixture.run_until([&] { return fourth.wait_for(0s) == std::future_status::ready; }, 10s));
    HttpReply r = fourth.get();
    CHECK(r.status == 200);
    CHECK(r.body == "text 2\n");
    server.stop();
    tick.stop();
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("metrics server: stopped with a scrape waiting, it closes the connection cleanly",
          "[metrics]") {
  LoopFixture fixture;
  HeldRender held;  // outlives the server: its formatting thread reads it
  {
    MetricsServer server(fixture.loop(), held.render());
    const std::string listen = free_listen_address();
    REQUIRE(server.start(listen));
    uv::Timer tick(fixture.loop());  // run_until() looks every 5 ms (see above)
    tick.start(
        5ms, [] {}, 5ms);
    auto scrape = std::async(std::launch::async,
                             [&] { return http("http://" + listen + "/metrics", "GET", 10s); });
    REQUIRE(fixture.run_until([&] { return held.formatting == 1; }, 5s));
    server.stop();  // MHD must not stop with a suspended connection: it is resumed first
    REQUIRE(
        fixture.run_until([&] { return scrape.wait_for(0s) == std::future_status::ready; }, 10s));
    CHECK(scrape.get().status == 0);  // closed without an answer

    // Started again while the old text is still being formatted: the new scrape gets it.
    REQUIRE(server.start(listen));
    auto again = std::async(std::launch::async,
                            [&] { return http("http://" + listen + "/metrics", "GET", 10s); });
    fixture.run_for(100ms);
    held.open();
    REQUIRE(
        fixture.run_until([&] { return again.wait_for(0s) == std::future_status::ready; }, 10s));
    HttpReply r = again.get();
    CHECK(r.status == 200);
    CHECK(r.body == "text 1\n");
    tick.stop();
  }
  REQUIRE(fixture.finish() == 0);
}
