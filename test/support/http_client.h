// A blocking HTTP client for tests (libcurl's easy interface), never through a proxy: what
// a scraper or an operator's curl would see of netmond's HTTP side.
#pragma once

#include <chrono>
#include <string>

namespace netmond::test {

struct HttpReply {
  long status = 0;  // 0: no HTTP answer (refused, closed, timed out)
  std::string body;
};

// One request of `method` (GET, HEAD, or any other as a custom method) on the calling
// thread, waiting at most `limit`.
HttpReply http(const std::string& url, const char* method = "GET",
               std::chrono::milliseconds limit = std::chrono::seconds(5));

}  // namespace netmond::test
