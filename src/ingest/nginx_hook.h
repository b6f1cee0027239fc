// One nginx-rtmp notification (on_connect, on_publish, on_play, on_update,
// on_publish_done, on_play_done, on_done, on_record_done, on_disconnect),
// typed, and the answer earshot gives it.
//
// nginx-rtmp 1.2.2 sends, for a publish:
//   app=ingest&flashver=FMLE/3.0&swfurl=&tcurl=rtmp://host:1935/ingest&pageurl=&
//   addr=203.0.113.7&clientid=12&call=publish&name=KEY&type=live[&<publisher's query>]
// `call` says which hook it is; on_update sends call=update_publish or
// update_play with `time` and `timestamp`; on_play adds start, duration,
// reset. Everything that is not a named member below lands in `args`.
//
// In the ingest application `name` IS the publisher's secret stream key:
// never log it; log LogFields() (or RedactStreamKey(name)) instead.
//
// What nginx-rtmp does with the answer (HookAnswer):
//   2xx          allowed
//   3xx + Location: rtmp://HOST[:PORT]/APP/NAME
//                on_publish / on_play: the stream is relayed to (pushed to /
//                pulled from) that URL; with `notify_relay_redirect off` the
//                local stream keeps its name. Any other Location renames the
//                stream locally (which would keep the key in HLS file names).
//   4xx, 5xx     refused: the publisher or player is disconnected (on_update:
//                at that update). A hook server that is down refuses too.
//
// Pure: no I/O. Thread safety: plain value types.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "ingest/hook_form.h"

namespace earshot::ingest {

// The `call` field of a notification.
enum class HookCall {
  kConnect,        // "connect"        on_connect
  kDisconnect,     // "disconnect"     on_disconnect
  kPublish,        // "publish"        on_publish
  kPublishDone,    // "publish_done"   on_publish_done
  kUpdatePublish,  // "update_publish" on_update, for a publisher
  kPlay,           // "play"           on_play
  kPlayDone,       // "play_done"      on_play_done
  kUpdatePlay,     // "update_play"    on_update, for a player
  kDone,           // "done"           on_done (after publish_done or play_done)
  kRecordDone,     // "record_done"    on_record_done
};

// nginx-rtmp's spelling, e.g. "publish_done".
std::string_view HookCallName(HookCall call);
// The call spelled `name`, or nullopt for anything nginx-rtmp does not send.
std::optional<HookCall> ParseHookCall(std::string_view name);
// Whether the call is about one stream (then `name` is required): every call
// but connect and disconnect.
bool HookCallHasStream(HookCall call);

struct NginxHook {
  HookCall call = HookCall::kPublish;
  std::string app;       // RTMP application, e.g. "ingest"
  std::string name;      // stream name: the stream key in the ingest app. SECRET there
  std::string addr;      // client address as nginx saw it, e.g. "203.0.113.7"
  std::string clientid;  // nginx's connection number (decimal), unique per nginx run
  std::string tcurl;     // RTMP URL the client connected to, without the stream name
  std::string swfurl;
  std::string pageurl;
  std::string type;             // publish: "live", "record" or "append"
  std::vector<FormField> args;  // every other field, in body order (flashver, time, the
                                // publisher's own query fields such as sig=...)

  // Types a parsed form. kInvalidArgument (message naming the field) when
  // `call` is missing or unknown, `app` is missing or empty, `name` is
  // missing or empty for a call about a stream, or `clientid` is not a
  // decimal number. Never quotes the stream key.
  static Result<NginxHook> FromForm(const HookForm& form);

  // The value of an extra field, or "" (e.g. Arg("time") for on_update).
  std::string Arg(std::string_view field) const;

  // What may be logged: call, app, addr, clientid, and `name` through
  // RedactStreamKey.
  nlohmann::json LogFields() const;
};

// A stream key fit for logs: "" for "", "***" for keys under 12 characters,
// else the first 3 characters and "***" (e.g. "sk_***"). Enough to tell keys
// apart in logs, not enough to publish with.
std::string RedactStreamKey(std::string_view key);

// What a hook is answered. Aggregate: HookAnswer{503, "", "state unavailable"}.
struct HookAnswer {
  int status = 200;      // HTTP status
  std::string location;  // Location header, sent when not empty
  std::string body;      // text/plain, for nginx's log and people reading it

  // 200, empty body.
  static HookAnswer Allow();
  // 403 with `reason` as the body. nginx-rtmp disconnects the client.
  static HookAnswer Deny(std::string reason);
  // 302 to `rtmp_url` (rtmp://HOST:PORT/APP/NAME): on_publish relays the
  // stream there (see above).
  static HookAnswer Redirect(std::string rtmp_url);

  bool allowed() const { return status >= 200 && status < 300; }
  bool redirected() const { return status >= 300 && status < 400; }
};

}  // namespace earshot::ingest
