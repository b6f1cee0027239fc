// Process-wide libav* setup and error text helpers. Internal to src/media.
//
// Thread safety: every function here may be called from any thread.
#pragma once

#include <string>

namespace earshot::media {

// Initialises libav* for earshot, once per process (later calls are no-ops;
// concurrent first calls are safe): initialises networking and replaces
// libav's stderr logging with a silent hook that only remembers, per thread,
// the last message at AV_LOG_ERROR or worse (see TakeLibavLogMessage). Call
// before any other libav function.
void InitLibav();

// Text for a negative AVERROR code, e.g. "No such file or directory".
std::string AvErrorText(int av_error);

// The last error message libav logged on the calling thread since the previous
// call (e.g. "flac: invalid residual"), or "" if none; clears it. Messages
// logged by libav's internal worker threads are not seen.
std::string TakeLibavLogMessage();

// AvErrorText(av_error), followed by "; <last libav log message>" when there
// is one that adds information. Consumes the log message.
std::string DescribeAvError(int av_error);

}  // namespace earshot::media
