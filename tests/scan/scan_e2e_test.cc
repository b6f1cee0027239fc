// End to end: the real `earshot scan` binary against a real catalog (Debian's
// wesnoth music), real media (espeak-ng voice over the music, made with
// ffmpeg), a real nginx with the RTMP module, a real S3-compatible server
// (@20minutes/s3rver, signature-checking), a real HTTP listener as the
// webhook receiver and a real SMTP server (aiosmtpd, STARTTLS).
#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "delivery/webhook_signature.h"
#include "support/ffmpeg_publisher.h"
#include "support/http_listener.h"
#include "support/nginx_rtmp.h"
#include "scan/scan_e2e_support.h"
#include "support/process.h"
#include "support/s3rver.h"
#include "support/smtp_listener.h"
#include "support/test_media.h"

namespace earshot::scan {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
namespace support = ::earshot::testing;
using support::ChildProcess;

constexpr const char* kWebhookSecret = "e2e-webhook-secret";

using e2e::ReadJson;
using e2e::ResponseFiles;
using e2e::SourceDir;

class ScanE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto dir = support::ScopedTempDir::Create("earshot_scan_e2e");
    ASSERT_TRUE(dir) << dir.error().ToString();
    dir_ = new support::ScopedTempDir(std::move(*dir));
    // The catalog: the track under the voice is `block`, two others `mute` / `track`.
    auto battle = support::WesnothMusic("battle");
    auto knolls = support::WesnothMusic("knolls");
    auto elf = support::WesnothMusic("elf-land");
    ASSERT_TRUE(battle && knolls && elf) << "wesnoth-1.16-music missing";
    for (auto [path, rule] : {std::pair{*battle, "block"}, {*knolls, "mute"}, {*elf, "track"}}) {
      auto r = Earshot({"catalog", "add", "--rule", rule, "--rights-holder", "Wesnoth Project",
                        path.string()});
      ASSERT_TRUE(r.ok()) << r.Describe();
    }
    // 24 s of `battle` from 30 s under a talking streamer.
    auto media = support::MakeMusicUnderVoice(
        Dir(), *battle, 30, 24, "welcome back to the stream everyone, today we try the hard level",
        -2);
    ASSERT_TRUE(media) << media.error().ToString();
    music_under_voice_ = *media;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static fs::path Dir() { return dir_->path(); }
  static fs::path Catalog() { return Dir() / "catalog"; }

  static support::CommandResult Earshot(std::vector<std::string> args,
                                        std::chrono::milliseconds timeout = 120s) {
    return e2e::RunEarshot(Catalog(), std::move(args), timeout);
  }

  // `earshot scan ...` as a background process; output in `log`.
  static ChildProcess StartScan(std::vector<std::string> args, const fs::path& log) {
    return e2e::StartEarshotScan(Catalog(), std::move(args), log);
  }

  // Every document in RESULTS validates against docs/schema/.
  static void ExpectSchemaValid(const fs::path& results) { e2e::ExpectSchemaValid(results); }

  // The stream's summary, and checks that `battle` (block) was found in it.
  static nlohmann::json ExpectBattleFound(const fs::path& results, const std::string& stream) {
    const fs::path summary_path = results / stream / "summary.json";
    EXPECT_TRUE(fs::exists(summary_path)) << summary_path;
    nlohmann::json summary = ReadJson(summary_path);
    EXPECT_TRUE(summary.is_object());
    if (!summary.is_object()) return summary;
    // A reconnect may split the match into several segments: their total
    // counts.
    bool found = false;
    double battle_s = 0;
    for (const auto& seg : summary["segments"]) {
      if (seg["track"]["title"] == "battle") {
        found = true;
        EXPECT_EQ(seg["rule"], "block");
        battle_s += seg["duration_s"].get<double>();
      }
      EXPECT_NE(seg["track"]["title"], "knolls") << "a track that was not played";
    }
    EXPECT_TRUE(found) << summary.dump(2);
    EXPECT_GE(battle_s, 8.0) << summary.dump(2);
    EXPECT_FALSE(summary["edits"]["cut"].empty());
    // A started and an ended response for the match.
    std::set<std::string> statuses;
    for (const fs::path& f : ResponseFiles(results / stream)) statuses.insert(ReadJson(f)["status"]);
    EXPECT_TRUE(statuses.count("match_started")) << stream;
    EXPECT_TRUE(statuses.count("match_ended")) << stream;
    return summary;
  }

  static inline support::ScopedTempDir* dir_ = nullptr;
  static inline fs::path music_under_voice_;
};

TEST_F(ScanE2eTest, FileScanWritesSchemaValidResponsesAndASummary) {
  const fs::path results = Dir() / "results-file";
  auto r = Earshot({"scan", music_under_voice_.string(), "--stream-id", "st-file", "--channel",
                    "ch-1", "--results", results.string()});
  ASSERT_TRUE(r.ok()) << r.Describe();
  nlohmann::json report = nlohmann::json::parse(r.stdout_text.substr(0, r.stdout_text.find('\n')));
  EXPECT_EQ(report["status"], "ended");
  EXPECT_GE(report["matches"].get<int>(), 1);
  nlohmann::json summary = ExpectBattleFound(results, "st-file");
  EXPECT_EQ(summary["status"], "ended");
  EXPECT_EQ(summary["channel_id"], "ch-1");
  const auto files = ResponseFiles(results / "st-file");
  ASSERT_FALSE(files.empty());
  nlohmann::json first = ReadJson(files.front());
  EXPECT_EQ(first["stream_id"], "st-file");
  EXPECT_EQ(first["track"]["rights_holder"], "Wesnoth Project");
  // battle is 30 s in at the start of the clip: the reference time says so.
  EXPECT_NEAR(first["reference"]["start_s"].get<double>() - first["stream"]["start_s"].get<double>(), 30.0, 0.6);
  ExpectSchemaValid(results);

  // A second scan of the same stream continues the numbering, never overwrites.
  auto again = Earshot({"scan", music_under_voice_.string(), "--stream-id", "st-file",
                        "--results", results.string()});
  ASSERT_TRUE(again.ok()) << again.Describe();
  EXPECT_GT(ResponseFiles(results / "st-file").size(), files.size());
  EXPECT_TRUE(fs::exists(files.front()));

  // The schema check is not vacuous: a damaged document fails it.
  const fs::path broken = Dir() / "broken";
  fs::create_directories(broken / "st-x");
  nlohmann::json bad = first;
  bad["rule"] = "permit";
  std::ofstream(broken / "st-x" / "000001-match_started-x.json") << bad.dump();
  auto check = support::RunCommand({"/usr/bin/python3", (SourceDir() / "tests/scan/validate_results.py").string(),
                                        (SourceDir() / "docs/schema").string(), broken.string()},
                                       60s);
  ASSERT_TRUE(check);
  EXPECT_FALSE(check->ok());
  EXPECT_NE(check->stdout_text.find("rule"), std::string::npos) << check->stdout_text;
}

TEST_F(ScanE2eTest, BadInputsGetClearErrors) {
  auto no_catalog_stream = Earshot({"scan", "/nonexistent.flv", "--stream-id", "st-x", "--results",
                                    (Dir() / "results-bad").string()});
  EXPECT_EQ(no_catalog_stream.status.code(), 1) << no_catalog_stream.Describe();
  EXPECT_NE(no_catalog_stream.stdout_text.find("\"failed\""), std::string::npos);
  nlohmann::json summary = ReadJson(Dir() / "results-bad" / "st-x" / "summary.json");
  EXPECT_EQ(summary["status"], "failed");
  EXPECT_EQ(summary["error"]["code"], "not_found");

  auto bad_id = Earshot({"scan", music_under_voice_.string(), "--stream-id", "../etc"});
  EXPECT_EQ(bad_id.status.code(), 2);
  EXPECT_NE(bad_id.stderr_text.find("not valid"), std::string::npos) << bad_id.stderr_text;

  auto bad_sink = Earshot({"scan", music_under_voice_.string(), "--stream-id", "st-y", "--sink",
                           "s3:bucket=b"});
  EXPECT_EQ(bad_sink.status.code(), 2);
  EXPECT_NE(bad_sink.stderr_text.find("endpoint"), std::string::npos) << bad_sink.stderr_text;
}

// RTMP and HLS of one live stream scanned by one process (two streams on a
// shared pool), every result delivered to a bucket, a webhook and a mailbox.
TEST_F(ScanE2eTest, LiveRtmpAndHlsWithEverySink) {
  auto nginx = support::NginxRtmp::Start();
  ASSERT_TRUE(nginx) << nginx.error().ToString();
  auto s3 = support::S3rver::Start();
  ASSERT_TRUE(s3) << s3.error().ToString();
  auto webhook = support::HttpListener::Start();
  ASSERT_TRUE(webhook) << webhook.error().ToString();
  auto smtp = support::SmtpListener::Start();
  ASSERT_TRUE(smtp) << smtp.error().ToString();

  support::FfmpegPublisherOptions pub;
  pub.input = music_under_voice_;
  pub.url = (*nginx)->rtmp_url("live", "show1");
  auto publisher = support::FfmpegPublisher::Start(pub);
  ASSERT_TRUE(publisher) << publisher.error().ToString();
  ASSERT_TRUE((*nginx)->WaitForHlsSegments("live", "show1", 1, 20s)) << (*publisher)->log_text();

  const fs::path results = Dir() / "results-live";
  const fs::path streams = Dir() / "streams.tsv";
  std::ofstream(streams) << "st-rtmp\t" << (*nginx)->rtmp_url("live", "show1") << "\tch-live\n"
                         << "st-hls\t" << (*nginx)->hls_url("live", "show1") << "\tch-live\n";
  ::setenv("EARSHOT_E2E_S3_ACCESS", (*s3)->options().access_key.c_str(), 1);
  ::setenv("EARSHOT_E2E_S3_SECRET", (*s3)->options().secret_key.c_str(), 1);
  ::setenv("EARSHOT_WEBHOOK_SECRET", kWebhookSecret, 1);
  ChildProcess scan = StartScan(
      {"--streams", streams.string(), "--results", results.string(), "--threads", "2",
       "--stall-timeout", "4", "--reconnects", "1", "--reconnect-backoff", "0.5",
       "--header", "Origin: https://viewer.example.com",
       "--sink",
       "s3:endpoint=" + (*s3)->endpoint() + ",bucket=" + (*s3)->options().bucket +
           ",prefix=e2e,access_key_env=EARSHOT_E2E_S3_ACCESS,secret_key_env=EARSHOT_E2E_S3_SECRET",
       "--notify", "webhook:url=" + (*webhook)->Url("/hook"),
       "--notify",
       "email:url=" + (*smtp)->Url() + ",from=earshot@example.com,to=ops@example.com;legal@example.com,ca_file=" +
           (*smtp)->ca_file().string()},
      Dir() / "scan-live.log");

  // The publisher plays its 24 s and exits; the scans then see the stream end.
  auto published = (*publisher)->Wait(60s);
  ASSERT_TRUE(published.has_value()) << (*publisher)->log_text();
  auto exited = scan.Wait(90s);
  ASSERT_TRUE(exited.has_value()) << support::ReadTextFile(Dir() / "scan-live.log");
  EXPECT_TRUE(exited->success()) << exited->ToString() << support::ReadTextFile(Dir() / "scan-live.log");

  for (const std::string stream : {"st-rtmp", "st-hls"}) {
    SCOPED_TRACE(stream);
    nlohmann::json summary = ExpectBattleFound(results, stream);
    EXPECT_EQ(summary["channel_id"], "ch-live");
  }
  ExpectSchemaValid(results);

  // In the bucket: every file of the folder, under prefix/stream/file.
  size_t files = 0;
  for (const std::string stream : {"st-rtmp", "st-hls"}) {
    for (const auto& e : fs::directory_iterator(results / stream)) {
      ++files;
      bool in_bucket = false;
      for (const auto& o : fs::recursive_directory_iterator((*s3)->data_dir())) {
        const std::string p = o.path().string();
        in_bucket = in_bucket || p.find("e2e/" + stream + "/" + e.path().filename().string()) != std::string::npos;
      }
      EXPECT_TRUE(in_bucket) << "not in the bucket: " << e.path();
    }
  }
  // At the webhook: one signed POST per file, each verifiable with the secret.
  ASSERT_TRUE((*webhook)->WaitForRequests(files, 10s)) << (*webhook)->request_count() << " of " << files;
  std::set<std::string> keys;
  for (const auto& req : (*webhook)->Requests()) {
    EXPECT_EQ(req.method, "POST");
    keys.insert(req.Header("Idempotency-Key"));
    auto verified = delivery::VerifyWebhookSignature(kWebhookSecret, req.Header("X-Earshot-Signature"),
                                                     req.body, std::time(nullptr), 600);
    EXPECT_TRUE(verified) << (verified ? "" : verified.error().ToString());
  }
  EXPECT_EQ(keys.size(), files);
  // In the mailbox: one message per file, to both recipients, over STARTTLS.
  auto mails = (*smtp)->WaitForMessages(files, 10s);
  ASSERT_TRUE(mails) << mails.error().ToString();
  for (const auto& m : *mails) {
    EXPECT_EQ(m.rcpt_to.size(), 2u);
    EXPECT_NE(m.tls.find("STARTTLS"), std::string::npos) << m.tls;
  }
  // Nothing left in the spool.
  size_t spooled = 0;
  for (const auto& e : fs::recursive_directory_iterator(results / ".outbox")) spooled += e.is_regular_file();
  EXPECT_EQ(spooled, 0u);
}

// The publisher drops (killed) and comes back: nginx-rtmp keeps the
// scanner's play session, so the scan goes on unbroken. Then the scanner's own
// connection is dropped (rtmp_control drop/subscriber): it reconnects, and
// stream time goes on from where it was.
TEST_F(ScanE2eTest, DroppedStreamIsReconnected) {
  auto nginx = support::NginxRtmp::Start();
  ASSERT_TRUE(nginx) << nginx.error().ToString();
  support::FfmpegPublisherOptions pub;
  pub.input = music_under_voice_;
  pub.url = (*nginx)->rtmp_url("live", "flaky");
  pub.video = false;
  auto first = support::FfmpegPublisher::Start(pub);
  ASSERT_TRUE(first) << first.error().ToString();
  ASSERT_TRUE((*nginx)->WaitForPublishing("live", "flaky", true, 20s));
  const fs::path results = Dir() / "results-drop";
  const fs::path log_path = Dir() / "scan-drop.log";
  ChildProcess scan = StartScan({(*nginx)->rtmp_url("live", "flaky"), "--stream-id", "st-drop",
                                 "--results", results.string(), "--stall-timeout", "3",
                                 "--reconnects", "2", "--reconnect-backoff", "0.5"},
                                log_path);
  for (int i = 0; i < 100 && support::ReadTextFile(log_path).find("\"scanning\"") == std::string::npos; ++i) {
    std::this_thread::sleep_for(100ms);
  }
  std::this_thread::sleep_for(2s);
  (*first)->Kill();  // the publisher's connection drops...
  std::this_thread::sleep_for(1s);
  auto second = support::FfmpegPublisher::Start(pub);  // ...and comes back
  ASSERT_TRUE(second) << second.error().ToString();
  ASSERT_TRUE((*nginx)->WaitForPublishing("live", "flaky", true, 20s));
  // Drop the scanner only once it has matched the music (progress, not wall
  // time: the machine may be busy). nginx keeps the subscriber across the
  // publisher's restart, so the first publish's match may simply go on.
  for (int i = 0; i < 300 && support::ReadTextFile(log_path).find("\"match started\"") == std::string::npos; ++i) {
    std::this_thread::sleep_for(100ms);
  }
  std::this_thread::sleep_for(3s);
  auto dropped = (*nginx)->HttpGet("/control/drop/subscriber?app=live&name=flaky");
  ASSERT_TRUE(dropped) << dropped.error().ToString();
  ASSERT_TRUE((*second)->Wait(60s).has_value());
  auto exited = scan.Wait(60s);
  ASSERT_TRUE(exited.has_value()) << support::ReadTextFile(log_path);
  nlohmann::json summary = ExpectBattleFound(results, "st-drop");
  EXPECT_EQ(summary["status"], "ended");
  EXPECT_GE(summary["reconnects"].get<int>(), 1) << summary.dump(2);
  // Stream time kept counting across the reconnect (audio missed while
  // disconnected is not invented): the log says where the reconnect was.
  // On a busy machine the publisher's restart may already have looked like a
  // stall (an early reconnect); the last one is the dropped subscriber's.
  const std::string log = support::ReadTextFile(log_path);
  const size_t at = log.rfind("\"msg\":\"reconnected\"");
  ASSERT_NE(at, std::string::npos) << log;
  const size_t begin = log.rfind('\n', at) + 1;
  const std::string line = log.substr(begin, log.find('\n', at) - begin);
  // At least the 2 s scanned before the first publisher died plus the 3 s
  // after the match (less a busy machine's slack): not restarted from 0.
  EXPECT_GT(nlohmann::json::parse(line)["at_stream_s"].get<double>(), 3.0) << line;
  EXPECT_GT(summary["stream_seconds"].get<double>(), 15.0) << summary.dump(2);
}

// The publisher stalls (stopped, connection open) for longer than the stall
// timeout, then resumes: the scan notices, reconnects and goes on.
TEST_F(ScanE2eTest, StalledStreamIsDetectedAndResumed) {
  auto nginx = support::NginxRtmp::Start();
  ASSERT_TRUE(nginx) << nginx.error().ToString();
  support::FfmpegPublisherOptions pub;
  pub.input = music_under_voice_;
  pub.url = (*nginx)->rtmp_url("live", "stall");
  pub.video = false;
  auto publisher = support::FfmpegPublisher::Start(pub);
  ASSERT_TRUE(publisher) << publisher.error().ToString();
  ASSERT_TRUE((*nginx)->WaitForPublishing("live", "stall", true, 20s));
  const fs::path results = Dir() / "results-stall";
  ChildProcess scan = StartScan({(*nginx)->rtmp_url("live", "stall"), "--stream-id", "st-stall",
                                 "--results", results.string(), "--stall-timeout", "2",
                                 "--reconnects", "5", "--reconnect-backoff", "0.5"},
                                Dir() / "scan-stall.log");
  std::this_thread::sleep_for(4s);
  ASSERT_EQ(::kill((*publisher)->pid(), SIGSTOP), 0);
  std::this_thread::sleep_for(4s);
  ASSERT_EQ(::kill((*publisher)->pid(), SIGCONT), 0);
  ASSERT_TRUE((*publisher)->Wait(60s).has_value());
  auto exited = scan.Wait(60s);
  ASSERT_TRUE(exited.has_value()) << support::ReadTextFile(Dir() / "scan-stall.log");
  const std::string log = support::ReadTextFile(Dir() / "scan-stall.log");
  EXPECT_NE(log.find("stalled"), std::string::npos) << log;
  nlohmann::json summary = ReadJson(results / "st-stall" / "summary.json");
  EXPECT_EQ(summary["status"], "ended") << summary.dump(2);
  EXPECT_GE(summary["reconnects"].get<int>(), 1) << summary.dump(2);
  EXPECT_GT(summary["stream_seconds"].get<double>(), 15.0) << summary.dump(2);
}

// The bucket is down when the results are written and comes back later;
// the webhook answers 500 twice. Nothing is lost, nothing is sent twice
// under different keys.
TEST_F(ScanE2eTest, BucketDownForAWhileAndFailingWebhookLoseNothing) {
  auto s3 = support::S3rver::Start();
  ASSERT_TRUE(s3) << s3.error().ToString();
  ASSERT_TRUE((*s3)->Stop());
  auto webhook = support::HttpListener::Start(support::HttpListener::StatusScript({500, 500, 200}));
  ASSERT_TRUE(webhook) << webhook.error().ToString();
  ::setenv("EARSHOT_E2E_S3_ACCESS", (*s3)->options().access_key.c_str(), 1);
  ::setenv("EARSHOT_E2E_S3_SECRET", (*s3)->options().secret_key.c_str(), 1);
  ::setenv("EARSHOT_WEBHOOK_SECRET", kWebhookSecret, 1);
  const fs::path results = Dir() / "results-down";
  ChildProcess scan = StartScan(
      {music_under_voice_.string(), "--stream-id", "st-down", "--results", results.string(),
       "--delivery-timeout", "60",
       "--sink",
       "s3:endpoint=" + (*s3)->endpoint() + ",bucket=" + (*s3)->options().bucket +
           ",access_key_env=EARSHOT_E2E_S3_ACCESS,secret_key_env=EARSHOT_E2E_S3_SECRET",
       "--notify", "webhook:url=" + (*webhook)->Url("/hook")},
      Dir() / "scan-down.log");
  // Results are written while the bucket is down: they wait in the spool.
  for (int i = 0; i < 300 && !fs::exists(results / "st-down" / "summary.json"); ++i) {
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(fs::exists(results / "st-down" / "summary.json"));
  std::this_thread::sleep_for(2s);
  EXPECT_TRUE(scan.running()) << "the scan should be waiting for the bucket";
  ASSERT_TRUE((*s3)->Restart()) << (*s3)->LogTail();
  auto exited = scan.Wait(90s);
  ASSERT_TRUE(exited.has_value()) << support::ReadTextFile(Dir() / "scan-down.log");
  EXPECT_TRUE(exited->success()) << support::ReadTextFile(Dir() / "scan-down.log");
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(results / "st-down")) {
    ++files;
    bool in_bucket = false;
    for (const auto& o : fs::recursive_directory_iterator((*s3)->data_dir())) {
      in_bucket = in_bucket || o.path().string().find("st-down/" + e.path().filename().string()) != std::string::npos;
    }
    EXPECT_TRUE(in_bucket) << e.path();
  }
  // Webhook: two 500s, then every file accepted; the retried one kept its key.
  const auto requests = (*webhook)->Requests();
  EXPECT_EQ(requests.size(), files + 2);
  std::set<std::string> keys;
  for (const auto& r : requests) keys.insert(r.Header("Idempotency-Key"));
  EXPECT_EQ(keys.size(), files);
}

// SIGTERM in the middle of a live scan: the running match is ended, every
// response and the summary are written, and the process exits 0.
TEST_F(ScanE2eTest, SigtermFlushesEveryResult) {
  const fs::path results = Dir() / "results-term";
  ChildProcess scan = StartScan({music_under_voice_.string(), "--stream-id", "st-term", "--realtime",
                                 "--results", results.string()},
                                Dir() / "scan-term.log");
  bool started = false;
  for (int i = 0; i < 300 && !started; ++i) {
    std::this_thread::sleep_for(100ms);
    for (const fs::path& f : ResponseFiles(results / "st-term")) {
      started = started || f.filename().string().find("match_started") != std::string::npos;
    }
  }
  ASSERT_TRUE(started) << support::ReadTextFile(Dir() / "scan-term.log");
  ASSERT_TRUE(scan.Signal(SIGTERM));
  auto exited = scan.Wait(30s);
  ASSERT_TRUE(exited.has_value());
  EXPECT_TRUE(exited->success()) << exited->ToString();
  nlohmann::json summary = ReadJson(results / "st-term" / "summary.json");
  EXPECT_EQ(summary["status"], "cancelled");
  ASSERT_FALSE(summary["segments"].empty());
  EXPECT_LT(summary["stream_seconds"].get<double>(), 23.0);  // it did stop early
  bool ended = false;
  for (const fs::path& f : ResponseFiles(results / "st-term")) {
    ended = ended || f.filename().string().find("match_ended") != std::string::npos;
  }
  EXPECT_TRUE(ended);
}

}  // namespace
}  // namespace earshot::scan
