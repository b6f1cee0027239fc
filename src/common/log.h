// Structured logs: one JSON object per line on standard error, e.g.
//   {"ts":"2026-11-21T10:15:00.250Z","level":"warn","msg":"reconnecting",
//    "stream_id":"st-1","attempt":2,"error":"unavailable: ..."}
// Every line about a stream or job carries its id as a field (pass it
// explicitly; there is no global context). Never log a secret: stream keys,
// API keys and passwords are not fields, URLs go through a redaction first.
//
// Thread safety: all functions may be called from any thread; lines are
// written whole (one write per line).
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

namespace earshot {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

// Lines below `level` are dropped (default kInfo).
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// "debug", "info", "warn", "error"; false for anything else.
bool ParseLogLevel(std::string_view name, LogLevel* level);

// `fields` must be a JSON object (or null); its members follow ts/level/msg.
void Log(LogLevel level, std::string_view message, const nlohmann::json& fields = nullptr);

}  // namespace earshot
