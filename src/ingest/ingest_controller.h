// What the control plane needs from an ingest server (nginx-rtmp now; SRS and
// MediaMTX can follow behind the same interface): stop a publisher, and the
// URLs where a channel's live stream can be read.
//
// The layout every implementation follows: publishers connect to the ingest
// application with their secret stream key as the stream name; the publish
// hook relays an accepted stream to the relay application under the
// channel's id (RelayUrl), so nothing downstream (HLS files, playback URLs,
// scanners) ever sees the key.
//
// Thread safety: implementations are immutable after construction and every
// method may be called from any thread.
#pragma once

#include <string>
#include <string_view>

#include "common/error.h"

namespace earshot::ingest {

// One publisher session on the ingest server. `app` is required and at least
// one of `name` and `clientid`: a ref with both empty would match every
// publisher of the application and is refused.
struct PublisherRef {
  std::string app;       // RTMP application, e.g. "ingest"
  std::string name;      // stream name (the stream key in the ingest app: SECRET); may be ""
  std::string clientid;  // the server's connection id from the publish hook; may be ""
};

class IngestController {
 public:
  virtual ~IngestController() = default;

  // "nginx-rtmp", "srs", "mediamtx".
  virtual std::string_view kind() const = 0;

  // Disconnects the matching publisher(s) now. Its encoder will usually
  // reconnect: a stop that must stick revokes the key (or refuses the next
  // update) as well. Errors:
  //   kNotFound          nothing matched (the stream had ended already)
  //   kUnavailable       the ingest server is down or does not answer
  //   kInvalidArgument   an incomplete PublisherRef
  //   kFailedPrecondition  the server refused the request (misconfiguration:
  //                      wrong control URL, access denied)
  // Never logs the stream key.
  virtual Status DropPublisher(const PublisherRef& publisher) = 0;

  // Where the publish hook relays a channel's accepted stream, e.g.
  // rtmp://127.0.0.1:1935/hls/<channel_id> (nginx-rtmp: the 302 Location).
  virtual std::string RelayUrl(std::string_view channel_id) const = 0;

  // Where a scanner reads the channel's live stream (no key in it), e.g.
  // rtmp://127.0.0.1:1935/hls/<channel_id>.
  virtual std::string ScanInputUrl(std::string_view channel_id) const = 0;

  // The public HLS playlist of the channel, e.g.
  // https://live.example.com/hls/<channel_id>.m3u8.
  virtual std::string PlaybackUrl(std::string_view channel_id) const = 0;
};

}  // namespace earshot::ingest
