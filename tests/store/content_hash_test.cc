#include "store/content_hash.h"

#include <gtest/gtest.h>

#include <string>

#include "temp_dir.h"

namespace earshot::store {
namespace {

using testing::TempDir;
using testing::WriteFile;

// FIPS 180-2 test vectors.
constexpr const char* kSha256Abc =
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr const char* kSha256Empty =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr const char* kSha256MillionA =
    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";

TEST(ContentHashTest, KnownDigestOfAbc) {
  TempDir dir;
  WriteFile(dir / "abc.bin", "abc");
  auto digest = Sha256File(dir / "abc.bin");
  ASSERT_TRUE(digest) << digest.error().ToString();
  EXPECT_EQ(*digest, kSha256Abc);
  EXPECT_EQ(Sha256Bytes("abc").value(), kSha256Abc);
}

TEST(ContentHashTest, EmptyFile) {
  TempDir dir;
  WriteFile(dir / "empty.bin", "");
  EXPECT_EQ(Sha256File(dir / "empty.bin").value(), kSha256Empty);
  EXPECT_EQ(Sha256Bytes("").value(), kSha256Empty);
}

TEST(ContentHashTest, FileLargerThanOneChunkIsStreamedWhole) {
  TempDir dir;
  WriteFile(dir / "a.bin", std::string(1'000'000, 'a'));
  EXPECT_EQ(Sha256File(dir / "a.bin").value(), kSha256MillionA);
}

TEST(ContentHashTest, MissingFileIsNotFoundNamingIt) {
  TempDir dir;
  auto digest = Sha256File(dir / "nope.wav");
  ASSERT_FALSE(digest);
  EXPECT_EQ(digest.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(digest.error().message().find((dir / "nope.wav").string()), std::string::npos)
      << digest.error().message();
}

TEST(ContentHashTest, FolderIsIoErrorNamingIt) {
  TempDir dir;
  auto digest = Sha256File(dir.path());
  ASSERT_FALSE(digest);
  EXPECT_EQ(digest.error().code(), ErrorCode::kIoError);
  EXPECT_NE(digest.error().message().find(dir.path().string()), std::string::npos);
}

}  // namespace
}  // namespace earshot::store
