// Validators for the names the ingest code puts into nginx configs, control
// URLs and hook answers. Pure; thread-safe.
#pragma once

#include <cstddef>
#include <string_view>

namespace earshot::ingest {

// 1..max_size characters of A-Z a-z 0-9 _ - . (nginx application names,
// user and group names).
bool IsNginxName(std::string_view text, std::size_t max_size);

// An RTMP application name: IsNginxName of at most 128 characters.
bool IsAppName(std::string_view app);

// An nginx-rtmp client id: 1..20 decimal digits (a 64-bit connection number).
bool IsClientId(std::string_view text);

}  // namespace earshot::ingest
