#include "delivery/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>

namespace earshot::delivery {
namespace {

struct CurlDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* out = static_cast<std::string*>(user);
  out->append(data, size * count);
  return size * count;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* headers = static_cast<std::vector<HttpHeader>*>(user);
  std::string_view line(data, size * count);
  size_t colon = line.find(':');
  if (line.starts_with("HTTP/")) {
    headers->clear();  // a new response (after a redirect or 100 Continue)
  } else if (colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
      value.remove_suffix(1);
    }
    headers->push_back({std::move(name), std::string(value)});
  }
  return size * count;
}

}  // namespace

std::string HttpResponse::Header(std::string_view lower_name) const {
  for (const HttpHeader& h : headers) {
    if (h.name == lower_name) return h.value;
  }
  return {};
}

void InitHttpClient() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string RedactUrl(const std::string& url) {
  std::string out = url.substr(0, url.find_first_of("?#"));
  size_t authority = out.find("://");
  if (authority == std::string::npos) return out;
  authority += 3;
  size_t path = out.find('/', authority);
  size_t at = out.rfind('@', path == std::string::npos ? out.size() : path);
  if (at != std::string::npos && at >= authority) out.erase(authority, at + 1 - authority);
  return out;
}

Result<HttpResponse> SendHttp(const HttpRequest& request) {
  InitHttpClient();
  const std::string shown = request.method + " " + RedactUrl(request.url);
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return MakeError(ErrorCode::kInternal, shown + ": cannot create a libcurl handle");

  std::vector<std::string> lines;
  bool has_content_type = false;
  for (const HttpHeader& h : request.headers) {
    std::string lower = h.name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    has_content_type = has_content_type || lower == "content-type";
    lines.push_back(h.value.empty() ? h.name + ";" : h.name + ": " + h.value);  // "X;" sends it empty
  }
  // Never wait for "100 Continue"; never let curl invent a form content type.
  lines.emplace_back("Expect:");
  if (!has_content_type) lines.emplace_back("Content-Type:");
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  for (const std::string& line : lines) {
    curl_slist* head = curl_slist_append(headers.get(), line.c_str());
    if (head == nullptr) return MakeError(ErrorCode::kInternal, shown + ": out of memory");
    if (!headers) headers.reset(head);  // later appends return the same head
  }

  HttpResponse response;
  CURL* h = curl.get();
  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request.connect_timeout_ms));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout_ms));
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &response.headers);
  if (request.method == "GET") {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  }

  CURLcode rc = curl_easy_perform(h);
  if (rc != CURLE_OK) {
    ErrorCode code = ErrorCode::kUnavailable;
    if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL) {
      code = ErrorCode::kInvalidArgument;
    }
    return MakeError(code, shown + " failed: " + curl_easy_strerror(rc));
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

}  // namespace earshot::delivery
