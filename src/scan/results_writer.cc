#include "scan/results_writer.h"

#include <charconv>
#include <system_error>

#include "common/file_util.h"

namespace earshot::scan {

namespace fs = std::filesystem;

Result<std::unique_ptr<ResultsWriter>> ResultsWriter::Open(const fs::path& results_dir,
                                                           const ScanIdentity& scan,
                                                           delivery::Outbox* outbox) {
  if (Status s = ValidateStreamId(scan.stream_id); !s) return std::unexpected(s.error());
  const fs::path folder = results_dir / scan.stream_id;
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) {
    return MakeError(ErrorCode::kIoError,
                     "cannot create the results folder " + folder.string() + ": " + ec.message());
  }
  // Continue numbering after the files already there ("000042-...json").
  uint64_t next = 1;
  for (auto it = fs::directory_iterator(folder, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    uint64_t seq = 0;
    auto [end, err] = std::from_chars(name.data(), name.data() + name.size(), seq);
    if (err == std::errc() && end != name.data() && *end == '-') next = std::max(next, seq + 1);
  }
  if (ec) {
    return MakeError(ErrorCode::kIoError,
                     "cannot list the results folder " + folder.string() + ": " + ec.message());
  }
  return std::unique_ptr<ResultsWriter>(new ResultsWriter(folder, scan, outbox, next));
}

Status ResultsWriter::Write(const std::string& file_name, const nlohmann::json& document,
                            const std::string& event_type, const std::string& subject) {
  queue_.push_back({file_name, document.dump(2) + "\n", event_type, subject, true});
  return Flush();
}

Status ResultsWriter::WriteBytes(const std::string& file_name, std::string bytes,
                                 const std::string& event_type, const std::string& subject,
                                 bool notify) {
  queue_.push_back({file_name, std::move(bytes), event_type, subject, notify});
  return Flush();
}

Status ResultsWriter::Flush() {
  while (!queue_.empty()) {
    const Pending& p = queue_.front();
    if (Status s = WriteFileAtomically(folder_ / p.file_name, p.text); !s) {
      return std::unexpected(s.error().Wrap("writing result " + scan_.stream_id + "/" +
                                            p.file_name + " (kept in memory, will retry)"));
    }
    if (outbox_ != nullptr) {
      // Spooling is idempotent: after a failure the next Flush rewrites the
      // same bytes and spools again.
      delivery::EnqueueItem item{scan_.stream_id, scan_.channel_id, p.file_name, p.event_type,
                                 p.subject, p.notify};
      if (Status s = outbox_->Enqueue(item); !s) return s;
    }
    ++files_written_;
    queue_.pop_front();
  }
  return Ok();
}

}  // namespace earshot::scan
