#include "ingest/hook_form.h"

#include <cstdint>

namespace earshot::ingest {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
// U+10FFFF.
bool IsValidUtf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<uint8_t>(text[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t extra = 0;
    uint32_t code = 0;
    uint32_t min = 0;
    if ((c & 0xE0) == 0xC0) {
      extra = 1;
      code = c & 0x1F;
      min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      code = c & 0x0F;
      min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      code = c & 0x07;
      min = 0x10000;
    } else {
      return false;
    }
    if (i + extra >= text.size()) return false;  // truncated sequence
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto next = static_cast<uint8_t>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code = (code << 6) | (next & 0x3F);
    }
    if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

// A field name fit to appear in an error message: printable ASCII, short.
std::string Printable(std::string_view name) {
  constexpr std::size_t kMax = 40;
  std::string out;
  for (char c : name.substr(0, kMax)) {
    out += (c >= 0x20 && c < 0x7F) ? c : '?';
  }
  if (name.size() > kMax) out += "...";
  return out;
}

}  // namespace

const std::string* HookForm::Find(std::string_view name) const {
  for (const FormField& field : fields_) {
    if (field.name == name) return &field.value;
  }
  return nullptr;
}

std::string HookForm::Get(std::string_view name) const {
  const std::string* value = Find(name);
  return value != nullptr ? *value : std::string();
}

bool HookForm::Add(std::string name, std::string value) {
  if (Has(name)) {
    ++duplicates_dropped_;
    return false;
  }
  fields_.push_back({std::move(name), std::move(value)});
  return true;
}

Result<std::string> FormDecode(std::string_view encoded) {
  std::string out;
  out.reserve(encoded.size());
  for (std::size_t i = 0; i < encoded.size(); ++i) {
    const char c = encoded[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%') {
      const int high = i + 1 < encoded.size() ? HexValue(encoded[i + 1]) : -1;
      const int low = i + 2 < encoded.size() ? HexValue(encoded[i + 2]) : -1;
      if (high < 0 || low < 0) {
        return MakeError(ErrorCode::kInvalidArgument,
                         "malformed percent-escape at offset " + std::to_string(i) +
                             ": '%' must be followed by two hex digits");
      }
      const char byte = static_cast<char>((high << 4) | low);
      if (byte == '\0') {
        return MakeError(ErrorCode::kInvalidArgument,
                         "percent-escape %00 (a NUL byte) at offset " + std::to_string(i) +
                             " is not allowed");
      }
      out += byte;
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Result<HookForm> ParseFormBody(std::string_view body, const FormLimits& limits) {
  if (body.size() > limits.max_body_bytes) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "hook body of " + std::to_string(body.size()) + " bytes is over the limit of " +
                         std::to_string(limits.max_body_bytes) + " bytes");
  }
  HookForm form;
  std::size_t field_count = 0;
  std::size_t start = 0;
  while (start <= body.size()) {
    std::size_t end = body.find('&', start);
    if (end == std::string_view::npos) end = body.size();
    const std::string_view field = body.substr(start, end - start);
    const std::size_t field_offset = start;
    start = end + 1;
    if (field.empty()) {
      if (end == body.size()) break;
      continue;
    }
    if (++field_count > limits.max_fields) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "hook body has more than " + std::to_string(limits.max_fields) + " fields");
    }
    const std::size_t eq = field.find('=');
    const std::string_view raw_name = field.substr(0, eq);
    const std::string_view raw_value =
        eq == std::string_view::npos ? std::string_view() : field.substr(eq + 1);

    auto name = FormDecode(raw_name);
    if (!name) {
      return std::unexpected(name.error().Wrap("hook body: field name at offset " +
                                               std::to_string(field_offset)));
    }
    if (!IsValidUtf8(*name)) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "hook body: field name at offset " + std::to_string(field_offset) +
                           " is not valid UTF-8");
    }
    auto value = FormDecode(raw_value);
    if (!value) {
      return std::unexpected(value.error().Wrap("hook body: value of field '" + Printable(*name) +
                                                "'"));
    }
    if (!IsValidUtf8(*value)) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "hook body: value of field '" + Printable(*name) + "' is not valid UTF-8");
    }
    if (name->empty()) continue;
    form.Add(std::move(*name), std::move(*value));
    if (end == body.size()) break;
  }
  return form;
}

}  // namespace earshot::ingest
