// Ingest controllers by kind: the `[ingest] kind` of earshot's config turns
// into an IngestController here.
//
//   "nginx-rtmp"       NginxRtmpController (nginx_rtmp_controller.h)
//   "srs", "mediamtx"  kUnsupported: planned, not yet implemented
//   anything else      kInvalidArgument, listing the kinds
//
// Thread safety: the functions are thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "ingest/ingest_controller.h"

namespace earshot::ingest {

// What every kind is configured with (the [ingest] section); each kind
// validates what it uses. Defaults: nginx-rtmp beside earshot on one machine.
struct IngestSettings {
  // The ingest server's RTMP base URL as earshot reaches it, rtmp://HOST[:PORT].
  std::string rtmp_url = "rtmp://127.0.0.1:1935";
  // Application accepted streams are relayed to, named by channel id.
  std::string relay_app = "hls";
  // The server's control API (nginx-rtmp: the rtmp_control location).
  std::string control_url = "http://127.0.0.1:8088/control";
  // Public HLS base URL: playback URL = {playback_url}/{channel_id}.m3u8.
  std::string playback_url = "http://127.0.0.1:8088/hls";
  // Milliseconds to connect to the control API, and for a whole request.
  int connect_timeout_ms = 2000;
  int request_timeout_ms = 5000;
};

// Builds the controller for `kind` (see above); the settings errors of that
// kind otherwise.
Result<std::unique_ptr<IngestController>> MakeIngestController(std::string_view kind,
                                                               const IngestSettings& settings);

// Every kind MakeIngestController knows, implemented or not.
std::vector<std::string> IngestKinds();

}  // namespace earshot::ingest
