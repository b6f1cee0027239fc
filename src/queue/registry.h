// Job queue backends by URL scheme, opened at run time (one binary, the
// backend chosen by configuration).
//
// Built in:
//   sqlite:PATH          a SQLite file (created with its folders if missing);
//                        sqlite:///abs/path.db is accepted too
//   sqlite::memory:      a private in-memory queue (tests; one per object)
// Reserved: "nats" (JetStream, a later issue) is refused with kUnsupported.
//
// Thread safety: RegisterJobQueueScheme must happen before concurrent
// OpenJobQueue calls (during start-up); OpenJobQueue may then be called from
// any thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "queue/job_queue.h"

namespace earshot::queue {

// Opens a queue from the part of the URL after "scheme:".
using JobQueueFactory =
    std::function<Result<std::unique_ptr<JobQueue>>(std::string_view rest, const QueueOptions&)>;

// Adds (or replaces) the backend for `scheme` (lower case, no colon).
void RegisterJobQueueScheme(const std::string& scheme, JobQueueFactory factory);

// The registered schemes, sorted.
std::vector<std::string> JobQueueSchemes();

// Opens the queue at `url` ("scheme:rest"). kInvalidArgument for a URL
// without a scheme or with an unknown one (the message lists the known
// schemes), kUnsupported for a reserved one; otherwise whatever the backend
// reports.
Result<std::unique_ptr<JobQueue>> OpenJobQueue(std::string_view url, const QueueOptions& options);

}  // namespace earshot::queue
