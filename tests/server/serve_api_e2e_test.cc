// End to end, the API beyond the demo path, against the real `earshot serve`
// beside a real nginx-rtmp (fixture: serve_fixture.h): event subscriptions
// (a webhook that fails once, an email over STARTTLS), the live event feed
// (Server-Sent Events), the mute rule and the scan summary's edits, a channel's
// rule override, the catalog over HTTP, the usage report as CSV, and the block
// actions stop_and_reset_key and notify.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "delivery/webhook_signature.h"
#include "server/serve_fixture.h"
#include "support/http_listener.h"
#include "support/smtp_listener.h"
#include "support/test_media.h"

namespace earshot::server {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
namespace support = ::earshot::testing;
using e2e::ApiResponse;
using e2e::Clock;
using e2e::Deployment;
using e2e::EventFeed;

class ServeApiE2eTest : public e2e::ServeE2eTest {};

using EventPredicate = std::function<bool(const nlohmann::json&)>;

EventPredicate Named(const std::string& name, const std::string& channel) {
  return [name, channel](const nlohmann::json& e) {
    return e.value("event_name", "") == name && e.value("channel_id", "") == channel;
  };
}

std::string ReadBinaryFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The fields of one CSV line (RFC 4180 quoting).
std::vector<std::string> CsvFields(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        out.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        out.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The scan summary, once the scan has written it.
std::optional<nlohmann::json> WaitForJsonFile(const fs::path& path,
                                              std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (fs::exists(path)) {
      auto j = nlohmann::json::parse(ReadBinaryFile(path), nullptr, false);
      if (!j.is_discarded()) return j;
    }
    std::this_thread::sleep_for(200ms);
  }
  return std::nullopt;
}

// Waits until no scan job is queued or running: the streams' events are final.
bool WaitForScansToSettle(const Deployment& d, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    ApiResponse jobs = d.Call("GET", "/v1/jobs");
    if (jobs.status == 200 && jobs.body["counts"]["queued"] == 0 &&
        jobs.body["counts"]["leased"] == 0) {
      return true;
    }
    std::this_thread::sleep_for(200ms);
  }
  return false;
}

// The seq numbers of the events GET /v1/events{query} lists.
std::vector<int64_t> EventSeqs(const Deployment& d, const std::string& query) {
  ApiResponse r = d.Call("GET", "/v1/events?limit=1000" + query);
  EXPECT_EQ(r.status, 200) << r.text;
  std::vector<int64_t> out;
  if (r.status != 200) return out;
  for (const auto& e : r.body["events"]) out.push_back(e["seq"].get<int64_t>());
  return out;
}

// A multipart/form-data body of (field name, file name, content type, content).
struct FormPart {
  std::string name;
  std::string filename;
  std::string content_type;
  std::string content;
};

std::string MultipartBody(const std::string& boundary, const std::vector<FormPart>& parts) {
  std::string body;
  for (const FormPart& p : parts) {
    body += "--" + boundary + "\r\n";
    body += "Content-Disposition: form-data; name=\"" + p.name + "\"; filename=\"" + p.filename +
            "\"\r\n";
    body += "Content-Type: " + p.content_type + "\r\n\r\n";
    body += p.content + "\r\n";
  }
  return body + "--" + boundary + "--\r\n";
}

// Mute: the stream goes on; the decision is a "Rule Applied" event with the
// interval (start at match_started, start + end at match_ended), the live
// feed carries every event of the channel as it happens, the scan's
// summary.json lists the interval under edits.mute, and the usage report
// (CSV) counts the seconds played.
TEST_F(ServeApiE2eTest, MuteRuleMarksTheIntervalWhileTheStreamGoesOn) {
  auto d = Deploy("mute");
  ASSERT_TRUE(d);
  auto [channel, key] = CreateChannel(*d, {{"name", "chatty"}});
  ASSERT_FALSE(channel.empty());
  // The live feed, open before the stream starts, filtered to the channel.
  auto feed = EventFeed::Open(*d, "?channel_id=" + channel);
  ASSERT_TRUE(feed->WaitConnected(10s)) << feed->end_reason();
  ASSERT_EQ(feed->status(), 200);
  EXPECT_NE(feed->content_type().find("text/event-stream"), std::string::npos)
      << feed->content_type();

  auto publisher = Publish(*d, mute_media_, key);
  ASSERT_TRUE(publisher);
  auto start = feed->WaitFor(Named("Stream Start", channel), 20s);
  ASSERT_TRUE(start) << feed->end_reason() << d->ServeLog();
  EXPECT_TRUE(publisher->running()) << "the feed lagged behind the stream";
  EXPECT_EQ(start->name, "Stream Start");
  EXPECT_EQ(start->id, start->event["seq"].get<int64_t>());
  const std::string stream_id = start->event["stream_id"];

  auto mute_on = feed->WaitFor(Named("Rule Applied", channel), 40s);
  ASSERT_TRUE(mute_on) << d->ServeLog();
  const nlohmann::json on = mute_on->event["detail"];
  EXPECT_EQ(on["action"], "mute") << on.dump();
  EXPECT_EQ(on["rule"], "mute");
  EXPECT_EQ(on["track"]["title"], "knolls");
  ASSERT_TRUE(on.contains("mute") && on["mute"].contains("start_s")) << on.dump();
  EXPECT_FALSE(on["mute"].contains("end_s")) << "the match has only started: " << on.dump();
  const double mute_start = on["mute"]["start_s"];
  EXPECT_LT(mute_start, 5.0) << "the music starts with the stream";
  // Muting stops nothing.
  EXPECT_EQ(d->Call("GET", "/v1/channels/" + channel + "/stream").status, 200);
  EXPECT_TRUE(publisher->running()) << "the publisher was dropped";

  auto mute_off = feed->WaitFor(
      [&](const nlohmann::json& e) {
        return Named("Rule Applied", channel)(e) && e["detail"].contains("mute") &&
               e["detail"]["mute"].contains("end_s");
      },
      40s);
  ASSERT_TRUE(mute_off) << d->ServeLog();
  const nlohmann::json off = mute_off->event["detail"];
  EXPECT_EQ(off["action"], "mute");
  EXPECT_EQ(off["match_id"], on["match_id"]);
  EXPECT_NEAR(off["mute"]["start_s"].get<double>(), mute_start, 0.5) << off.dump();
  const double mute_end = off["mute"]["end_s"];
  // The interval is the music (kMuteMusicS s), not the voice after it.
  EXPECT_GT(mute_end - mute_start, kMuteMusicS - 5) << off.dump();
  EXPECT_LT(mute_end, kMuteMusicS + 3) << off.dump();

  // The publisher plays its media to the end; the stream was never stopped.
  auto exit = publisher->Wait(40s);
  ASSERT_TRUE(exit.has_value()) << "the publisher still runs after its media";
  EXPECT_TRUE(exit->success()) << exit->ToString() << "\n" << publisher->log_text();
  auto end = feed->WaitFor(Named("Stream End", channel), 20s);
  ASSERT_TRUE(end) << d->ServeLog();
  EXPECT_LT(mute_off->id, end->id)
      << "the match should end (and be reported) while the stream goes on";
  ApiResponse session = d->Call("GET", "/v1/sessions/" + stream_id);
  ASSERT_EQ(session.status, 200) << session.text;
  EXPECT_EQ(session.body.value("end_reason", "").find("stopped"), std::string::npos)
      << session.text;

  // The scan's summary lists the interval for a VOD editor.
  auto summary = WaitForJsonFile(d->data_dir() / "results" / stream_id / "summary.json", 30s);
  ASSERT_TRUE(summary) << "no summary.json for " << stream_id << "\n" << d->ServeLog();
  ASSERT_EQ((*summary)["edits"]["mute"].size(), 1u) << summary->dump(2);
  EXPECT_NEAR((*summary)["edits"]["mute"][0]["start_s"].get<double>(), mute_start, 0.5)
      << summary->dump(2);
  EXPECT_NEAR((*summary)["edits"]["mute"][0]["end_s"].get<double>(), mute_end, 0.5)
      << summary->dump(2);
  EXPECT_TRUE((*summary)["edits"]["cut"].empty()) << summary->dump(2);
  ASSERT_EQ((*summary)["segments"].size(), 1u) << summary->dump(2);
  EXPECT_EQ((*summary)["segments"][0]["rule"], "mute");

  // The feed carried the channel's log, in order, each event named and numbered.
  ASSERT_TRUE(WaitForScansToSettle(*d, 20s));
  const std::vector<int64_t> logged = EventSeqs(*d, "&channel_id=" + channel);
  ASSERT_FALSE(logged.empty());
  EXPECT_TRUE(feed->WaitFor(
      [&](const nlohmann::json& e) { return e.value("seq", int64_t{0}) == logged.back(); }, 10s));
  std::vector<int64_t> fed;
  for (const EventFeed::Received& r : feed->Events()) {
    fed.push_back(r.id);
    EXPECT_EQ(r.id, r.event.value("seq", int64_t{-1}));
    EXPECT_EQ(r.name, r.event.value("event_name", "")) << r.event.dump();
    EXPECT_EQ(r.event.value("channel_id", ""), channel)
        << "the feed's channel filter let through " << r.event.dump();
  }
  EXPECT_EQ(fed, logged);
  // A client resuming after the first decision (Last-Event-ID), filtered by
  // type, gets only what came later of those types.
  auto resumed = EventFeed::Open(*d, "?type=Rule%20Applied,Stream%20End&channel_id=" + channel,
                                 {"Last-Event-ID: " + std::to_string(mute_on->id)});
  ASSERT_TRUE(resumed->WaitConnected(10s)) << resumed->end_reason();
  EXPECT_TRUE(resumed->WaitFor(Named("Stream End", channel), 10s)) << resumed->end_reason();
  std::vector<int64_t> resumed_ids;
  for (const EventFeed::Received& r : resumed->Events()) resumed_ids.push_back(r.id);
  EXPECT_EQ(resumed_ids, (std::vector<int64_t>{mute_off->id, end->id}));

  // Usage report, CSV: one row, the seconds of the muted match.
  ApiResponse csv = d->Call("GET", "/v1/channels/" + channel + "/reports/usage?format=csv");
  ASSERT_EQ(csv.status, 200) << csv.text;
  EXPECT_NE(csv.content_type.find("text/csv"), std::string::npos) << csv.content_type;
  const std::vector<std::string> lines = Lines(csv.text);
  ASSERT_EQ(lines.size(), 2u) << csv.text;
  EXPECT_EQ(lines[0], "track_id,title,artist,rights_holder,isrc,seconds_played,streams,plays");
  const std::vector<std::string> row = CsvFields(lines[1]);
  ASSERT_EQ(row.size(), 8u) << lines[1];
  EXPECT_EQ(row[1], "knolls");
  EXPECT_EQ(row[3], "Wesnoth Project");
  EXPECT_NEAR(std::strtod(row[5].c_str(), nullptr), mute_end - mute_start, 1.0) << lines[1];
  EXPECT_EQ(row[6], "1");
  EXPECT_EQ(row[7], "1");
  ApiResponse json = d->Call("GET", "/v1/channels/" + channel + "/reports/usage");
  ASSERT_EQ(json.status, 200) << json.text;
  ASSERT_EQ(json.body["tracks"].size(), 1u) << json.text;
  EXPECT_EQ(row[0], std::to_string(json.body["tracks"][0]["track_id"].get<int64_t>()));
  EXPECT_NEAR(std::strtod(row[5].c_str(), nullptr),
              json.body["tracks"][0]["seconds_played"].get<double>(), 0.001);
}

// Subscriptions: a webhook for one event type on one channel gets exactly
// those events of real streams (the first attempt answered 500 and retried
// with the same idempotency key, every request signed), nothing of another
// channel; an email subscription gets a mail over STARTTLS for a Stream
// Start. The other channel overrides `block` to `allow`: the same blocked
// track plays on there without the stream being stopped.
TEST_F(ServeApiE2eTest, SubscriptionsGetTheirEventsAndAnOverrideLetsBlockedMusicPlay) {
  static constexpr char kSecretEnv[] = "EARSHOT_E2E_WEBHOOK_SECRET";
  const std::string secret = "e2e-webhook-secret-" + std::to_string(getpid());
  ASSERT_EQ(setenv(kSecretEnv, secret.c_str(), 1), 0);  // inherited by `earshot serve`
  auto hook = support::HttpListener::Start(support::HttpListener::StatusScript({500, 200}));
  ASSERT_TRUE(hook) << hook.error().ToString();
  auto smtp = support::SmtpListener::Start();
  ASSERT_TRUE(smtp) << smtp.error().ToString();
  auto d = Deploy("subscriptions", {.workers = 2});
  ASSERT_TRUE(d);
  auto [watched, watched_key] = CreateChannel(*d, {{"name", "watched"}});
  auto [licensed, licensed_key] = CreateChannel(*d, {{"name", "licensed"}});
  ASSERT_FALSE(watched.empty() || licensed.empty());
  ApiResponse patched =
      d->Call("PATCH", "/v1/channels/" + licensed, {{"rule_overrides", {{"block", "allow"}}}});
  ASSERT_EQ(patched.status, 200) << patched.text;
  EXPECT_EQ(patched.body["rule_overrides"], nlohmann::json({{"block", "allow"}})) << patched.text;
  EXPECT_EQ(d->Call("PATCH", "/v1/channels/" + licensed, {{"rule_overrides", {{"block", "loud"}}}})
                .status,
            400);

  ApiResponse webhook =
      d->Call("POST", "/v1/subscriptions",
              {{"kind", "webhook"},
               {"target", "url=" + (*hook)->Url("/earshot-events") + ",secret_env=" + kSecretEnv},
               {"event_types", {"Identification"}},
               {"channel_ids", {watched}}});
  ASSERT_EQ(webhook.status, 201) << webhook.text;
  const std::string webhook_id = webhook.body["id"];
  ApiResponse email =
      d->Call("POST", "/v1/subscriptions",
              {{"kind", "email"},
               {"target", "url=" + (*smtp)->Url() +
                              ",from=earshot@example.com,to=ops@example.com,tls=required,ca_file=" +
                              (*smtp)->ca_file().string()},
               {"event_types", {"Stream Start"}},
               {"channel_ids", {watched}}});
  ASSERT_EQ(email.status, 201) << email.text;
  // Targets that could never be delivered to are refused up front, with the reason.
  ApiResponse ftp =
      d->Call("POST", "/v1/subscriptions",
              {{"kind", "webhook"}, {"target", "url=ftp://127.0.0.1/hook,unsigned=true"}});
  EXPECT_EQ(ftp.status, 400) << ftp.text;
  ApiResponse unset =
      d->Call("POST", "/v1/subscriptions",
              {{"kind", "webhook"},
               {"target", "url=" + (*hook)->Url("/x") + ",secret_env=EARSHOT_E2E_UNSET_SECRET"}});
  EXPECT_EQ(unset.status, 400) << unset.text;
  EXPECT_NE(unset.text.find("EARSHOT_E2E_UNSET_SECRET"), std::string::npos) << unset.text;
  ApiResponse no_to = d->Call(
      "POST", "/v1/subscriptions",
      {{"kind", "email"}, {"target", "url=" + (*smtp)->Url() + ",from=earshot@example.com"}});
  EXPECT_EQ(no_to.status, 400) << no_to.text;
  ApiResponse subs = d->Call("GET", "/v1/subscriptions");
  ASSERT_EQ(subs.status, 200);
  EXPECT_EQ(subs.body["subscriptions"].size(), 2u) << subs.text;

  // The same blocked track on both channels at once.
  auto on_watched = Publish(*d, block_media_, watched_key);
  auto on_licensed = Publish(*d, block_media_, licensed_key);
  ASSERT_TRUE(on_watched && on_licensed);
  auto stopped = d->FindOrWaitForEvent(Named("Rule Applied", watched), 40s);
  ASSERT_TRUE(stopped) << d->ServeLog();
  EXPECT_EQ((*stopped)["detail"]["action"], "stop") << stopped->dump();
  auto allowed = d->FindOrWaitForEvent(Named("Identification", licensed), 40s);
  ASSERT_TRUE(allowed) << d->ServeLog();
  const auto allowed_at = Clock::now();
  EXPECT_EQ((*allowed)["detail"]["track"]["title"], "battle");
  EXPECT_EQ((*allowed)["detail"]["rule"], "allow") << allowed->dump();
  EXPECT_EQ((*allowed)["detail"]["track_rule"], "block") << allowed->dump();
  ASSERT_TRUE(d->FindOrWaitForEvent(Named("Stream End", watched), 20s));
  EXPECT_TRUE(on_watched->Wait(15s).has_value())
      << "the watched channel's publisher is still connected";

  // The licensed channel plays on well past its identification.
  std::this_thread::sleep_until(allowed_at + 6s);
  EXPECT_EQ(d->Call("GET", "/v1/channels/" + licensed + "/stream").status, 200);
  EXPECT_TRUE(on_licensed->running()) << "the licensed channel's publisher was dropped";
  on_licensed->Stop();
  ASSERT_TRUE(d->FindOrWaitForEvent(Named("Stream End", licensed), 20s));
  ASSERT_TRUE(WaitForScansToSettle(*d, 30s)) << d->Call("GET", "/v1/jobs").text;
  d->WaitForEvent([](const nlohmann::json&) { return false; },
                  500ms);  // reads the rest into history
  EXPECT_FALSE(std::any_of(d->history.begin(), d->history.end(), Named("Rule Applied", licensed)));
  ApiResponse ids = d->Call("GET", "/v1/identifications?channel_id=" + licensed);
  ASSERT_EQ(ids.status, 200);
  ASSERT_GE(ids.body["identifications"].size(), 1u) << ids.text;
  for (const auto& id : ids.body["identifications"]) {
    EXPECT_EQ(id["rule"], "allow") << id.dump();
    EXPECT_EQ(id["track_rule"], "block") << id.dump();
  }

  // The dispatcher has gone past every event (its cursor file).
  const std::vector<int64_t> all = EventSeqs(*d, "");
  ASSERT_FALSE(all.empty());
  const fs::path cursor_file = d->data_dir() / "subscriptions.cursor";
  const auto deadline = Clock::now() + 30s;
  int64_t dispatched = 0;
  while (Clock::now() < deadline && dispatched < all.back()) {
    dispatched = std::strtoll(support::ReadTextFile(cursor_file).c_str(), nullptr, 10);
    if (dispatched < all.back()) std::this_thread::sleep_for(200ms);
  }
  ASSERT_GE(dispatched, all.back()) << "the dispatcher is stuck\n" << d->ServeLog();

  // The webhook: exactly the watched channel's identifications, in order.
  const std::vector<int64_t> expected = EventSeqs(*d, "&type=Identification&channel_id=" + watched);
  ASSERT_FALSE(expected.empty());
  EXPECT_FALSE(EventSeqs(*d, "&type=Identification&channel_id=" + licensed).empty());
  const std::vector<support::RecordedRequest> requests = (*hook)->Requests();
  ASSERT_EQ(requests.size(), expected.size() + 1) << "one per event, plus the retry of the first";
  EXPECT_EQ(requests[0].Header("Idempotency-Key"), requests[1].Header("Idempotency-Key"));
  EXPECT_EQ(requests[0].body, requests[1].body);
  const int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  std::vector<int64_t> delivered;
  for (size_t i = 0; i < requests.size(); ++i) {
    const support::RecordedRequest& r = requests[i];
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.target, "/earshot-events");
    EXPECT_EQ(r.Header("X-Earshot-Event"), "event.Identification");
    Status signature =
        delivery::VerifyWebhookSignature(secret, r.Header(delivery::kWebhookSignatureHeader),
                                         r.body, now_s, delivery::kWebhookSignatureToleranceS);
    EXPECT_TRUE(signature) << signature.error().ToString();
    const nlohmann::json event = nlohmann::json::parse(r.body, nullptr, false);
    ASSERT_FALSE(event.is_discarded()) << r.body;
    EXPECT_EQ(event.value("channel_id", ""), watched) << r.body;
    EXPECT_EQ(event.value("event_name", ""), "Identification") << r.body;
    const int64_t seq = event.value("seq", int64_t{0});
    EXPECT_EQ(r.Header("Idempotency-Key"), "event-" + std::to_string(seq) + "-" + webhook_id);
    if (i > 0) delivered.push_back(seq);
  }
  EXPECT_EQ(delivered, expected);

  // The email: one mail, for the watched channel's Stream Start.
  auto mails = (*smtp)->WaitForMessages(1, 20s);
  ASSERT_TRUE(mails) << mails.error().ToString();
  ASSERT_EQ(mails->size(), 1u) << "only the watched channel's Stream Start was subscribed";
  const support::ReceivedMail& mail = (*mails)[0];
  EXPECT_EQ(mail.tls.substr(0, 8), "STARTTLS") << mail.tls;
  EXPECT_EQ(mail.rcpt_to, std::vector<std::string>{"ops@example.com"});
  EXPECT_EQ(mail.Header("X-Earshot-Event").value_or(""), "event.Stream Start");
  const std::string subject = mail.Header("Subject").value_or("");
  EXPECT_NE(subject.find("Stream Start"), std::string::npos) << subject;
  EXPECT_NE(subject.find(watched), std::string::npos) << subject;
  const std::string watched_stream = (*stopped)["stream_id"];
  EXPECT_NE(mail.Body().find(watched_stream), std::string::npos) << mail.Body();
  ApiResponse metrics = d->Call("GET", "/metrics", nullptr, false);
  EXPECT_NE(metrics.text.find("earshot_subscription_deliveries_total{outcome=\"delivered\"} " +
                              std::to_string(expected.size() + 1)),
            std::string::npos)
      << metrics.text;
}

// The catalog over HTTP: an uploaded recording (metadata and rule in the
// same request) is listed, and the running server identifies it in the next
// stream with its rule; deleted, it is neither listed nor identified.
TEST_F(ServeApiE2eTest, UploadedTrackIsIdentifiedAndADeletedOneIsNot) {
  auto sad = support::WesnothMusic("sad");
  ASSERT_TRUE(sad) << sad.error().ToString();
  auto media =
      support::MakeMusicUnderVoice(Dir(), *sad, 4, 14, "a new song from the label, listen", -4);
  ASSERT_TRUE(media) << media.error().ToString();
  auto d = Deploy("catalog-http", {.catalog_dir = Dir() / "catalog-http"});
  ASSERT_TRUE(d);
  ApiResponse empty = d->Call("GET", "/v1/catalog");
  ASSERT_EQ(empty.status, 200) << empty.text;
  EXPECT_TRUE(empty.body["tracks"].empty()) << empty.text;

  // A title that CSV must quote.
  const std::string title = "Sad Song, \"upload\"";
  const nlohmann::json metadata = {{"title", title},
                                   {"artist", "Wesnoth Composers"},
                                   {"rights_holder", "Upload Rights"},
                                   {"isrc", "USRC17607839"},
                                   {"rule", "block"},
                                   {"tags", {{"source", "e2e"}}}};
  const std::string boundary = "earshot-e2e-7f3a9c";
  const std::string upload =
      MultipartBody(boundary, {{"metadata", "metadata.json", "application/json", metadata.dump()},
                               {"file", "sad.ogg", "audio/ogg", ReadBinaryFile(*sad)}});
  const std::string form = "multipart/form-data; boundary=" + boundary;
  ApiResponse added = d->CallRaw("POST", "/v1/catalog", form, upload);
  ASSERT_EQ(added.status, 201) << added.text;
  const int64_t track_id = added.body["track_id"];
  EXPECT_EQ(added.body["title"], title);
  EXPECT_EQ(added.body["artist"], "Wesnoth Composers");
  EXPECT_EQ(added.body["rights_holder"], "Upload Rights");
  EXPECT_EQ(added.body["isrc"], "USRC17607839");
  EXPECT_EQ(added.body["rule"], "block");
  EXPECT_EQ(added.body["tags"]["source"], "e2e");
  EXPECT_NEAR(added.body["duration_s"].get<double>(), 44.4, 1.0) << added.text;
  ApiResponse twice = d->CallRaw("POST", "/v1/catalog", form, upload);
  EXPECT_EQ(twice.status, 409) << "the same recording again: " << twice.text;
  EXPECT_NE(twice.text.find("sad.ogg"), std::string::npos) << twice.text;
  EXPECT_EQ(twice.text.find(d->dir.string()), std::string::npos)
      << "names a server folder: " << twice.text;
  ApiResponse listed = d->Call("GET", "/v1/catalog");
  ASSERT_EQ(listed.status, 200);
  ASSERT_EQ(listed.body["tracks"].size(), 1u) << listed.text;
  EXPECT_EQ(listed.body["tracks"][0], added.body);
  EXPECT_EQ(d->Call("GET", "/v1/catalog?rule=block").body["tracks"].size(), 1u);
  EXPECT_EQ(d->Call("GET", "/v1/catalog?rule=mute").body["tracks"].size(), 0u);
  // Bad uploads are the client's error, and add nothing.
  ApiResponse no_file = d->CallRaw(
      "POST", "/v1/catalog", form,
      MultipartBody(boundary,
                    {{"metadata", "metadata.json", "application/json", metadata.dump()}}));
  EXPECT_EQ(no_file.status, 400) << no_file.text;
  ApiResponse noise = d->CallRaw(
      "POST", "/v1/catalog", form,
      MultipartBody(boundary, {{"file", "noise.ogg", "audio/ogg", std::string(4096, 'x')}}));
  EXPECT_EQ(noise.status, 400) << "not audio: " << noise.text;
  EXPECT_NE(noise.text.find("noise.ogg"), std::string::npos) << noise.text;
  EXPECT_EQ(noise.text.find(d->dir.string()), std::string::npos)
      << "names a server folder: " << noise.text;
  nlohmann::json bad_rule = metadata;
  bad_rule["rule"] = "forbid";
  ApiResponse refused_rule = d->CallRaw(
      "POST", "/v1/catalog", form,
      MultipartBody(boundary, {{"metadata", "metadata.json", "application/json", bad_rule.dump()},
                               {"file", "sad.ogg", "audio/ogg", ReadBinaryFile(*sad)}}));
  EXPECT_EQ(refused_rule.status, 400) << refused_rule.text;
  EXPECT_EQ(d->Call("GET", "/v1/catalog").body["tracks"].size(), 1u);

  // The next stream is identified as the upload, with its rule (block: stop).
  auto [channel, key] = CreateChannel(*d, {{"name", "label-check"}});
  ASSERT_FALSE(channel.empty());
  auto publisher = Publish(*d, *media, key);
  ASSERT_TRUE(publisher);
  auto ident = d->WaitForEvent(Named("Identification", channel), 40s);
  ASSERT_TRUE(ident) << d->ServeLog();
  EXPECT_EQ((*ident)["detail"]["track"]["track_id"], track_id) << ident->dump();
  EXPECT_EQ((*ident)["detail"]["track"]["title"], title);
  EXPECT_EQ((*ident)["detail"]["track"]["rights_holder"], "Upload Rights");
  EXPECT_EQ((*ident)["detail"]["rule"], "block");
  auto applied = d->WaitForEvent(Named("Rule Applied", channel), 20s);
  ASSERT_TRUE(applied);
  EXPECT_EQ((*applied)["detail"]["action"], "stop");
  ASSERT_TRUE(d->WaitForEvent(Named("Stream End", channel), 20s));
  EXPECT_TRUE(publisher->Wait(15s).has_value()) << "the publisher is still connected";
  // The usage report names it as uploaded (CSV-quoted).
  ApiResponse csv = d->Call("GET", "/v1/channels/" + channel + "/reports/usage?format=csv");
  ASSERT_EQ(csv.status, 200) << csv.text;
  const std::vector<std::string> lines = Lines(csv.text);
  ASSERT_EQ(lines.size(), 2u) << csv.text;
  const std::vector<std::string> row = CsvFields(lines[1]);
  ASSERT_EQ(row.size(), 8u) << lines[1];
  EXPECT_EQ(row[0], std::to_string(track_id));
  EXPECT_EQ(row[1], title) << lines[1];
  EXPECT_EQ(row[2], "Wesnoth Composers");
  EXPECT_EQ(row[3], "Upload Rights");
  EXPECT_EQ(row[4], "USRC17607839");

  // Deleted: gone from the list, and the next stream of it plays unnoticed.
  EXPECT_EQ(d->Call("DELETE", "/v1/catalog/" + std::to_string(track_id)).status, 204);
  EXPECT_TRUE(d->Call("GET", "/v1/catalog").body["tracks"].empty());
  EXPECT_EQ(d->Call("DELETE", "/v1/catalog/" + std::to_string(track_id)).status, 404);
  EXPECT_EQ(d->Call("DELETE", "/v1/catalog/not-a-number").status, 400);
  ASSERT_TRUE(WaitForScansToSettle(*d, 20s));
  auto again = Publish(*d, *media, key);
  ASSERT_TRUE(again);
  auto start = d->WaitForEvent(Named("Stream Start", channel), 20s);
  ASSERT_TRUE(start) << d->ServeLog();
  const std::string stream_id = (*start)["stream_id"];
  auto exit = again->Wait(40s);
  ASSERT_TRUE(exit.has_value()) << "the publisher still runs after its media";
  EXPECT_TRUE(exit->success()) << exit->ToString() << "\n" << again->log_text();
  ASSERT_TRUE(d->WaitForEvent(Named("Stream End", channel), 20s));
  auto summary = WaitForJsonFile(d->data_dir() / "results" / stream_id / "summary.json", 30s);
  ASSERT_TRUE(summary) << d->ServeLog();
  EXPECT_TRUE((*summary)["segments"].empty()) << summary->dump(2);
  ApiResponse events =
      d->Call("GET", "/v1/events?limit=1000&type=Identification&stream_id=" + stream_id);
  ASSERT_EQ(events.status, 200);
  EXPECT_TRUE(events.body["events"].empty()) << events.text;
}

// [rules] block_action = "stop_and_reset_key": the stream is stopped and the
// encoder's reconnect with the old key is refused.
TEST_F(ServeApiE2eTest, StopAndResetKeyShutsTheEncoderOut) {
  auto d = Deploy("reset-key", {.block_action = "stop_and_reset_key"});
  ASSERT_TRUE(d);
  auto [channel, key] = CreateChannel(*d, {{"name", "repeat-offender"}});
  ASSERT_FALSE(channel.empty());
  auto publisher = Publish(*d, block_media_, key);
  ASSERT_TRUE(publisher);
  auto applied = d->WaitForEvent(Named("Rule Applied", channel), 40s);
  ASSERT_TRUE(applied) << d->ServeLog();
  EXPECT_EQ((*applied)["detail"]["action"], "stop_and_reset_key") << applied->dump();
  EXPECT_EQ((*applied)["detail"]["rule"], "block");
  auto end = d->WaitForEvent(Named("Stream End", channel), 20s);
  ASSERT_TRUE(end);
  EXPECT_TRUE(publisher->Wait(15s).has_value()) << "the publisher is still connected";
  ApiResponse session = d->Call("GET", "/v1/sessions/" + (*end)["stream_id"].get<std::string>());
  ASSERT_EQ(session.status, 200) << session.text;
  EXPECT_NE(session.body.value("end_reason", "").find("stopped"), std::string::npos)
      << session.text;

  // The encoder reconnects with the key it has: refused.
  auto reconnect = Publish(*d, block_media_, key);
  ASSERT_TRUE(reconnect);
  auto refused = reconnect->Wait(20s);
  ASSERT_TRUE(refused.has_value()) << "the old key still publishes";
  EXPECT_FALSE(refused->success());
  EXPECT_EQ(d->Call("GET", "/v1/channels/" + channel + "/stream").status, 404);
  ApiResponse sessions = d->Call("GET", "/v1/channels/" + channel + "/sessions");
  ASSERT_EQ(sessions.status, 200);
  EXPECT_EQ(sessions.body["sessions"].size(), 1u) << sessions.text;
  ApiResponse metrics = d->Call("GET", "/metrics", nullptr, false);
  EXPECT_NE(metrics.text.find("earshot_rule_actions_total{action=\"stop_and_reset_key\"} 1"),
            std::string::npos)
      << metrics.text;
}

// [rules] block_action = "notify": the block is an event only, the stream
// goes on; a channel whose own block_action is "stop" is stopped.
TEST_F(ServeApiE2eTest, NotifyBlockActionLeavesTheStreamOn) {
  auto d = Deploy("notify", {.workers = 2, .block_action = "notify"});
  ASSERT_TRUE(d);
  auto [channel, key] = CreateChannel(*d, {{"name", "warned"}});
  auto [strict, strict_key] = CreateChannel(*d, {{"name", "strict"}, {"block_action", "stop"}});
  ASSERT_FALSE(channel.empty() || strict.empty());
  auto publisher = Publish(*d, block_media_, key);
  auto strict_publisher = Publish(*d, block_media_, strict_key);
  ASSERT_TRUE(publisher && strict_publisher);
  auto applied = d->FindOrWaitForEvent(Named("Rule Applied", channel), 40s);
  ASSERT_TRUE(applied) << d->ServeLog();
  const auto notified_at = Clock::now();
  EXPECT_EQ((*applied)["detail"]["action"], "notify") << applied->dump();
  EXPECT_EQ((*applied)["detail"]["rule"], "block");
  auto strict_applied = d->FindOrWaitForEvent(Named("Rule Applied", strict), 40s);
  ASSERT_TRUE(strict_applied) << d->ServeLog();
  EXPECT_EQ((*strict_applied)["detail"]["action"], "stop") << strict_applied->dump();
  ASSERT_TRUE(d->FindOrWaitForEvent(Named("Stream End", strict), 20s));
  EXPECT_TRUE(strict_publisher->Wait(15s).has_value())
      << "the strict channel's publisher is still connected";

  std::this_thread::sleep_until(notified_at + 6s);
  EXPECT_EQ(d->Call("GET", "/v1/channels/" + channel + "/stream").status, 200);
  EXPECT_TRUE(publisher->running()) << "the notified channel's publisher was dropped";
  d->WaitForEvent([](const nlohmann::json&) { return false; },
                  500ms);  // reads the rest into history
  EXPECT_FALSE(std::any_of(d->history.begin(), d->history.end(), Named("Stream End", channel)));
  publisher->Stop();
  auto end = d->FindOrWaitForEvent(Named("Stream End", channel), 20s);
  ASSERT_TRUE(end);
  ApiResponse session = d->Call("GET", "/v1/sessions/" + (*end)["stream_id"].get<std::string>());
  ASSERT_EQ(session.status, 200) << session.text;
  EXPECT_EQ(session.body.value("end_reason", "").find("stopped"), std::string::npos)
      << session.text;
  ApiResponse metrics = d->Call("GET", "/metrics", nullptr, false);
  EXPECT_NE(metrics.text.find("earshot_rule_actions_total{action=\"notify\"} "), std::string::npos)
      << metrics.text;
}

}  // namespace
}  // namespace earshot::server
