// IngestController over nginx-rtmp (Debian nginx 1.22 + libnginx-mod-rtmp
// 1.2.2), through its HTTP control endpoint (`rtmp_control all;` in an http
// location, loopback only: see nginx_config.h):
//
//   GET {control_url}/drop/publisher?app=APP[&name=NAME][&clientid=ID]
//     → 200, body: the number of publishers dropped ("0" when none matched)
//
// The dropped publisher's connection closes within about a second, and nginx
// then sends on_publish_done (and, for a relayed stream, the relay
// application's on_publish_done).
//
// Channel ids go into URLs percent-encoded (earshot's ids need no encoding).
//
// Thread safety: immutable after Create(); every method may be called from
// any thread (SendHttp is reentrant; call delivery::InitHttpClient() first).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/error.h"
#include "ingest/ingest_controller.h"

namespace earshot::ingest {

struct NginxRtmpControllerOptions {
  // nginx-rtmp's rtmp_control location, http(s)://HOST[:PORT]/PATH.
  std::string control_url = "http://127.0.0.1:8088/control";
  // The RTMP server as earshot reaches it (the relay and scanners connect
  // here), rtmp://HOST[:PORT]. Loopback when earshot runs beside nginx.
  std::string rtmp_url = "rtmp://127.0.0.1:1935";
  // The application an accepted stream is relayed to, named by channel id.
  std::string relay_app = "hls";
  // Public base URL of the relay application's HLS (viewers' URL),
  // http(s)://HOST[:PORT]/PATH; playlist = {playback_url}/{channel_id}.m3u8.
  std::string playback_url = "http://127.0.0.1:8088/hls";
  // Milliseconds to connect to the control endpoint; 1..600000.
  int connect_timeout_ms = 2000;
  // Milliseconds for a whole control request, connect included; 1..600000.
  int request_timeout_ms = 5000;
};

class NginxRtmpController final : public IngestController {
 public:
  static constexpr std::string_view kKind = "nginx-rtmp";

  // Validates the options (kInvalidArgument naming the option: a URL with
  // the wrong scheme, no host, a query string or whitespace; an application
  // name outside [A-Za-z0-9_.-]; a timeout out of range). Trailing '/' of the
  // URLs are dropped.
  static Result<std::unique_ptr<NginxRtmpController>> Create(NginxRtmpControllerOptions options);

  std::string_view kind() const override { return kKind; }
  // See IngestController. Also kUnavailable for a 5xx answer, kCorruptData
  // for a 200 whose body is not a count.
  Status DropPublisher(const PublisherRef& publisher) override;
  // {rtmp_url}/{relay_app}/{channel_id}
  std::string RelayUrl(std::string_view channel_id) const override;
  // Same as RelayUrl: scanners play the relayed copy.
  std::string ScanInputUrl(std::string_view channel_id) const override;
  // {playback_url}/{channel_id}.m3u8
  std::string PlaybackUrl(std::string_view channel_id) const override;

  const NginxRtmpControllerOptions& options() const { return options_; }

 private:
  explicit NginxRtmpController(NginxRtmpControllerOptions options)
      : options_(std::move(options)) {}

  NginxRtmpControllerOptions options_;
};

}  // namespace earshot::ingest
