// Errors as values at every boundary of earshot.
//
// A fallible function returns Result<T> (std::expected<T, Error>) or Status
// (std::expected<void, Error>). An Error carries a stable code from the table
// below (callers branch on the code; the HTTP layer maps codes to statuses)
// and a message written for the person who has to act on it: it names the
// file, track or stream concerned and says what is wrong. Wrap() prepends
// context as the error travels up ("catalog add: decoding a.ogg: ...").
//
// Thread safety: Error is a plain value type.
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace earshot {

enum class ErrorCode {
  kInvalidArgument,    // the caller passed something malformed (bad flag, bad manifest line)
  kNotFound,           // a file, track, stream or key that does not exist
  kAlreadyExists,      // creating something that is already there
  kCorruptData,        // bytes that do not parse: damaged index, truncated media
  kUnsupported,        // valid input we cannot handle (no audio stream, unknown codec)
  kVersionMismatch,    // data written by another algorithm or format version
  kFailedPrecondition, // the system is not in a state that allows the call (empty catalog)
  kIoError,            // the operating system refused a read, write, open or sync
  kUnavailable,        // a server or network peer is down; retrying later may work
  kResourceExhausted,  // disk full, too many items, quota
  kCancelled,          // stopped on request (SIGTERM, a stop call) before it finished
  kInternal,           // a bug in earshot: please report it
};

// Stable snake_case name of a code, e.g. "corrupt_data".
std::string_view ErrorCodeName(ErrorCode code);

class Error {
 public:
  Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns this error with `context` prepended: "context: message".
  Error Wrap(std::string_view context) const&;
  Error Wrap(std::string_view context) &&;

  // "corrupt_data: message", for logs and CLI output.
  std::string ToString() const;

 private:
  ErrorCode code_;
  std::string message_;
};

template <class T>
using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

// Shorthand for `return MakeError(ErrorCode::kNotFound, "...")` from a function
// returning Result<T> or Status.
inline std::unexpected<Error> MakeError(ErrorCode code, std::string message) {
  return std::unexpected<Error>(Error(code, std::move(message)));
}

// The success value of a Status-returning function.
inline Status Ok() { return {}; }

}  // namespace earshot
