#include "common/error.h"

namespace earshot {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return "invalid_argument";
    case ErrorCode::kNotFound: return "not_found";
    case ErrorCode::kAlreadyExists: return "already_exists";
    case ErrorCode::kCorruptData: return "corrupt_data";
    case ErrorCode::kUnsupported: return "unsupported";
    case ErrorCode::kVersionMismatch: return "version_mismatch";
    case ErrorCode::kFailedPrecondition: return "failed_precondition";
    case ErrorCode::kIoError: return "io_error";
    case ErrorCode::kUnavailable: return "unavailable";
    case ErrorCode::kResourceExhausted: return "resource_exhausted";
    case ErrorCode::kCancelled: return "cancelled";
    case ErrorCode::kInternal: return "internal";
  }
  return "unknown";
}

Error Error::Wrap(std::string_view context) const& {
  Error copy = *this;
  return std::move(copy).Wrap(context);
}

Error Error::Wrap(std::string_view context) && {
  std::string wrapped;
  wrapped.reserve(context.size() + 2 + message_.size());
  wrapped.append(context).append(": ").append(message_);
  message_ = std::move(wrapped);
  return std::move(*this);
}

std::string Error::ToString() const {
  std::string out(ErrorCodeName(code_));
  out.append(": ").append(message_);
  return out;
}

}  // namespace earshot
