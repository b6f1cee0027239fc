#include "playback/jwt.h"

#include <array>
#include <set>
#include <vector>

namespace earshot::playback {
namespace {

// Value of each base64url character, -1 for anything else.
constexpr std::array<signed char, 256> MakeDecodeTable() {
  std::array<signed char, 256> table{};
  for (auto& v : table) v = -1;
  constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (size_t i = 0; i < kAlphabet.size(); ++i) {
    table[static_cast<unsigned char>(kAlphabet[i])] = static_cast<signed char>(i);
  }
  return table;
}
constexpr std::array<signed char, 256> kDecode = MakeDecodeTable();
constexpr char kEncode[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// A byte for a message: printable ASCII as itself, anything else as \xNN.
std::string Printable(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x21 && u < 0x7f) return std::string("'") + c + "'";
  static constexpr char kHex[] = "0123456789abcdef";
  return std::string("byte 0x") + kHex[u >> 4] + kHex[u & 0xf];
}

Status Malformed(std::string why) {
  return MakeError(ErrorCode::kInvalidArgument, "malformed token: " + why);
}

}  // namespace

Result<std::string> Base64UrlDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const int v = kDecode[static_cast<unsigned char>(text[i])];
    if (v < 0) {
      std::string why = text[i] == '=' ? " (padding is not allowed in JWS)" : "";
      return MakeError(ErrorCode::kInvalidArgument,
                       "base64url: " + Printable(text[i]) + " at position " + std::to_string(i) +
                           " is not in the alphabet [A-Za-z0-9_-]" + why);
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // Checked after the characters, so a stray character is named as such.
  if (text.size() % 4 == 1) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "base64url text of " + std::to_string(text.size()) +
                         " characters cannot be complete (length % 4 == 1)");
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "base64url: the last character has non-zero unused bits (not canonical)");
  }
  return out;
}

std::string Base64UrlEncode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : bytes) {
    acc = (acc << 8) | static_cast<unsigned char>(c);
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kEncode[(acc >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(kEncode[(acc << (6 - bits)) & 0x3f]);
  return out;
}

Result<nlohmann::json> ParseStrictJsonObject(std::string_view text, std::string_view what) {
  const std::string name(what);
  if (text.empty() || text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return MakeError(ErrorCode::kInvalidArgument, name + " is empty");
  }
  // The parser callback sees every member name; a stack of the names seen in
  // each open object finds duplicates (nlohmann would keep the last one).
  std::vector<std::set<std::string, std::less<>>> open_objects;
  int depth = 0;
  bool too_deep = false;
  std::string duplicate;
  auto callback = [&](int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    switch (event) {
      case Event::object_start:
        open_objects.emplace_back();
        if (++depth > kMaxJwtJsonDepth) too_deep = true;
        break;
      case Event::array_start:
        if (++depth > kMaxJwtJsonDepth) too_deep = true;
        break;
      case Event::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        --depth;
        break;
      case Event::array_end:
        --depth;
        break;
      case Event::key:
        if (!open_objects.empty() && parsed.is_string()) {
          const auto& key = parsed.get_ref<const std::string&>();
          if (!open_objects.back().insert(key).second && duplicate.empty()) duplicate = key;
        }
        break;
      case Event::value:
        break;
    }
    return true;
  };
  nlohmann::json json = nlohmann::json::parse(text.begin(), text.end(), callback,
                                              /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return MakeError(ErrorCode::kInvalidArgument, name + " is not valid UTF-8 JSON");
  }
  if (too_deep) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        name + " is nested more than " + std::to_string(kMaxJwtJsonDepth) + " levels deep");
  }
  if (!json.is_object()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     name + " must be a JSON object, found " + std::string(json.type_name()));
  }
  if (!duplicate.empty()) {
    if (duplicate.size() > 40) duplicate = duplicate.substr(0, 40) + "...";
    return MakeError(ErrorCode::kInvalidArgument,
                     name + " gives the member " +
                         nlohmann::json(duplicate).dump(-1, ' ', false,
                                                        nlohmann::json::error_handler_t::replace) +
                         " more than once");
  }
  return json;
}

Result<Jwt> DecodeJwt(std::string_view token) {
  if (token.size() > kMaxJwtBytes) {
    return std::unexpected(Malformed("the token is " + std::to_string(token.size()) +
                                     " bytes (at most " + std::to_string(kMaxJwtBytes) + ")")
                               .error());
  }
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return std::unexpected(
        Malformed("a JWS compact token has exactly three base64url parts separated by '.'")
            .error());
  }
  const std::string_view parts[3] = {token.substr(0, dot1), token.substr(dot1 + 1, dot2 - dot1 - 1),
                                     token.substr(dot2 + 1)};
  static constexpr std::string_view kNames[3] = {"header", "payload", "signature"};
  std::string decoded[3];
  for (int i = 0; i < 3; ++i) {
    if (parts[i].empty()) {
      return std::unexpected(Malformed("the " + std::string(kNames[i]) + " part is empty").error());
    }
    auto bytes = Base64UrlDecode(parts[i]);
    if (!bytes) {
      return std::unexpected(
          Malformed("the " + std::string(kNames[i]) + " part: " + bytes.error().message()).error());
    }
    decoded[i] = std::move(*bytes);
  }
  Jwt jwt;
  auto header = ParseStrictJsonObject(decoded[0], "the JWT header");
  if (!header) return std::unexpected(Malformed(header.error().message()).error());
  jwt.header = std::move(*header);

  // The algorithm first: a token with the wrong alg is refused as such.
  auto alg = jwt.header.find("alg");
  if (alg == jwt.header.end()) {
    return MakeError(ErrorCode::kUnsupported,
                     "token algorithm not allowed: the header has no \"alg\" (must be \"ES384\")");
  }
  if (!alg->is_string() || alg->get_ref<const std::string&>() != "ES384") {
    std::string shown = alg->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (shown.size() > 24) shown = shown.substr(0, 24) + "...";
    return MakeError(ErrorCode::kUnsupported, "token algorithm not allowed: \"alg\" is " + shown +
                                                  "; only \"ES384\" (ECDSA P-384) is accepted");
  }
  if (auto typ = jwt.header.find("typ"); typ != jwt.header.end()) {
    if (!typ->is_string() || typ->get_ref<const std::string&>() != "JWT") {
      return std::unexpected(Malformed("header \"typ\" must be \"JWT\" when present").error());
    }
  }
  if (auto kid = jwt.header.find("kid"); kid != jwt.header.end()) {
    if (!kid->is_string() || kid->get_ref<const std::string&>().empty()) {
      return std::unexpected(
          Malformed("header \"kid\" must be a non-empty string when present").error());
    }
    jwt.kid = kid->get<std::string>();
  }
  if (jwt.header.contains("crit")) {
    return std::unexpected(
        Malformed("header \"crit\" names extensions this verifier does not implement").error());
  }
  auto payload = ParseStrictJsonObject(decoded[1], "the JWT payload");
  if (!payload) return std::unexpected(Malformed(payload.error().message()).error());
  jwt.payload = std::move(*payload);
  jwt.signature = std::move(decoded[2]);
  jwt.signing_input_size = dot2;
  return jwt;
}

}  // namespace earshot::playback
