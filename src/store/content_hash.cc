#include "store/content_hash.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <system_error>
#include <vector>

namespace earshot::store {
namespace {

// Read size per fread; large enough to amortise the call, small enough to
// keep memory flat.
constexpr size_t kChunkBytes = 1 << 16;

struct DigestContextFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
struct FileClose {
  void operator()(std::FILE* file) const { std::fclose(file); }
};
using DigestContext = std::unique_ptr<EVP_MD_CTX, DigestContextFree>;

// The most recent OpenSSL error of this thread, for messages.
std::string OpenSslError(std::string_view what) {
  std::string message = "OpenSSL ";
  message.append(what);
  unsigned long code = ERR_get_error();
  if (code != 0) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    message.append(": ").append(buffer);
  }
  ERR_clear_error();
  return message;
}

std::string ToHex(const unsigned char* digest, unsigned int size) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(size * 2);
  for (unsigned int i = 0; i < size; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0xf]);
  }
  return hex;
}

Result<DigestContext> StartSha256() {
  DigestContext ctx(EVP_MD_CTX_new());
  if (ctx == nullptr) return MakeError(ErrorCode::kInternal, OpenSslError("EVP_MD_CTX_new"));
  if (EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return MakeError(ErrorCode::kInternal, OpenSslError("EVP_DigestInit_ex(sha256)"));
  }
  return ctx;
}

Result<std::string> FinishSha256(EVP_MD_CTX* ctx) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_DigestFinal_ex(ctx, digest, &size) != 1) {
    return MakeError(ErrorCode::kInternal, OpenSslError("EVP_DigestFinal_ex"));
  }
  return ToHex(digest, size);
}

}  // namespace

Result<std::string> Sha256File(const std::filesystem::path& path) {
  const std::string context = "hashing " + path.string();
  errno = 0;
  std::unique_ptr<std::FILE, FileClose> file(std::fopen(path.c_str(), "rb"));
  if (file == nullptr) {
    const int err = errno;
    return MakeError(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIoError,
                     context + ": cannot open: " + std::generic_category().message(err));
  }
  auto ctx = StartSha256();
  if (!ctx) return std::unexpected(ctx.error().Wrap(context));
  std::vector<unsigned char> buffer(kChunkBytes);
  while (true) {
    const size_t n = std::fread(buffer.data(), 1, buffer.size(), file.get());
    if (n > 0 && EVP_DigestUpdate(ctx->get(), buffer.data(), n) != 1) {
      return MakeError(ErrorCode::kInternal, context + ": " + OpenSslError("EVP_DigestUpdate"));
    }
    if (n < buffer.size()) {
      if (std::ferror(file.get())) {
        const int err = errno;
        return MakeError(ErrorCode::kIoError,
                         context + ": read failed: " + std::generic_category().message(err));
      }
      break;  // end of file
    }
  }
  auto hex = FinishSha256(ctx->get());
  if (!hex) return std::unexpected(hex.error().Wrap(context));
  return hex;
}

Result<std::string> Sha256Bytes(std::string_view bytes) {
  auto ctx = StartSha256();
  if (!ctx) return std::unexpected(ctx.error());
  if (!bytes.empty() && EVP_DigestUpdate(ctx->get(), bytes.data(), bytes.size()) != 1) {
    return MakeError(ErrorCode::kInternal, OpenSslError("EVP_DigestUpdate"));
  }
  return FinishSha256(ctx->get());
}

}  // namespace earshot::store
