// Where identification responses go after they are durable on local disk,
// and who is told about them.
//
// Two small interfaces with one real implementation per backend, made by
// name from a spec string (see registry.h):
//   ResultSink  stores a copy of a result file elsewhere (an S3 bucket).
//   Notifier    tells someone a result was written (webhook, email).
// Each call is ONE attempt: retries, backoff and the on-disk spool that keeps
// undelivered work across restarts belong to the Outbox (outbox.h), not to
// the backends. A backend returns an Error for anything short of success;
// kUnavailable means "try again later" (server down, 5xx, timeout), other
// codes mean a configuration problem (bad credentials, 4xx) that is retried
// too but logged as such.
//
// Thread safety: implementations must allow concurrent calls from several
// threads (the outbox delivers on a small pool).
#pragma once

#include <string>

#include "common/error.h"

namespace earshot::delivery {

// One result file of one stream, as written under RESULTS/{stream_id}/.
struct ResultFile {
  std::string stream_id;     // already validated: [A-Za-z0-9._-]{1,128}
  std::string name;          // file name inside the stream's folder, e.g. "match-0001-started.json"
  std::string content_type;  // "application/json", or "image/jpeg" for thumbnails
  std::string body;          // the file's bytes
};

class ResultSink {
 public:
  virtual ~ResultSink() = default;
  // Stable name used in logs and spool paths, e.g. "s3".
  virtual const std::string& name() const = 0;
  // Stores `file`; success means it is durably stored at the destination.
  virtual Status Put(const ResultFile& file) = 0;
};

// What notifiers are told. `body` is the identification response itself.
struct Notification {
  std::string event_type;       // "identification.started", "identification.ended", "stream.summary"
  std::string idempotency_key;  // the same for every retry of one notification: "{stream_id}/{file}"
  std::string stream_id;
  std::string channel_id;       // may be empty
  std::string subject;          // one human line, e.g. "earshot: 'Battle Theme' (block) in stream st-1"
  std::string body;             // JSON text
};

class Notifier {
 public:
  virtual ~Notifier() = default;
  virtual const std::string& name() const = 0;  // e.g. "webhook", "email"
  // Delivers one notification; success means the receiver accepted it
  // (2xx for a webhook, 250 after DATA for email).
  virtual Status Notify(const Notification& notification) = 0;
};

}  // namespace earshot::delivery
