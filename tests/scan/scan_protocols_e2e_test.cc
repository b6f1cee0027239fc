// End to end, the real `earshot` binary on real media (Debian's wesnoth music
// under an espeak-ng voice, encoded by ffmpeg):
//   - live MPEG-TS over SRT (ffmpeg listens, the scan calls) and over UDP
//     (the scan listens, ffmpeg sends), each published in real time by ffmpeg;
//   - a stream whose audio changes sample rate and channel count half-way
//     (two MPEG-TS files byte-concatenated), as a file and live over UDP,
//     ended by SIGTERM while the scan waits for the input to come back;
//   - a stream with random bytes over its middle (a damaged transmission);
//   - `earshot deliver`, sending what a scan left in its delivery spool
//     while the bucket and the webhook were down.
//
// The same change over RTMP is not tested: ffmpeg relays AAC into FLV with
// one AudioSpecificConfig (the first part's, 44.1 kHz stereo) and no new one
// at the change, so the 22.05 kHz mono frames after it are mislabelled and
// fail to decode in any player (checked by hand with `ffmpeg -c copy -f flv`
// and ffmpeg's own decoder); FLV/RTMP cannot carry this change as relayed.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "delivery/webhook_signature.h"
#include "support/ffmpeg_publisher.h"
#include "support/http_listener.h"
#include "scan/scan_e2e_support.h"
#include "support/process.h"
#include "support/s3rver.h"
#include "support/test_media.h"

namespace earshot::scan {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
namespace support = ::earshot::testing;
using support::ChildProcess;

constexpr const char* kWebhookSecret = "e2e-protocols-webhook-secret";

using e2e::ReadJson;
using e2e::ResponseFiles;
using e2e::SourceDir;

size_t CountFiles(const fs::path& folder) {
  size_t n = 0;
  if (!fs::exists(folder)) return 0;
  for (const auto& e : fs::recursive_directory_iterator(folder)) n += e.is_regular_file();
  return n;
}

// A UDP port on 127.0.0.1 that was free a moment ago (SRT runs over UDP too).
uint16_t FreeUdpPort() {
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

// True once some process has a UDP socket bound to `port` (IPv4, from
// /proc/net/udp), false when `timeout` passes first.
bool WaitForUdpBound(uint16_t port, std::chrono::milliseconds timeout) {
  char wanted[8];
  std::snprintf(wanted, sizeof wanted, ":%04X", port);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in("/proc/net/udp");
    std::string line;
    std::getline(in, line);  // the header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local;
      fields >> slot >> local;
      if (local.ends_with(wanted)) return true;
    }
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

// The JSON report line `earshot scan` printed for a stream (stdout and stderr
// share the log file; log lines have "level", the report has "files_written").
nlohmann::json ReportLine(const std::string& log) {
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("files_written")) return j;
  }
  return nullptr;
}

// The segments of `title` in a summary, in stream order.
std::vector<nlohmann::json> Segments(const nlohmann::json& summary, const std::string& title) {
  std::vector<nlohmann::json> out;
  if (!summary.is_object() || !summary.contains("segments")) return out;
  for (const auto& seg : summary["segments"]) {
    if (seg["track"]["title"] == title) out.push_back(seg);
  }
  return out;
}

double TotalSeconds(const std::vector<nlohmann::json>& segments) {
  double total = 0;
  for (const auto& seg : segments) total += seg["duration_s"].get<double>();
  return total;
}

using e2e::RunTool;

// ffmpeg encoding `seconds` of `music` from `offset_s` into an MPEG-TS with
// AAC audio at `rate` Hz and `channels` channels, its timestamps starting at
// `ts_offset_s`.
support::CommandResult MakeTs(const fs::path& music, double offset_s, double seconds, int rate,
                              int channels, double ts_offset_s, const fs::path& out) {
  return RunTool({"ffmpeg",
                  "-hide_banner",
                  "-nostdin",
                  "-loglevel",
                  "error",
                  "-y",
                  "-ss",
                  std::to_string(offset_s),
                  "-t",
                  std::to_string(seconds),
                  "-i",
                  music.string(),
                  "-map",
                  "0:a:0",
                  "-c:a",
                  "aac",
                  "-b:a",
                  channels == 1 ? "64k" : "128k",
                  "-ar",
                  std::to_string(rate),
                  "-ac",
                  std::to_string(channels),
                  "-output_ts_offset",
                  std::to_string(ts_offset_s),
                  "-f",
                  "mpegts",
                  out.string()},
                 60s);
}

class ScanProtocolsE2eTest : public ::testing::Test {
 protected:
  // Seconds of each part of the parameter-change stream.
  static constexpr double kPartSeconds = 14;

  static void SetUpTestSuite() {
    auto dir = support::ScopedTempDir::Create("earshot_scan_protocols_e2e");
    ASSERT_TRUE(dir) << dir.error().ToString();
    dir_ = new support::ScopedTempDir(std::move(*dir));
    auto battle = support::WesnothMusic("battle");
    auto knolls = support::WesnothMusic("knolls");
    auto elf = support::WesnothMusic("elf-land");
    ASSERT_TRUE(battle && knolls && elf) << "wesnoth-1.16-music missing";
    for (auto [path, rule] : {std::pair{*battle, "block"}, {*knolls, "mute"}, {*elf, "track"}}) {
      auto r = Earshot(
          {"catalog", "add", "--rule", rule, "--rights-holder", "Wesnoth Project", path.string()});
      ASSERT_TRUE(r.ok()) << r.Describe();
    }
    // 24 s of `battle` from 30 s under a talking streamer.
    auto media = support::MakeMusicUnderVoice(
        Dir(), *battle, 30, 24, "welcome back to the stream everyone, today we try the hard level",
        -2);
    ASSERT_TRUE(media) << media.error().ToString();
    music_under_voice_ = *media;

    // The parameter change: `battle` from 60 s at 44.1 kHz stereo, then
    // `knolls` from 40 s at 22.05 kHz mono, timestamps continuous; the byte
    // concatenation of two MPEG-TS files is one valid MPEG-TS stream.
    const fs::path a = part_a_ = Dir() / "part-a-44100-stereo.ts";
    const fs::path b = part_b_ = Dir() / "part-b-22050-mono.ts";
    auto made_a = MakeTs(*battle, 60, kPartSeconds, 44100, 2, 0, a);
    ASSERT_TRUE(made_a.ok()) << made_a.Describe();
    auto made_b = MakeTs(*knolls, 40, kPartSeconds, 22050, 1, kPartSeconds + 0.2, b);
    ASSERT_TRUE(made_b.ok()) << made_b.Describe();
    change_ts_ = Dir() / "change-44100-stereo-to-22050-mono.ts";
    {
      std::ofstream out(change_ts_, std::ios::binary);
      out << std::ifstream(a, std::ios::binary).rdbuf()
          << std::ifstream(b, std::ios::binary).rdbuf();
      ASSERT_TRUE(out.good());
    }

    // The damaged stream: 24 s of `battle` from 30 s as MPEG-TS with 20,000
    // bytes in the middle replaced by random ones (fixed seed).
    const fs::path clean = Dir() / "battle-clean.ts";
    auto made = MakeTs(*battle, 30, 24, 44100, 2, 0, clean);
    ASSERT_TRUE(made.ok()) << made.Describe();
    std::string bytes = support::ReadTextFile(clean);
    ASSERT_GT(bytes.size(), 100'000u);
    std::mt19937 random(20261121);
    const size_t from = bytes.size() / 2 + 77;  // not on a 188-byte packet boundary
    for (size_t i = from; i < from + 20'000; ++i) bytes[i] = static_cast<char>(random() & 0xff);
    damaged_ts_ = Dir() / "battle-damaged.ts";
    std::ofstream(damaged_ts_, std::ios::binary) << bytes;
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

  // `earshot scan ...` as a background process; stdout and stderr in `log`.
  static ChildProcess StartScan(std::vector<std::string> args, const fs::path& log) {
    return e2e::StartEarshotScan(Catalog(), std::move(args), log);
  }

  static void ExpectSchemaValid(const fs::path& results) { e2e::ExpectSchemaValid(results); }

  // Checks the scan of the voice-over-`battle` media (battle from 30 s, all
  // of it received): the right track under its rule, at the right place in
  // the reference, started and ended; returns the summary.
  static nlohmann::json ExpectVoiceOverBattle(const fs::path& results, const std::string& stream) {
    nlohmann::json summary = ReadJson(results / stream / "summary.json");
    EXPECT_TRUE(summary.is_object()) << results / stream / "summary.json";
    const auto battle = Segments(summary, "battle");
    EXPECT_FALSE(battle.empty()) << summary.dump(2);
    EXPECT_GE(TotalSeconds(battle), 16.0) << summary.dump(2);
    EXPECT_TRUE(Segments(summary, "knolls").empty()) << "a track that was not played";
    EXPECT_TRUE(Segments(summary, "elf-land").empty()) << "a track that was not played";
    for (const auto& seg : battle) EXPECT_EQ(seg["rule"], "block");
    const auto files = ResponseFiles(results / stream);
    EXPECT_GE(files.size(), 2u);
    if (files.empty()) return summary;
    const nlohmann::json first = ReadJson(files.front());
    EXPECT_EQ(first["status"], "match_started");
    EXPECT_EQ(first["track"]["title"], "battle");
    // The stream starts 30 s into `battle`, and none of it is lost.
    EXPECT_NEAR(
        first["reference"]["start_s"].get<double>() - first["stream"]["start_s"].get<double>(),
        30.0, 1.0)
        << first.dump(2);
    EXPECT_LT(first["stream"]["start_s"].get<double>(), 5.0) << first.dump(2);
    bool ended = false;
    for (const fs::path& f : files) ended = ended || ReadJson(f)["status"] == "match_ended";
    EXPECT_TRUE(ended);
    return summary;
  }

  // Checks a scan of the parameter-change stream: `battle` before the change,
  // `knolls` after it at the right place in its reference.
  static void ExpectBothSidesOfTheChange(const nlohmann::json& summary) {
    const auto battle = Segments(summary, "battle");
    const auto knolls = Segments(summary, "knolls");
    ASSERT_FALSE(battle.empty()) << summary.dump(2);
    ASSERT_FALSE(knolls.empty()) << "nothing identified after the change: " << summary.dump(2);
    EXPECT_LT(battle.front()["start_s"].get<double>(), 3.0) << summary.dump(2);
    EXPECT_GE(TotalSeconds(battle), 8.0) << summary.dump(2);
    EXPECT_EQ(knolls.front()["rule"], "mute");
    // After the change, and the audio there is decoded at its new rate: the
    // reference position follows the stream one for one.
    const double start = knolls.front()["start_s"].get<double>();
    EXPECT_GE(start, kPartSeconds - 1.0) << summary.dump(2);
    EXPECT_LT(start, kPartSeconds + 5.0) << summary.dump(2);
    EXPECT_NEAR(knolls.front()["reference_start_s"].get<double>() - start, 40.0 - kPartSeconds, 1.0)
        << summary.dump(2);
    EXPECT_GE(TotalSeconds(knolls), 8.0) << summary.dump(2);
    EXPECT_TRUE(Segments(summary, "elf-land").empty());
    EXPECT_FALSE(summary["edits"]["mute"].empty()) << summary.dump(2);
    EXPECT_FALSE(summary["edits"]["cut"].empty()) << summary.dump(2);
  }

  static inline support::ScopedTempDir* dir_ = nullptr;
  static inline fs::path music_under_voice_;
  static inline fs::path part_a_, part_b_;  // the two parts of change_ts_
  static inline fs::path change_ts_;
  static inline fs::path damaged_ts_;
};

// ffmpeg publishes MPEG-TS (H.264 + AAC) as an SRT listener; the scan calls
// it. When ffmpeg is done the connection drops, reconnecting fails, and the
// scan ends with everything written.
TEST_F(ScanProtocolsE2eTest, SrtCallerScansALiveMpegTs) {
  const uint16_t port = FreeUdpPort();
  ASSERT_NE(port, 0);
  support::FfmpegPublisherOptions pub;
  pub.input = music_under_voice_;
  pub.format = "mpegts";
  pub.url = "srt://127.0.0.1:" + std::to_string(port) + "?mode=listener";
  auto publisher = support::FfmpegPublisher::Start(pub);
  ASSERT_TRUE(publisher) << publisher.error().ToString();
  ASSERT_TRUE(WaitForUdpBound(port, 20s)) << (*publisher)->log_text();

  const fs::path results = Dir() / "results-srt";
  const fs::path log = Dir() / "scan-srt.log";
  ChildProcess scan =
      StartScan({"srt://127.0.0.1:" + std::to_string(port) + "?mode=caller", "--stream-id",
                 "st-srt", "--channel", "ch-srt", "--results", results.string(), "--stall-timeout",
                 "5", "--reconnects", "1", "--reconnect-backoff", "0.5"},
                log);
  auto published = (*publisher)->Wait(90s);
  ASSERT_TRUE(published.has_value()) << (*publisher)->log_text();
  EXPECT_TRUE(published->success()) << published->ToString() << (*publisher)->log_text();
  auto exited = scan.Wait(60s);
  ASSERT_TRUE(exited.has_value()) << support::ReadTextFile(log);
  EXPECT_TRUE(exited->success()) << exited->ToString() << support::ReadTextFile(log);

  const std::string text = support::ReadTextFile(log);
  nlohmann::json report = ReportLine(text);
  ASSERT_TRUE(report.is_object()) << text;
  EXPECT_EQ(report["status"], "ended") << text;
  EXPECT_GE(report["matches"].get<int>(), 1) << text;
  EXPECT_NE(text.find("\"codec\":\"aac\""), std::string::npos) << text;
  nlohmann::json summary = ExpectVoiceOverBattle(results, "st-srt");
  EXPECT_EQ(summary["status"], "ended") << summary.dump(2);
  EXPECT_EQ(summary["channel_id"], "ch-srt");
  EXPECT_GT(summary["stream_seconds"].get<double>(), 20.0) << summary.dump(2);
  EXPECT_LT(summary["stream_seconds"].get<double>(), 25.0) << summary.dump(2);
  ExpectSchemaValid(results);
}

// The scan listens on a UDP port and ffmpeg sends MPEG-TS to it. UDP has no
// end: when the packets stop, the scan sees a stall, tries again, sees
// nothing again, and ends (exit 0) with the reason in the summary.
TEST_F(ScanProtocolsE2eTest, UdpMpegTsEndsByStallTimeout) {
  const uint16_t port = FreeUdpPort();
  ASSERT_NE(port, 0);
  const fs::path results = Dir() / "results-udp";
  const fs::path log = Dir() / "scan-udp.log";
  const std::string input = "udp://127.0.0.1:" + std::to_string(port) + "?localaddr=127.0.0.1";
  // The stall timeout also bounds the wait for the first packet: long enough
  // for ffmpeg to start on a busy machine.
  ChildProcess scan =
      StartScan({input, "--stream-id", "st-udp", "--results", results.string(), "--stall-timeout",
                 "5", "--reconnects", "1", "--reconnect-backoff", "0.5"},
                log);
  // Packets sent before the scan listens would be lost.
  ASSERT_TRUE(WaitForUdpBound(port, 20s)) << support::ReadTextFile(log);

  support::FfmpegPublisherOptions pub;
  pub.input = music_under_voice_;
  pub.format = "mpegts";
  pub.url = "udp://127.0.0.1:" + std::to_string(port) + "?pkt_size=1316";
  auto publisher = support::FfmpegPublisher::Start(pub);
  ASSERT_TRUE(publisher) << publisher.error().ToString();
  auto published = (*publisher)->Wait(90s);
  ASSERT_TRUE(published.has_value()) << (*publisher)->log_text();
  EXPECT_TRUE(published->success()) << published->ToString() << (*publisher)->log_text();
  const auto publisher_done = std::chrono::steady_clock::now();
  auto exited = scan.Wait(60s);
  ASSERT_TRUE(exited.has_value()) << support::ReadTextFile(log);
  EXPECT_TRUE(exited->success()) << exited->ToString() << support::ReadTextFile(log);
  // Stall (5 s) + backoff (0.5 s) + a reconnect that stalls (5 s), plus slack
  // for a busy machine: not the 60 s of the wait.
  EXPECT_LT(std::chrono::steady_clock::now() - publisher_done, 30s);

  const std::string text = support::ReadTextFile(log);
  EXPECT_NE(text.find("stalled"), std::string::npos) << text;
  EXPECT_NE(text.find("input gone; scan ends"), std::string::npos) << text;
  nlohmann::json report = ReportLine(text);
  ASSERT_TRUE(report.is_object()) << text;
  EXPECT_EQ(report["status"], "ended") << text;
  nlohmann::json summary = ExpectVoiceOverBattle(results, "st-udp");
  EXPECT_EQ(summary["status"], "ended") << summary.dump(2);
  EXPECT_EQ(summary["error"]["code"], "unavailable") << summary.dump(2);  // why it ended
  EXPECT_NE(summary["error"]["message"].get<std::string>().find("stalled"), std::string::npos);
  EXPECT_EQ(summary["reconnects"].get<int>(), 0) << summary.dump(2);  // no reconnect succeeded
  EXPECT_GT(summary["stream_seconds"].get<double>(), 20.0) << summary.dump(2);
  EXPECT_LT(summary["stream_seconds"].get<double>(), 25.0) << summary.dump(2);
  ExpectSchemaValid(results);
}

// 44.1 kHz stereo, then 22.05 kHz mono, in one MPEG-TS, scanned as a file:
// the decoder follows the change and the music after it is identified.
TEST_F(ScanProtocolsE2eTest, CodecParameterChangeInAFile) {
  // The test's premise: the parts have the parameters they should, and the
  // file has the second part's frames (mono) after the first part's.
  for (const auto& [part, expected] : {std::pair{part_a_, "44100,2"}, {part_b_, "22050,1"}}) {
    auto probed = RunTool({"ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
                           "stream=sample_rate,channels", "-of", "csv=p=0", part.string()},
                          30s);
    ASSERT_TRUE(probed.ok()) << probed.Describe();
    EXPECT_EQ(probed.stdout_text.substr(0, probed.stdout_text.find('\n')), expected) << part;
  }
  auto channels = RunTool({"ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
                           "frame=channels", "-of", "csv=p=0", change_ts_.string()},
                          30s);
  ASSERT_TRUE(channels.ok()) << channels.Describe();
  const std::string& per_frame = channels.stdout_text;
  ASSERT_NE(per_frame.find("2\n1\n"), std::string::npos) << "no change from stereo to mono";

  const fs::path results = Dir() / "results-change-file";
  auto r = Earshot(
      {"scan", change_ts_.string(), "--stream-id", "st-change", "--results", results.string()});
  ASSERT_TRUE(r.ok()) << r.Describe();
  nlohmann::json report = ReportLine(r.stdout_text);
  ASSERT_TRUE(report.is_object()) << r.stdout_text;
  EXPECT_EQ(report["status"], "ended");
  EXPECT_FALSE(report.contains("error")) << report.dump();
  nlohmann::json summary = ReadJson(results / "st-change" / "summary.json");
  EXPECT_EQ(summary["status"], "ended") << summary.dump(2);
  EXPECT_FALSE(summary.contains("error")) << summary.dump(2);
  // All of both parts was decoded, each at its own rate.
  EXPECT_NEAR(summary["stream_seconds"].get<double>(), 2 * kPartSeconds, 1.5) << summary.dump(2);
  ExpectBothSidesOfTheChange(summary);
  ExpectSchemaValid(results);
}

// The same stream live over UDP (ffmpeg relays it with -c:a copy, so the
// change reaches the scanner as it is). After the stream, the scan waits for
// it to come back (many reconnects allowed) until SIGTERM ends it cleanly.
TEST_F(ScanProtocolsE2eTest, CodecParameterChangeOverUdpThenSigterm) {
  const uint16_t port = FreeUdpPort();
  ASSERT_NE(port, 0);
  const fs::path results = Dir() / "results-change-udp";
  const fs::path log = Dir() / "scan-change-udp.log";
  ChildProcess scan =
      StartScan({"udp://127.0.0.1:" + std::to_string(port) + "?localaddr=127.0.0.1", "--stream-id",
                 "st-change-udp", "--results", results.string(), "--stall-timeout", "4",
                 "--reconnects", "100", "--reconnect-backoff", "0.5"},
                log);
  ASSERT_TRUE(WaitForUdpBound(port, 20s)) << support::ReadTextFile(log);

  support::FfmpegPublisherOptions pub;
  pub.input = change_ts_;
  pub.format = "mpegts";
  pub.copy_audio = true;
  pub.video = false;
  pub.url = "udp://127.0.0.1:" + std::to_string(port) + "?pkt_size=1316";
  auto publisher = support::FfmpegPublisher::Start(pub);
  ASSERT_TRUE(publisher) << publisher.error().ToString();
  auto published = (*publisher)->Wait(90s);
  ASSERT_TRUE(published.has_value()) << (*publisher)->log_text();
  EXPECT_TRUE(published->success()) << published->ToString() << (*publisher)->log_text();

  // The scan notices the silence and keeps trying to get the stream back...
  bool waiting = false;
  for (int i = 0; i < 300 && !waiting; ++i) {
    waiting = support::ReadTextFile(log).find("input lost; reconnecting") != std::string::npos;
    if (!waiting) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(waiting) << support::ReadTextFile(log);
  EXPECT_TRUE(scan.running()) << support::ReadTextFile(log);
  // ...until SIGTERM, which ends it at once with every result written.
  ASSERT_TRUE(scan.Signal(SIGTERM));
  auto exited = scan.Wait(15s);
  ASSERT_TRUE(exited.has_value()) << "SIGTERM did not end the scan\n" << support::ReadTextFile(log);
  EXPECT_TRUE(exited->success()) << exited->ToString() << support::ReadTextFile(log);

  const std::string text = support::ReadTextFile(log);
  nlohmann::json report = ReportLine(text);
  ASSERT_TRUE(report.is_object()) << text;
  EXPECT_EQ(report["status"], "cancelled") << text;
  nlohmann::json summary = ReadJson(results / "st-change-udp" / "summary.json");
  EXPECT_EQ(summary["status"], "cancelled") << summary.dump(2);
  EXPECT_GT(summary["stream_seconds"].get<double>(), 2 * kPartSeconds - 3) << summary.dump(2);
  ExpectBothSidesOfTheChange(summary);
  // Every match was ended and written, the last one by the cancellation.
  std::map<std::string, std::set<std::string>> statuses;  // by match id
  for (const fs::path& f : ResponseFiles(results / "st-change-udp")) {
    const nlohmann::json j = ReadJson(f);
    statuses[j["match_id"]].insert(j["status"]);
  }
  ASSERT_GE(statuses.size(), 2u);
  for (const auto& [match, seen] : statuses) {
    EXPECT_TRUE(seen.count("match_started") && seen.count("match_ended")) << match;
  }
  ExpectSchemaValid(results);
}

// 20 kB of random bytes over the middle of the stream: the demuxer resyncs,
// the damage is counted, and the music after it is identified again.
TEST_F(ScanProtocolsE2eTest, GarbageInTheMiddleIsSkippedAndCounted) {
  const fs::path results = Dir() / "results-damaged";
  auto r = Earshot(
      {"scan", damaged_ts_.string(), "--stream-id", "st-damaged", "--results", results.string()});
  ASSERT_TRUE(r.ok()) << r.Describe();
  nlohmann::json report = ReportLine(r.stdout_text);
  ASSERT_TRUE(report.is_object()) << r.stdout_text;
  EXPECT_EQ(report["status"], "ended");
  EXPECT_GE(report["damaged_packets"].get<int>(), 1) << report.dump();
  nlohmann::json summary = ReadJson(results / "st-damaged" / "summary.json");
  EXPECT_EQ(summary["status"], "ended") << summary.dump(2);
  EXPECT_EQ(summary["damaged_packets"], report["damaged_packets"]);
  const auto battle = Segments(summary, "battle");
  ASSERT_FALSE(battle.empty()) << summary.dump(2);
  // The damage is about half-way (12 s); the music is identified well after
  // it, at about the right place (the lost second or so is not filled in).
  const nlohmann::json& last = battle.back();
  EXPECT_GE(last["end_s"].get<double>(), 18.0) << summary.dump(2);
  const double offset = last["reference_start_s"].get<double>() - last["start_s"].get<double>();
  EXPECT_GE(offset, 29.0) << summary.dump(2);
  EXPECT_LE(offset, 33.0) << summary.dump(2);
  EXPECT_GE(TotalSeconds(battle), 16.0) << summary.dump(2);
  ExpectSchemaValid(results);
}

// A scan ends while the bucket is down and the webhook answers 503: its
// results stay in the spool. `earshot deliver` sends them later, and says
// what is left and why when it cannot.
TEST_F(ScanProtocolsE2eTest, DeliverSendsWhatAScanLeftSpooled) {
  auto s3 = support::S3rver::Start();
  ASSERT_TRUE(s3) << s3.error().ToString();
  ASSERT_TRUE((*s3)->Stop());
  auto webhook = support::HttpListener::Start(support::HttpListener::StatusScript({503}));
  ASSERT_TRUE(webhook) << webhook.error().ToString();
  ::setenv("EARSHOT_E2E_S3_ACCESS", (*s3)->options().access_key.c_str(), 1);
  ::setenv("EARSHOT_E2E_S3_SECRET", (*s3)->options().secret_key.c_str(), 1);
  ::setenv("EARSHOT_WEBHOOK_SECRET", kWebhookSecret, 1);
  const std::string sink = "s3:endpoint=" + (*s3)->endpoint() +
                           ",bucket=" + (*s3)->options().bucket +
                           ",prefix=later,access_key_env=EARSHOT_E2E_S3_ACCESS,"
                           "secret_key_env=EARSHOT_E2E_S3_SECRET";
  const std::string notify = "webhook:url=" + (*webhook)->Url("/hook");
  const fs::path results = Dir() / "results-deliver";

  auto scanned =
      Earshot({"scan", music_under_voice_.string(), "--stream-id", "st-later", "--results",
               results.string(), "--delivery-timeout", "1", "--sink", sink, "--notify", notify});
  ASSERT_TRUE(scanned.ok()) << scanned.Describe();
  const size_t files = CountFiles(results / "st-later");
  ASSERT_GE(files, 3u);  // started, ended, summary
  ASSERT_EQ(CountFiles(results / ".outbox" / "s3"), files);
  ASSERT_EQ(CountFiles(results / ".outbox" / "webhook"), files);

  // Usage errors: no target, no such folder.
  auto no_target = Earshot({"deliver", "--results", results.string()});
  EXPECT_EQ(no_target.status.code(), 2) << no_target.Describe();
  EXPECT_NE(no_target.stderr_text.find("--sink"), std::string::npos) << no_target.stderr_text;
  auto no_folder =
      Earshot({"deliver", "--results", (Dir() / "nowhere").string(), "--notify", notify});
  EXPECT_EQ(no_folder.status.code(), 2) << no_folder.Describe();
  EXPECT_NE(no_folder.stderr_text.find("does not exist"), std::string::npos)
      << no_folder.stderr_text;

  // The webhook still fails and the bucket is not given: exit 1, and why.
  auto still_down =
      Earshot({"deliver", "--results", results.string(), "--notify", notify, "--timeout", "3"});
  EXPECT_EQ(still_down.status.code(), 1) << still_down.Describe();
  nlohmann::json partial = nlohmann::json::parse(still_down.stdout_text, nullptr, false);
  ASSERT_TRUE(partial.is_object()) << still_down.stdout_text;
  EXPECT_EQ(partial["delivered"], 0);
  EXPECT_EQ(partial["pending"], 2 * files) << partial.dump(2);
  for (const auto& t : partial["targets"]) {
    if (t["name"] == "webhook") {
      EXPECT_EQ(t["configured"], true);
      EXPECT_NE(t["last_error"].get<std::string>().find("503"), std::string::npos) << t.dump();
    } else {
      EXPECT_EQ(t["name"], "s3");
      EXPECT_EQ(t["configured"], false);
      EXPECT_EQ(t["pending"], files);
    }
  }
  EXPECT_NE(still_down.stderr_text.find("503"), std::string::npos) << still_down.stderr_text;
  EXPECT_NE(still_down.stderr_text.find("'s3', which was not given"), std::string::npos)
      << still_down.stderr_text;
  EXPECT_EQ(CountFiles(results / ".outbox"), 2 * files);

  // Both come back: everything is delivered and the spool is empty.
  ASSERT_TRUE((*s3)->Restart()) << (*s3)->LogTail();
  const size_t failed_requests = (*webhook)->request_count();
  (*webhook)->SetScript(support::HttpListener::StatusScript({200}));
  auto delivered = Earshot({"deliver", "--results", results.string(), "--sink", sink, "--notify",
                            notify, "--timeout", "60"});
  ASSERT_TRUE(delivered.ok()) << delivered.Describe();
  nlohmann::json done = nlohmann::json::parse(delivered.stdout_text, nullptr, false);
  ASSERT_TRUE(done.is_object()) << delivered.stdout_text;
  EXPECT_EQ(done["spooled"], 2 * files);
  EXPECT_EQ(done["delivered"], 2 * files);
  EXPECT_EQ(done["pending"], 0);
  EXPECT_EQ(CountFiles(results / ".outbox"), 0u);
  // In the bucket: every file, under prefix/stream/file.
  for (const auto& e : fs::directory_iterator(results / "st-later")) {
    bool in_bucket = false;
    for (const auto& o : fs::recursive_directory_iterator((*s3)->data_dir())) {
      in_bucket =
          in_bucket || o.path().string().find("later/st-later/" + e.path().filename().string()) !=
                           std::string::npos;
    }
    EXPECT_TRUE(in_bucket) << "not in the bucket: " << e.path();
  }
  // At the webhook: one accepted, signed POST per file, keyed by the file.
  const auto requests = (*webhook)->Requests();
  ASSERT_EQ(requests.size(), failed_requests + files);
  std::set<std::string> keys;
  for (size_t i = failed_requests; i < requests.size(); ++i) {
    keys.insert(requests[i].Header("Idempotency-Key"));
    auto verified =
        delivery::VerifyWebhookSignature(kWebhookSecret, requests[i].Header("X-Earshot-Signature"),
                                         requests[i].body, std::time(nullptr), 600);
    EXPECT_TRUE(verified) << (verified ? "" : verified.error().ToString());
  }
  std::set<std::string> expected;
  for (const auto& e : fs::directory_iterator(results / "st-later")) {
    expected.insert("st-later/" + e.path().filename().string());
  }
  EXPECT_EQ(keys, expected);

  // Nothing left: a second run has nothing to do and says so with exit 0.
  auto again =
      Earshot({"deliver", "--results", results.string(), "--sink", sink, "--notify", notify});
  EXPECT_TRUE(again.ok()) << again.Describe();
  nlohmann::json nothing = nlohmann::json::parse(again.stdout_text, nullptr, false);
  EXPECT_EQ(nothing["spooled"], 0) << again.stdout_text;
  EXPECT_EQ((*webhook)->request_count(), failed_requests + files);
}

}  // namespace
}  // namespace earshot::scan
