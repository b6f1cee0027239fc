// Form bodies of nginx-rtmp hooks: decoding, first occurrence wins, limits.
#include "ingest/hook_form.h"

#include <gtest/gtest.h>

#include <string>

namespace earshot::ingest {
namespace {

// What nginx-rtmp 1.2.2 POSTs for on_publish, followed by a publisher's own
// URL query (rtmp://host/ingest/KEY?name=other&app=evil&call=play&sig=xyz).
constexpr std::string_view kPublishWithInjection =
    "app=ingest&flashver=FMLE/3.0%20(compatible%3B%20FMSc/1.0)&swfurl=&"
    "tcurl=rtmp://127.0.0.1:1935/ingest&pageurl=&addr=203.0.113.7&clientid=12&"
    "call=publish&name=sk_live_abcdef123456&type=live&"
    "name=other&app=evil&call=play&sig=xyz";

TEST(HookFormTest, FirstOccurrenceOfEachFieldWins) {
  auto form = ParseFormBody(kPublishWithInjection);
  ASSERT_TRUE(form) << form.error().ToString();
  EXPECT_EQ(form->Get("name"), "sk_live_abcdef123456");
  EXPECT_EQ(form->Get("app"), "ingest");
  EXPECT_EQ(form->Get("call"), "publish");
  EXPECT_EQ(form->Get("sig"), "xyz");  // a new field from the publisher is kept
  EXPECT_EQ(form->duplicates_dropped(), 3u);
  // Each name once, in body order.
  ASSERT_EQ(form->size(), 11u);
  EXPECT_EQ(form->fields().front().name, "app");
  EXPECT_EQ(form->fields().back().name, "sig");
  for (std::size_t i = 0; i < form->size(); ++i) {
    for (std::size_t j = i + 1; j < form->size(); ++j) {
      EXPECT_NE(form->fields()[i].name, form->fields()[j].name);
    }
  }
}

TEST(HookFormTest, InjectedNameRightAfterNginxsDoesNotWin) {
  auto form = ParseFormBody("call=publish&name=realkey&name=other&name=third");
  ASSERT_TRUE(form) << form.error().ToString();
  EXPECT_EQ(form->Get("name"), "realkey");
  EXPECT_EQ(form->duplicates_dropped(), 2u);
}

TEST(HookFormTest, DecodesPercentEscapesAndPlus) {
  auto form = ParseFormBody(
      "flashver=FMLE/3.0%20(compatible%3b%20x)&a+b=c+d&pct=100%25&slash=%2Fx%2f&"
      "utf8=caf%C3%A9&plain=abc");
  ASSERT_TRUE(form) << form.error().ToString();
  EXPECT_EQ(form->Get("flashver"), "FMLE/3.0 (compatible; x)");
  EXPECT_EQ(form->Get("a b"), "c d");
  EXPECT_EQ(form->Get("pct"), "100%");
  EXPECT_EQ(form->Get("slash"), "/x/");
  EXPECT_EQ(form->Get("utf8"), "caf\xC3\xA9");
  EXPECT_EQ(form->Get("plain"), "abc");
}

TEST(HookFormTest, EncodedSeparatorsStayInsideTheValue) {
  // A key containing '&' and '=' (escaped by nginx) must not split fields.
  auto form = ParseFormBody("name=a%26name%3Dother&call=publish");
  ASSERT_TRUE(form) << form.error().ToString();
  EXPECT_EQ(form->Get("name"), "a&name=other");
  EXPECT_EQ(form->size(), 2u);
}

TEST(HookFormTest, EmptyValuesMissingEqualsAndEmptyFields) {
  auto form = ParseFormBody("&swfurl=&flag&&=skipped&pageurl=&");
  ASSERT_TRUE(form) << form.error().ToString();
  EXPECT_EQ(form->size(), 3u);
  ASSERT_NE(form->Find("swfurl"), nullptr);
  EXPECT_EQ(*form->Find("swfurl"), "");
  ASSERT_NE(form->Find("flag"), nullptr);
  EXPECT_EQ(*form->Find("flag"), "");
  EXPECT_TRUE(form->Has("pageurl"));
  EXPECT_FALSE(form->Has(""));
  EXPECT_FALSE(form->Has("missing"));
  EXPECT_EQ(form->Get("missing"), "");

  auto empty = ParseFormBody("");
  ASSERT_TRUE(empty) << empty.error().ToString();
  EXPECT_EQ(empty->size(), 0u);
}

TEST(HookFormTest, NamesAreCaseSensitive) {
  auto form = ParseFormBody("name=key&Name=other");
  ASSERT_TRUE(form) << form.error().ToString();
  EXPECT_EQ(form->Get("name"), "key");
  EXPECT_EQ(form->Get("Name"), "other");
  EXPECT_EQ(form->duplicates_dropped(), 0u);
}

TEST(HookFormTest, MalformedEscapesAreRejectedWithoutQuotingTheValue) {
  for (std::string_view body : {"name=sk_secret_value%", "name=sk_secret_value%4",
                                "name=sk_secret_value%G1", "name=sk_secret_value%%41",
                                "name=sk_secret_value%4Z&call=publish"}) {
    auto form = ParseFormBody(body);
    ASSERT_FALSE(form) << body;
    EXPECT_EQ(form.error().code(), ErrorCode::kInvalidArgument) << body;
    const std::string message = form.error().message();
    EXPECT_NE(message.find("percent-escape"), std::string::npos) << message;
    EXPECT_NE(message.find("'name'"), std::string::npos) << message;
    EXPECT_EQ(message.find("sk_secret_value"), std::string::npos) << message;
  }
  auto in_name = ParseFormBody("na%zme=x");
  ASSERT_FALSE(in_name);
  EXPECT_EQ(in_name.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(in_name.error().message().find("field name"), std::string::npos);
}

TEST(HookFormTest, NulBytesAndInvalidUtf8AreRejected) {
  auto nul = ParseFormBody("name=abc%00def");
  ASSERT_FALSE(nul);
  EXPECT_EQ(nul.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(nul.error().message().find("NUL"), std::string::npos) << nul.error().message();

  for (std::string_view body : {"name=%FF", "name=%C3", "name=%C0%AF" /* overlong '/' */,
                                "name=%ED%A0%80" /* surrogate */, "name=%F4%90%80%80"}) {
    auto form = ParseFormBody(body);
    ASSERT_FALSE(form) << body;
    EXPECT_EQ(form.error().code(), ErrorCode::kInvalidArgument) << body;
    EXPECT_NE(form.error().message().find("UTF-8"), std::string::npos) << form.error().message();
  }
  auto four_bytes = ParseFormBody("emoji=%F0%9F%8E%B5");
  ASSERT_TRUE(four_bytes) << four_bytes.error().ToString();
  EXPECT_EQ(four_bytes->Get("emoji"), "\xF0\x9F\x8E\xB5");
}

TEST(HookFormTest, BodySizeLimit) {
  std::string body = "name=" + std::string(kMaxFormBodyBytes - 5, 'k');
  ASSERT_EQ(body.size(), kMaxFormBodyBytes);
  auto at_limit = ParseFormBody(body);
  ASSERT_TRUE(at_limit) << at_limit.error().ToString();
  EXPECT_EQ(at_limit->Get("name").size(), kMaxFormBodyBytes - 5);

  body += 'k';
  auto over = ParseFormBody(body);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(over.error().message().find("16384"), std::string::npos) << over.error().message();
}

TEST(HookFormTest, FieldCountLimitCountsDuplicatesToo) {
  std::string body;
  for (std::size_t i = 0; i < kMaxFormFields; ++i) body += "f" + std::to_string(i) + "=1&";
  auto at_limit = ParseFormBody(body);
  ASSERT_TRUE(at_limit) << at_limit.error().ToString();
  EXPECT_EQ(at_limit->size(), kMaxFormFields);

  auto over = ParseFormBody(body + "one=more");
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(over.error().message().find("100 fields"), std::string::npos)
      << over.error().message();

  std::string duplicates;
  for (std::size_t i = 0; i <= kMaxFormFields; ++i) duplicates += "name=x&";
  auto dup = ParseFormBody(duplicates);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), ErrorCode::kInvalidArgument);
}

TEST(HookFormTest, CustomLimits) {
  FormLimits limits;
  limits.max_body_bytes = 10;
  limits.max_fields = 2;
  EXPECT_TRUE(ParseFormBody("a=1&b=2", limits));
  EXPECT_FALSE(ParseFormBody("a=1&b=2&c=3", limits));
  EXPECT_FALSE(ParseFormBody("a=123456789", limits));
}

TEST(HookFormTest, PercentEncodeRoundTripsThroughFormDecode) {
  const std::string text = "sk live/key?&=+%#\xC3\xA9~._-";
  const std::string encoded = PercentEncode(text);
  EXPECT_EQ(encoded, "sk%20live%2Fkey%3F%26%3D%2B%25%23%C3%A9~._-");
  auto decoded = FormDecode(encoded);
  ASSERT_TRUE(decoded) << decoded.error().ToString();
  EXPECT_EQ(*decoded, text);
}

}  // namespace
}  // namespace earshot::ingest
