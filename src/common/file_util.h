// POSIX file helpers (index segments, result files, spools): buffered writes with fsync, atomic
// replacement, directory sync, an advisory lock file and read-only mappings.
// Every failure is an Error naming the file and the OS reason.
//
// Thread safety: the free functions are thread-safe; each object is used by
// one thread at a time unless stated otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace earshot {

// The error for a failed system call `what` on `path` with errno `err`:
// kNotFound for ENOENT, kResourceExhausted for ENOSPC/EDQUOT, else kIoError.
Error PosixError(std::string_view what, const std::filesystem::path& path, int err);

// Writes a new file sequentially through a 1 MiB buffer. The destructor closes
// the file without syncing and leaves it on disk.
class FileWriter {
 public:
  // Creates `path`, which must not exist (kAlreadyExists otherwise).
  static Result<std::unique_ptr<FileWriter>> Create(const std::filesystem::path& path);
  ~FileWriter();
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;

  Status Append(std::span<const uint8_t> bytes);
  // Writes the buffer out and waits until the data is on stable storage.
  Status Sync();
  Status Close();
  uint64_t size() const { return size_; }

 private:
  FileWriter(std::filesystem::path path, int fd) : path_(std::move(path)), fd_(fd) {}
  Status FlushBuffer();

  std::filesystem::path path_;
  int fd_;
  std::vector<uint8_t> buffer_;
  uint64_t size_ = 0;
};

// fsync on a directory, so that renames and unlinks in it are durable.
Status SyncDirectory(const std::filesystem::path& dir);

// Replaces `path` with `data` atomically: writes `path`.tmp, syncs it, renames
// it over `path` and syncs the directory. Readers see the old or the new
// contents, never a mix. On error the old contents are still in place unless
// `*renamed` was set to true: then only the final directory sync failed, the
// new contents are visible, and whether they survive a crash is unknown.
Status WriteFileAtomically(const std::filesystem::path& path, std::string_view data,
                           bool* renamed = nullptr);

// The whole contents of a file.
Result<std::string> ReadFile(const std::filesystem::path& path);

// An exclusive flock(2) on a file, released by the destructor. flock locks
// belong to the open file, so a second LockFile on the same path conflicts
// even within one process.
class LockFile {
 public:
  // Creates `path` if needed and locks it, retrying for up to `timeout`.
  // kUnavailable when another holder keeps it locked.
  static Result<std::unique_ptr<LockFile>> Acquire(const std::filesystem::path& path,
                                                   std::chrono::milliseconds timeout);
  ~LockFile();
  LockFile(const LockFile&) = delete;
  LockFile& operator=(const LockFile&) = delete;

 private:
  explicit LockFile(int fd) : fd_(fd) {}
  int fd_;
};

// A read-only shared mapping of a whole file (empty files map to an empty
// span). The bytes stay valid until the object is destroyed, even if the file
// is unlinked meanwhile. Truncating a mapped file from outside makes later
// reads fault (SIGBUS): index files are never truncated in place.
// Thread safety: bytes() may be read from many threads.
class MappedFile {
 public:
  static Result<std::unique_ptr<MappedFile>> Open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const uint8_t> bytes() const { return {data_, size_}; }

 private:
  MappedFile(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  const uint8_t* data_;
  size_t size_;
};

}  // namespace earshot
