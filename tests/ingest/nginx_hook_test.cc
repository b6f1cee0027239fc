// Typed nginx-rtmp notifications and the answers they get.
#include "ingest/nginx_hook.h"

#include <gtest/gtest.h>

#include <string>

#include "ingest/hook_form.h"

namespace earshot::ingest {
namespace {

Result<NginxHook> Hook(std::string_view body) {
  auto form = ParseFormBody(body);
  if (!form) return std::unexpected(form.error());
  return NginxHook::FromForm(*form);
}

TEST(NginxHookTest, TypesAPublishWithThePublishersQueryInArgs) {
  auto hook = Hook(
      "app=ingest&flashver=FMLE/3.0&swfurl=http://s/x.swf&tcurl=rtmp://127.0.0.1:1935/ingest&"
      "pageurl=http://p/&addr=203.0.113.7&clientid=12&call=publish&name=sk_live_abcdef123456&"
      "type=live&name=other&call=play&app=evil&sig=xyz");
  ASSERT_TRUE(hook) << hook.error().ToString();
  EXPECT_EQ(hook->call, HookCall::kPublish);
  EXPECT_EQ(hook->app, "ingest");
  EXPECT_EQ(hook->name, "sk_live_abcdef123456");
  EXPECT_EQ(hook->addr, "203.0.113.7");
  EXPECT_EQ(hook->clientid, "12");
  EXPECT_EQ(hook->tcurl, "rtmp://127.0.0.1:1935/ingest");
  EXPECT_EQ(hook->swfurl, "http://s/x.swf");
  EXPECT_EQ(hook->pageurl, "http://p/");
  EXPECT_EQ(hook->type, "live");
  // Everything else, in order; the injected duplicates are gone.
  ASSERT_EQ(hook->args.size(), 2u);
  EXPECT_EQ(hook->args[0].name, "flashver");
  EXPECT_EQ(hook->args[1].name, "sig");
  EXPECT_EQ(hook->Arg("sig"), "xyz");
  EXPECT_EQ(hook->Arg("flashver"), "FMLE/3.0");
  EXPECT_EQ(hook->Arg("name"), "");
  EXPECT_EQ(hook->Arg("absent"), "");
}

TEST(NginxHookTest, UpdateAndPlayCarryTheirExtraFieldsInArgs) {
  auto update = Hook(
      "app=ingest&flashver=&swfurl=&tcurl=&pageurl=&addr=127.0.0.1&clientid=3&"
      "call=update_publish&time=30&timestamp=29876&name=key");
  ASSERT_TRUE(update) << update.error().ToString();
  EXPECT_EQ(update->call, HookCall::kUpdatePublish);
  EXPECT_EQ(update->Arg("time"), "30");
  EXPECT_EQ(update->Arg("timestamp"), "29876");

  auto play = Hook("app=hls&addr=127.0.0.1&clientid=9&call=play&name=ch-1&start=-2&duration=-1&"
                   "reset=0");
  ASSERT_TRUE(play) << play.error().ToString();
  EXPECT_EQ(play->call, HookCall::kPlay);
  EXPECT_EQ(play->name, "ch-1");
  EXPECT_EQ(play->Arg("start"), "-2");
  EXPECT_EQ(play->Arg("reset"), "0");
}

TEST(NginxHookTest, EveryCallNginxSendsIsKnown) {
  for (HookCall call : {HookCall::kConnect, HookCall::kDisconnect, HookCall::kPublish,
                        HookCall::kPublishDone, HookCall::kUpdatePublish, HookCall::kPlay,
                        HookCall::kPlayDone, HookCall::kUpdatePlay, HookCall::kDone,
                        HookCall::kRecordDone}) {
    const std::string_view name = HookCallName(call);
    ASSERT_NE(name, "unknown");
    EXPECT_EQ(ParseHookCall(name), call) << name;
    auto hook = Hook("app=ingest&call=" + std::string(name) + "&name=key");
    ASSERT_TRUE(hook) << name << ": " << hook.error().ToString();
    EXPECT_EQ(hook->call, call);
  }
  EXPECT_EQ(HookCallName(HookCall::kPublishDone), "publish_done");
  EXPECT_EQ(HookCallName(HookCall::kUpdatePublish), "update_publish");
  EXPECT_FALSE(ParseHookCall("Publish"));
  EXPECT_FALSE(ParseHookCall(""));
}

TEST(NginxHookTest, RequiredFields) {
  struct Case {
    std::string_view body;
    std::string_view expect_in_message;
  };
  for (const Case& c : {
           Case{"app=ingest&name=key", "'call' is missing"},
           Case{"call=explode&app=ingest&name=key", "unknown call 'explode'"},
           Case{"call=publish&name=key", "'app'"},
           Case{"call=publish&app=&name=key", "'app'"},
           Case{"call=publish&app=ingest", "'name'"},
           Case{"call=publish_done&app=ingest&name=", "'name'"},
           Case{"call=update_publish&app=ingest", "'name'"},
           Case{"call=publish&app=ingest&name=key&clientid=12a", "'clientid'"},
           Case{"call=publish&app=ingest&name=key&clientid=", "'clientid'"},
       }) {
    auto hook = Hook(c.body);
    ASSERT_FALSE(hook) << c.body;
    EXPECT_EQ(hook.error().code(), ErrorCode::kInvalidArgument) << c.body;
    EXPECT_NE(hook.error().message().find(c.expect_in_message), std::string::npos)
        << c.body << " → " << hook.error().message();
  }
  // The message names the call, and lists the known ones for an unknown call.
  auto unknown = Hook("call=explode&app=ingest");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message().find("publish_done"), std::string::npos);
  auto no_name = Hook("call=publish&app=ingest");
  ASSERT_FALSE(no_name);
  EXPECT_NE(no_name.error().message().find("hook 'publish'"), std::string::npos)
      << no_name.error().message();
}

TEST(NginxHookTest, ConnectAndDisconnectNeedNoStreamName) {
  auto connect = Hook("app=ingest&flashver=x&tcurl=rtmp://h/ingest&addr=1.2.3.4&call=connect&"
                      "epoch=123");
  ASSERT_TRUE(connect) << connect.error().ToString();
  EXPECT_EQ(connect->call, HookCall::kConnect);
  EXPECT_EQ(connect->name, "");
  EXPECT_EQ(connect->clientid, "");
  EXPECT_EQ(connect->Arg("epoch"), "123");
  EXPECT_FALSE(HookCallHasStream(HookCall::kDisconnect));
  EXPECT_TRUE(HookCallHasStream(HookCall::kPublishDone));
}

TEST(NginxHookTest, ErrorsAndLogFieldsNeverCarryTheStreamKey) {
  const std::string key = "sk_live_0123456789abcdef";
  for (const std::string& body :
       {"call=publish&app=ingest&clientid=x1&name=" + key, "call=publish&name=" + key,
        "call=publish&app=ingest&name=" + key + "&name=%zz"}) {
    auto bad = Hook(body);
    ASSERT_FALSE(bad) << body;
    EXPECT_EQ(bad.error().message().find(key), std::string::npos) << bad.error().message();
  }

  auto hook = Hook("call=publish&app=ingest&addr=1.2.3.4&clientid=7&name=" + key);
  ASSERT_TRUE(hook) << hook.error().ToString();
  const std::string logged = hook->LogFields().dump();
  EXPECT_EQ(logged.find(key), std::string::npos) << logged;
  EXPECT_EQ(hook->LogFields()["name"], "sk_***");
  EXPECT_EQ(hook->LogFields()["call"], "publish");
  EXPECT_EQ(hook->LogFields()["clientid"], "7");
  EXPECT_EQ(hook->LogFields()["addr"], "1.2.3.4");
}

TEST(NginxHookTest, RedactStreamKey) {
  EXPECT_EQ(RedactStreamKey(""), "");
  EXPECT_EQ(RedactStreamKey("short"), "***");
  EXPECT_EQ(RedactStreamKey("elevenchars"), "***");
  EXPECT_EQ(RedactStreamKey("twelve_chars"), "twe***");
  EXPECT_EQ(RedactStreamKey("sk_live_0123456789abcdef"), "sk_***");
}

TEST(HookAnswerTest, AllowDenyRedirect) {
  const HookAnswer allow = HookAnswer::Allow();
  EXPECT_EQ(allow.status, 200);
  EXPECT_TRUE(allow.allowed());
  EXPECT_FALSE(allow.redirected());
  EXPECT_EQ(allow.location, "");

  const HookAnswer deny = HookAnswer::Deny("unknown stream key");
  EXPECT_EQ(deny.status, 403);
  EXPECT_FALSE(deny.allowed());
  EXPECT_FALSE(deny.redirected());
  EXPECT_EQ(deny.body, "unknown stream key");
  EXPECT_EQ(deny.location, "");

  const HookAnswer redirect = HookAnswer::Redirect("rtmp://127.0.0.1:1935/hls/ch-1");
  EXPECT_EQ(redirect.status, 302);
  EXPECT_TRUE(redirect.redirected());
  EXPECT_FALSE(redirect.allowed());
  EXPECT_EQ(redirect.location, "rtmp://127.0.0.1:1935/hls/ch-1");

  const HookAnswer custom{503, "", "state unavailable"};
  EXPECT_FALSE(custom.allowed());
  EXPECT_EQ(custom.body, "state unavailable");
}

}  // namespace
}  // namespace earshot::ingest
