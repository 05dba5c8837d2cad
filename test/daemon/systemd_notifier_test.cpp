// SystemdNotifier in process, against a stand-in NOTIFY_SOCKET: STATUS= is worded when it
// is sent, not at every state change (the daemon's own messages are pinned end to end in
// systemd_notify_test.cpp).
#include "systemd_notifier.h"
#include "support/loop.h"
#include "support/notify_socket.h"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

using namespace netmond;
using namespace std::chrono_literals;
using netmond::test::LoopFixture;

TEST_CASE("systemd STATUS= asks for the summary once per message, however many changes",
          "[daemon][systemd]") {
  test::NotifySocket notify;
  // sd_notify(3) reads NOTIFY_SOCKET at every message: set for the test case only.
  struct Env {
    explicit Env(const std::string& path) { ::setenv("NOTIFY_SOCKET", path.c_str(), 1); }
    ~Env() { ::unsetenv("NOTIFY_SOCKET"); }
  } env(notify.path());
  LoopFixture fixture;
  {
    SystemdNotifier notifier(fixture.loop());
    REQUIRE(notifier.enabled());
    int worded = 0;
    int up = 0;
    // 1,000 checks come up one after another, each a state change the daemon reports.
    for (int i = 0; i < 1000; ++i) {
      ++up;
      notifier.status([&] {
        ++worded;
        return std::to_string(up) + " up";
      });
    }
    CHECK(worded == 0);
    REQUIRE(fixture.run_until([&] { return worded > 0; }, 2s));
    CHECK(worded == 1);
    auto message = notify.next(1s);
    REQUIRE(message);
    CHECK(*message == "STATUS=1000 up");
  }
  REQUIRE(fixture.finish() == 0);
}
