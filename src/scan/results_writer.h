// Writes one stream's identification responses and summary into
// RESULTS/{stream_id}/ and hands each written file to the outbox.
//
// Every file is written atomically (temp file, fsync, rename, fsync of the
// folder) before anyone is told about it. File names carry a sequence
// number that continues after files already in the folder (a second scan of
// the same stream never overwrites the first one's responses).
//
// A write that fails (a full disk) keeps the document in memory and
// Flush() retries it; documents are never dropped while the writer lives.
//
// Thread safety: one thread at a time (the session that owns it).
#pragma once

#include <cstdint>
#include <deque>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "delivery/outbox.h"
#include "scan/identification.h"

namespace earshot::scan {

class ResultsWriter {
 public:
  // Creates RESULTS/{stream_id}/ if needed. `outbox` may be null (local
  // folder only); it is borrowed and must outlive the writer.
  static Result<std::unique_ptr<ResultsWriter>> Open(const std::filesystem::path& results_dir,
                                                     const ScanIdentity& scan,
                                                     delivery::Outbox* outbox);

  // The next sequence number a response gets.
  uint64_t next_sequence() const { return next_sequence_; }
  uint64_t TakeSequence() { return next_sequence_++; }

  // Queues `document` as `file_name` and writes everything queued, in order.
  // On error the document stays queued (see Flush).
  Status Write(const std::string& file_name, const nlohmann::json& document,
               const std::string& event_type, const std::string& subject);
  // Queues raw bytes (a JPEG thumbnail) as `file_name`, like Write. With
  // notify = false only result sinks (S3) get it, not webhooks or email.
  Status WriteBytes(const std::string& file_name, std::string bytes, const std::string& event_type,
                    const std::string& subject, bool notify);
  // Retries queued documents; kResourceExhausted / kIoError while the disk refuses.
  Status Flush();
  size_t queued() const { return queue_.size(); }
  const std::filesystem::path& folder() const { return folder_; }
  uint64_t files_written() const { return files_written_; }

 private:
  struct Pending {
    std::string file_name;
    std::string text;
    std::string event_type;
    std::string subject;
    bool notify = true;
  };
  ResultsWriter(std::filesystem::path folder, ScanIdentity scan, delivery::Outbox* outbox,
                uint64_t next_sequence)
      : folder_(std::move(folder)), scan_(std::move(scan)), outbox_(outbox),
        next_sequence_(next_sequence) {}

  std::filesystem::path folder_;
  ScanIdentity scan_;
  delivery::Outbox* outbox_;
  uint64_t next_sequence_;
  std::deque<Pending> queue_;
  uint64_t files_written_ = 0;
};

}  // namespace earshot::scan
