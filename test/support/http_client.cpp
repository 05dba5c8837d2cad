#include "support/http_client.h"

#include <curl/curl.h>

#include <memory>
#include <string_view>

namespace netmond::test {

HttpReply http(const std::string& url, const char* method, std::chrono::milliseconds limit) {
  HttpReply reply;
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return reply;
  auto write = +[](char* data, size_t size, size_t n, void* out) {
    static_cast<std::string*>(out)->append(data, size * n);
    return size * n;
  };
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_NOPROXY, "*");
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(limit.count()));
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, write);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &reply.body);
  if (std::string_view(method) == "HEAD")
    curl_easy_setopt(curl.get(), CURLOPT_NOBODY, 1L);
  else if (std::string_view(method) != "GET")
    curl_easy_setopt(curl.get(), CURLOPT_CUSTOMREQUEST, method);
  if (curl_easy_perform(curl.get()) == CURLE_OK)
    curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &reply.status);
  return reply;
}

}  // namespace netmond::test
