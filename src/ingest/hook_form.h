// application/x-www-form-urlencoded bodies, as nginx-rtmp POSTs them to its
// on_* hooks (notify_method post):
//
//   app=ingest&flashver=FMLE/3.0&tcurl=rtmp://host/ingest&addr=203.0.113.7&
//   clientid=12&call=publish&name=KEY&type=live&name=other&app=x
//
// nginx-rtmp writes its own fields first and then appends the publisher's own
// URL query (rtmp://host/ingest/KEY?name=other&app=x) unescaped. So the FIRST
// occurrence of a field is the one nginx wrote and wins; later duplicates are
// dropped (and counted), which is what keeps a publisher from overriding
// `name`, `app` or `call`.
//
// Decoding: '+' is a space, %XX (hex, either case) is one byte. Fields are
// separated by '&'; a field without '=' has an empty value; empty fields
// ("a=1&&b=2", a trailing '&') and fields with an empty name ("=x") are
// skipped. Rejected with kInvalidArgument, and a message that never quotes a
// value (a value may be a stream key):
//   * a body over `max_body_bytes` or with more than `max_fields` fields
//     (duplicates and skipped fields count too),
//   * a '%' not followed by two hex digits,
//   * a decoded NUL byte, or a name or value that is not valid UTF-8 (hook
//     fields end up in JSON logs and in SQLite text columns).
//
// Pure: no I/O. Thread safety: HookForm is a plain value type.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace earshot::ingest {

// Bounds of one hook body. nginx-rtmp's own fields take a few hundred bytes;
// the rest is whatever a publisher put in its URL.
inline constexpr std::size_t kMaxFormBodyBytes = 16 * 1024;
inline constexpr std::size_t kMaxFormFields = 100;

struct FormLimits {
  std::size_t max_body_bytes = kMaxFormBodyBytes;  // bytes of the encoded body
  std::size_t max_fields = kMaxFormFields;         // '&'-separated fields, all counted
};

struct FormField {
  std::string name;   // decoded
  std::string value;  // decoded
};

// A parsed form: each name once (its first occurrence), in body order.
class HookForm {
 public:
  HookForm() = default;

  // Every kept field, in the order of the body.
  const std::vector<FormField>& fields() const { return fields_; }
  std::size_t size() const { return fields_.size(); }

  // The value of `name` (case-sensitive), or nullptr when absent. The
  // pointer is valid until the form is modified or destroyed.
  const std::string* Find(std::string_view name) const;
  bool Has(std::string_view name) const { return Find(name) != nullptr; }
  // The value of `name`, or "" when absent.
  std::string Get(std::string_view name) const;

  // How many later occurrences of an already seen name were dropped.
  std::size_t duplicates_dropped() const { return duplicates_dropped_; }

  // Adds a field unless `name` is already there (then counts a duplicate).
  // Returns whether it was added. Used by the parser; handy in tests.
  bool Add(std::string name, std::string value);

 private:
  std::vector<FormField> fields_;
  std::size_t duplicates_dropped_ = 0;
};

// Parses an application/x-www-form-urlencoded body (see above).
Result<HookForm> ParseFormBody(std::string_view body, const FormLimits& limits = {});

// Decodes one form-encoded component ('+' and %XX). kInvalidArgument for a
// malformed escape or a decoded NUL; UTF-8 is not checked here.
Result<std::string> FormDecode(std::string_view encoded);

// Percent-encodes everything but ALPHA / DIGIT / "-" / "." / "_" / "~"
// (RFC 3986 unreserved): safe in a query value and in a path segment.
std::string PercentEncode(std::string_view text);

}  // namespace earshot::ingest
