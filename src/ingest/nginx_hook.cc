#include "ingest/nginx_hook.h"

#include <array>
#include <utility>

#include "ingest/names.h"

namespace earshot::ingest {
namespace {

struct CallName {
  HookCall call;
  std::string_view name;
};

constexpr std::array<CallName, 10> kCalls = {{
    {HookCall::kConnect, "connect"},
    {HookCall::kDisconnect, "disconnect"},
    {HookCall::kPublish, "publish"},
    {HookCall::kPublishDone, "publish_done"},
    {HookCall::kUpdatePublish, "update_publish"},
    {HookCall::kPlay, "play"},
    {HookCall::kPlayDone, "play_done"},
    {HookCall::kUpdatePlay, "update_play"},
    {HookCall::kDone, "done"},
    {HookCall::kRecordDone, "record_done"},
}};

std::string KnownCalls() {
  std::string out;
  for (const CallName& c : kCalls) {
    if (!out.empty()) out += ", ";
    out += c.name;
  }
  return out;
}

// A value fit to quote in an error message (only used for non-secret fields).
std::string Quoted(std::string_view text) {
  constexpr std::size_t kMax = 40;
  std::string out = "'";
  for (char c : text.substr(0, kMax)) out += (c >= 0x20 && c < 0x7F) ? c : '?';
  if (text.size() > kMax) out += "...";
  return out + "'";
}


}  // namespace

std::string_view HookCallName(HookCall call) {
  for (const CallName& c : kCalls) {
    if (c.call == call) return c.name;
  }
  return "unknown";
}

std::optional<HookCall> ParseHookCall(std::string_view name) {
  for (const CallName& c : kCalls) {
    if (c.name == name) return c.call;
  }
  return std::nullopt;
}

bool HookCallHasStream(HookCall call) {
  return call != HookCall::kConnect && call != HookCall::kDisconnect;
}

Result<NginxHook> NginxHook::FromForm(const HookForm& form) {
  const std::string* call_text = form.Find("call");
  if (call_text == nullptr) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "nginx-rtmp hook: field 'call' is missing (is this an nginx-rtmp "
                     "notification? nginx sends call=publish, call=publish_done, ...)");
  }
  const std::optional<HookCall> call = ParseHookCall(*call_text);
  if (!call) {
    return MakeError(ErrorCode::kInvalidArgument, "nginx-rtmp hook: unknown call " +
                                                      Quoted(*call_text) +
                                                      " (known: " + KnownCalls() + ")");
  }
  const std::string context = "nginx-rtmp hook '" + std::string(HookCallName(*call)) + "'";

  NginxHook hook;
  hook.call = *call;
  hook.app = form.Get("app");
  if (hook.app.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     context + ": field 'app' (the RTMP application) is missing or empty");
  }
  hook.name = form.Get("name");
  if (HookCallHasStream(*call) && hook.name.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     context + ": field 'name' (the stream name) is missing or empty");
  }
  hook.clientid = form.Get("clientid");
  if (form.Has("clientid") && !IsClientId(hook.clientid)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     context + ": field 'clientid' must be a decimal connection number, got " +
                         Quoted(hook.clientid));
  }
  hook.addr = form.Get("addr");
  hook.tcurl = form.Get("tcurl");
  hook.swfurl = form.Get("swfurl");
  hook.pageurl = form.Get("pageurl");
  hook.type = form.Get("type");

  static constexpr std::array<std::string_view, 9> kNamed = {
      "call", "app", "name", "addr", "clientid", "tcurl", "swfurl", "pageurl", "type"};
  for (const FormField& field : form.fields()) {
    bool named = false;
    for (std::string_view n : kNamed) named = named || field.name == n;
    if (!named) hook.args.push_back(field);
  }
  return hook;
}

std::string NginxHook::Arg(std::string_view field) const {
  for (const FormField& f : args) {
    if (f.name == field) return f.value;
  }
  return {};
}

nlohmann::json NginxHook::LogFields() const {
  nlohmann::json fields = {{"call", std::string(HookCallName(call))}, {"app", app}};
  if (!name.empty()) fields["name"] = RedactStreamKey(name);
  if (!addr.empty()) fields["addr"] = addr;
  if (!clientid.empty()) fields["clientid"] = clientid;
  return fields;
}

std::string RedactStreamKey(std::string_view key) {
  constexpr std::size_t kMinLengthToShowPrefix = 12;
  constexpr std::size_t kPrefix = 3;
  if (key.empty()) return {};
  if (key.size() < kMinLengthToShowPrefix) return "***";
  return std::string(key.substr(0, kPrefix)) + "***";
}

HookAnswer HookAnswer::Allow() { return HookAnswer{200, "", ""}; }

HookAnswer HookAnswer::Deny(std::string reason) { return HookAnswer{403, "", std::move(reason)}; }

HookAnswer HookAnswer::Redirect(std::string rtmp_url) {
  return HookAnswer{302, std::move(rtmp_url), ""};
}

}  // namespace earshot::ingest
