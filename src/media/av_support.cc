#include "media/av_support.h"

#include <array>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "media/av_compat.h"

namespace earshot::media {
namespace {

constexpr size_t kLogMessageCapacity = 512;

// Last error-level libav message on this thread; fixed-size so that the log
// hook never allocates or throws (it is called from C code).
thread_local std::array<char, kLogMessageCapacity> t_last_log_message{};

void LogHook(void* av_class_object, int level, const char* format, va_list args) {
  if (level > AV_LOG_ERROR) return;
  std::array<char, kLogMessageCapacity> text{};
  va_list copy;
  va_copy(copy, args);
  std::vsnprintf(text.data(), text.size(), format, copy);
  va_end(copy);
  size_t length = std::strlen(text.data());
  while (length > 0 && (text[length - 1] == '\n' || text[length - 1] == ' ')) text[--length] = '\0';
  if (length == 0) return;  // continuation of a message split over several calls

  // Prefix with the name of the component that logged, e.g. "flac: ".
  const char* component = nullptr;
  if (av_class_object != nullptr) {
    const AVClass* av_class = *static_cast<const AVClass* const*>(av_class_object);
    if (av_class != nullptr && av_class->item_name != nullptr) {
      component = av_class->item_name(av_class_object);
    }
  }
  if (component != nullptr && component[0] != '\0') {
    std::snprintf(t_last_log_message.data(), t_last_log_message.size(), "%s: %s", component,
                  text.data());
  } else {
    std::snprintf(t_last_log_message.data(), t_last_log_message.size(), "%s", text.data());
  }
}

}  // namespace

void InitLibav() {
  static const bool kInitialised = [] {
    av_log_set_level(AV_LOG_ERROR);
    av_log_set_callback(&LogHook);
    avformat_network_init();
    return true;
  }();
  (void)kInitialised;
}

std::string AvErrorText(int av_error) {
  std::array<char, AV_ERROR_MAX_STRING_SIZE> text{};
  if (av_strerror(av_error, text.data(), text.size()) < 0) {
    return "libav error " + std::to_string(av_error);
  }
  return std::string(text.data());
}

std::string TakeLibavLogMessage() {
  std::string message(t_last_log_message.data());
  t_last_log_message[0] = '\0';
  return message;
}

std::string DescribeAvError(int av_error) {
  std::string text = AvErrorText(av_error);
  std::string log = TakeLibavLogMessage();
  if (!log.empty() && log.find(text) == std::string::npos) text += "; " + log;
  return text;
}

}  // namespace earshot::media
