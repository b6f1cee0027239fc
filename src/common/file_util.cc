#include "common/file_util.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

namespace earshot {
namespace {

constexpr size_t kWriteBuffer = size_t{1} << 20;

Status WriteAll(int fd, const uint8_t* data, size_t size, const std::filesystem::path& path) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::unexpected(PosixError("write", path, errno));
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return Ok();
}

}  // namespace

Error PosixError(std::string_view what, const std::filesystem::path& path, int err) {
  ErrorCode code = ErrorCode::kIoError;
  if (err == ENOENT) code = ErrorCode::kNotFound;
  if (err == ENOSPC || err == EDQUOT) code = ErrorCode::kResourceExhausted;
  if (err == EEXIST) code = ErrorCode::kAlreadyExists;
  std::string message(what);
  message.append(" ").append(path.string()).append(": ").append(std::strerror(err));
  return Error(code, std::move(message));
}

Result<std::unique_ptr<FileWriter>> FileWriter::Create(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return std::unexpected(PosixError("create", path, errno));
  return std::unique_ptr<FileWriter>(new FileWriter(path, fd));
}

FileWriter::~FileWriter() {
  if (fd_ >= 0) ::close(fd_);
}

Status FileWriter::Append(std::span<const uint8_t> bytes) {
  if (fd_ < 0) return MakeError(ErrorCode::kInternal, "append to closed file " + path_.string());
  size_ += bytes.size();
  if (buffer_.size() + bytes.size() > kWriteBuffer) {
    if (Status s = FlushBuffer(); !s) return s;
  }
  if (bytes.size() >= kWriteBuffer) return WriteAll(fd_, bytes.data(), bytes.size(), path_);
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
  return Ok();
}

Status FileWriter::FlushBuffer() {
  if (buffer_.empty()) return Ok();
  Status s = WriteAll(fd_, buffer_.data(), buffer_.size(), path_);
  buffer_.clear();
  return s;
}

Status FileWriter::Sync() {
  if (Status s = FlushBuffer(); !s) return s;
  if (::fdatasync(fd_) != 0) return std::unexpected(PosixError("fsync", path_, errno));
  return Ok();
}

Status FileWriter::Close() {
  Status s = FlushBuffer();
  if (fd_ >= 0 && ::close(fd_) != 0 && s) s = std::unexpected(PosixError("close", path_, errno));
  fd_ = -1;
  return s;
}

Status SyncDirectory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return std::unexpected(PosixError("open directory", dir, errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return std::unexpected(PosixError("fsync directory", dir, err));
  return Ok();
}

Status WriteFileAtomically(const std::filesystem::path& path, std::string_view data,
                           bool* renamed) {
  if (renamed != nullptr) *renamed = false;
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  ::unlink(tmp.c_str());  // a leftover of a crash
  Result<std::unique_ptr<FileWriter>> writer = FileWriter::Create(tmp);
  if (!writer) return std::unexpected(writer.error());
  Status s =
      (*writer)->Append(std::span(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
  if (s) s = (*writer)->Sync();
  if (s) s = (*writer)->Close();
  if (s && ::rename(tmp.c_str(), path.c_str()) != 0) {
    s = std::unexpected(PosixError("rename to " + path.string(), tmp, errno));
  }
  if (!s) {
    ::unlink(tmp.c_str());
    return s;
  }
  if (renamed != nullptr) *renamed = true;
  return SyncDirectory(path.parent_path().empty() ? std::filesystem::path(".")
                                                  : path.parent_path());
}

Result<std::string> ReadFile(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::unexpected(PosixError("open", path, errno));
  std::string out;
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return std::unexpected(PosixError("read", path, err));
    }
    if (n == 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Result<std::unique_ptr<LockFile>> LockFile::Acquire(const std::filesystem::path& path,
                                                    std::chrono::milliseconds timeout) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return std::unexpected(PosixError("open lock file", path, errno));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return std::unique_ptr<LockFile>(new LockFile(fd));
    const int err = errno;
    if (err == EINTR) continue;
    if (err != EWOULDBLOCK) {
      ::close(fd);
      return std::unexpected(PosixError("lock", path, err));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ::close(fd);
      return MakeError(ErrorCode::kUnavailable,
                       "locked by another process (" + path.string() + " is held)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

LockFile::~LockFile() { ::close(fd_); }  // closing the file releases the flock

Result<std::unique_ptr<MappedFile>> MappedFile::Open(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::unexpected(PosixError("open", path, errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return std::unexpected(PosixError("stat", path, err));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    return std::unique_ptr<MappedFile>(new MappedFile(nullptr, 0));
  }
  void* data = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  const int err = errno;
  ::close(fd);  // the mapping keeps the file open
  if (data == MAP_FAILED) return std::unexpected(PosixError("mmap", path, err));
  return std::unique_ptr<MappedFile>(new MappedFile(static_cast<const uint8_t*>(data), size));
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace earshot
