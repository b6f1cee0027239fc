// Content digests of reference files, for duplicate detection in the catalog
// (CatalogEntry::content_sha256). Computed with OpenSSL's EVP API, which stays
// private to this file's implementation.
//
// Thread safety: free functions without shared state; safe from any thread.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "common/error.h"

namespace earshot::store {

// SHA-256 of the file's bytes as 64 lowercase hex digits. Streams the file in
// fixed-size chunks (constant memory). Errors name the file: kNotFound when it
// does not exist, kIoError when it cannot be opened or read (including a
// folder), kInternal when OpenSSL fails.
Result<std::string> Sha256File(const std::filesystem::path& path);

// SHA-256 of in-memory bytes, same format as Sha256File.
Result<std::string> Sha256Bytes(std::string_view bytes);

}  // namespace earshot::store
