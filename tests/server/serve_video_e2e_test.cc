// End to end, video: a re-streamed clip of a catalogued video reference is
// pushed through the real nginx-rtmp to the real `earshot serve`; the scanner
// matches its frames, the `block` rule stops the stream and resets its key;
// thumbnails of the live stream are stored and served; the moderation hook
// sends thumbnails to an operator's classifier (a real HTTP listener on
// 127.0.0.1) and acts on its verdict.
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include <nlohmann/json.hpp>

#include "server/serve_fixture.h"
#include "support/ffmpeg_publisher.h"
#include "support/http_listener.h"
#include "support/process.h"

namespace earshot::server {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
namespace support = ::earshot::testing;
using e2e::ApiResponse;
using e2e::ServeE2eTest;

class ServeVideoE2eTest : public ServeE2eTest {
 protected:
  // Footage made once per process: a "broadcast" (the protected reference,
  // lavfi's mandelbrot zoom) and its re-stream: 24 s starting 4 s into the
  // broadcast, scaled down, under a caption band, with unrelated audio (a
  // tone: the audio catalog cannot help).
  void SetUp() override {
    ServeE2eTest::SetUp();
    if (HasFatalFailure()) return;
    footage_ = Dir() / "video-footage";
    if (fs::exists(footage_ / "restream.mkv")) return;
    fs::create_directories(footage_);
    const std::string source = "mandelbrot=size=480x270:rate=25,rotate=a=0.35*t:fillcolor=black,hue=h=18*t";
    auto ref = support::RunCommand(
        {"ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", source, "-t", "32", "-c:v", "libx264",
         "-preset", "veryfast", "-pix_fmt", "yuv420p", (footage_ / "broadcast.mp4").string()},
        180s);
    ASSERT_TRUE(ref && ref->ok()) << (ref ? ref->stderr_text : ref.error().ToString());
    auto clip = support::RunCommand(
        {"ffmpeg", "-v", "error", "-y", "-ss", "4", "-i", (footage_ / "broadcast.mp4").string(),
         "-f", "lavfi", "-i", "sine=frequency=330:sample_rate=44100", "-t", "24", "-filter_complex",
         "[0:v]scale=400:224,drawbox=x=0:y=ih*0.82:w=iw:h=ih*0.18:color=navy@0.9:t=fill[v]", "-map",
         "[v]", "-map", "1:a", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
         "-c:a", "flac", (footage_ / "restream.mkv").string()},
        180s);
    ASSERT_TRUE(clip && clip->ok()) << (clip ? clip->stderr_text : clip.error().ToString());
  }

  // A catalog of its own holding the broadcast as a `block` video reference.
  static fs::path VideoCatalog() {
    const fs::path dir = Dir() / "video-catalog";
    if (fs::exists(dir / "catalog.db")) return dir;
    auto r = support::RunCommand({EARSHOT_BINARY, "--catalog", dir.string(), "catalog", "add",
                                  "--video", "--rule", "block", "--title", "cup final",
                                  "--rights-holder", "League TV", "--no-progress",
                                  (footage_ / "broadcast.mp4").string()},
                                 120s);
    EXPECT_TRUE(r && r->ok()) << (r ? r->stdout_text + r->stderr_text : r.error().ToString());
    return dir;
  }

  static std::unique_ptr<support::FfmpegPublisher> PublishVideo(const e2e::Deployment& d,
                                                                const fs::path& media,
                                                                const std::string& key) {
    support::FfmpegPublisherOptions pub;
    pub.input = media;
    pub.url = d.rtmp_ingest_url(key);
    pub.video_from_input = true;
    auto p = support::FfmpegPublisher::Start(pub);
    EXPECT_TRUE(p) << p.error().ToString();
    return p ? std::move(*p) : nullptr;
  }

  static fs::path footage_;
};

fs::path ServeVideoE2eTest::footage_;

TEST_F(ServeVideoE2eTest, ReStreamedVideoIsStoppedAndItsKeyReset) {
  e2e::DeployOptions o;
  o.catalog_dir = VideoCatalog();
  o.extra_toml = "[video]\nthumbnail_every_s = 2\n";
  auto d = Deploy("video-block", o);
  ASSERT_TRUE(d);
  auto [channel, key] = CreateChannel(*d, {{"name", "restreamer"}});
  ASSERT_FALSE(channel.empty());
  auto publisher = PublishVideo(*d, footage_ / "restream.mkv", key);
  ASSERT_TRUE(publisher);

  std::vector<nlohmann::json> seen;
  auto start = d->WaitForEvent([&](const auto& e) { return IsEvent(e, "Stream Start", channel); }, 20s, &seen);
  ASSERT_TRUE(start) << d->ServeLog();
  const std::string stream_id = (*start)["stream_id"];

  auto ident = d->WaitForEvent([&](const auto& e) { return IsEvent(e, "Identification", channel); }, 30s, &seen);
  ASSERT_TRUE(ident) << d->ServeLog() << publisher->log_text();
  EXPECT_EQ((*ident)["detail"]["match_type"], "video") << ident->dump();
  EXPECT_EQ((*ident)["detail"]["track"]["title"], "cup final");
  EXPECT_EQ((*ident)["detail"]["rule"], "block");
  // The clip starts 4 s into the broadcast: the reference offset says so.
  const double stream_s = (*ident)["detail"]["stream_offset_s"].get<double>();
  const double ref_s = (*ident)["detail"]["reference_offset_s"].get<double>();
  EXPECT_NEAR(ref_s - stream_s, 4.0, 2.0) << ident->dump();

  auto applied = d->WaitForEvent([&](const auto& e) { return IsEvent(e, "Rule Applied", channel); }, 20s, &seen);
  ASSERT_TRUE(applied) << d->ServeLog();
  EXPECT_EQ((*applied)["detail"]["action"], "stop_and_reset_key") << applied->dump();
  ASSERT_TRUE(d->WaitForEvent([&](const auto& e) { return IsEvent(e, "Stream End", channel); }, 20s, &seen));
  EXPECT_TRUE(publisher->Wait(15s).has_value()) << "the publisher is still connected";

  // The old key no longer publishes.
  auto again = PublishVideo(*d, footage_ / "restream.mkv", key);
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->Wait(15s).has_value()) << "a reset key was accepted";
  EXPECT_EQ(d->Call("GET", "/v1/channels/" + channel + "/stream").status, 404);

  // The video match is on disk as an identification response.
  const fs::path results = d->data_dir() / "results" / stream_id;
  bool video_response = false;
  for (const auto& e : fs::directory_iterator(results)) {
    if (e.path().extension() != ".json" || e.path().filename() == "summary.json") continue;
    auto text = support::ReadTextFile(e.path());
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_discarded() && j.value("match_type", "") == "video") video_response = true;
  }
  EXPECT_TRUE(video_response);
}

TEST_F(ServeVideoE2eTest, ThumbnailsAreStoredAndModerationVerdictsAreApplied) {
  auto classifier = support::HttpListener::Start();
  ASSERT_TRUE(classifier) << classifier.error().ToString();
  // The first picture is allowed, the second flagged, then blocked.
  std::atomic<int> calls{0};
  (*classifier)->SetHandler([&](const support::RecordedRequest&) {
    const int n = calls.fetch_add(1);
    support::HttpReply reply;
    reply.headers = {{"Content-Type", "application/json"}};
    reply.body = n == 0   ? R"({"verdict": "allow"})"
                 : n == 1 ? R"({"verdict": "flag", "label": "suspicious", "score": 0.6})"
                          : R"({"verdict": "block", "label": "weapon", "score": 0.97})";
    return reply;
  });
  e2e::DeployOptions o;
  o.catalog_dir = VideoCatalog();
  o.extra_toml = "[video]\nthumbnail_every_s = 2\nmoderation_url = \"" +
                 (*classifier)->Url("/classify") + "\"\nblock_action = \"stop\"\n";
  auto d = Deploy("video-moderation", o);
  ASSERT_TRUE(d);
  auto [channel, key] = CreateChannel(*d, {{"name", "cooking"}});
  ASSERT_FALSE(channel.empty());
  // Unrelated music with the fixture's test picture: no catalogued content.
  auto publisher = Publish(*d, track_media_, key);
  ASSERT_TRUE(publisher);
  std::vector<nlohmann::json> seen;
  auto start = d->WaitForEvent([&](const auto& e) { return IsEvent(e, "Stream Start", channel); }, 20s, &seen);
  ASSERT_TRUE(start) << d->ServeLog();
  const std::string stream_id = (*start)["stream_id"];

  // A thumbnail is on the stream resource and served as a JPEG.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  ApiResponse session;
  while (std::chrono::steady_clock::now() < deadline) {
    session = d->Call("GET", "/v1/sessions/" + stream_id);
    if (session.status == 200 && session.body["ingest"].contains("thumbnail")) break;
    std::this_thread::sleep_for(200ms);
  }
  ASSERT_TRUE(session.body["ingest"].contains("thumbnail")) << session.text << d->ServeLog();
  ApiResponse jpeg = d->Call("GET", "/v1/sessions/" + stream_id + "/thumbnail");
  ASSERT_EQ(jpeg.status, 200) << jpeg.text;
  ASSERT_GE(jpeg.text.size(), 4u);
  EXPECT_EQ(static_cast<unsigned char>(jpeg.text[0]), 0xFF);
  EXPECT_EQ(static_cast<unsigned char>(jpeg.text[1]), 0xD8);

  auto flagged = d->WaitForEvent(
      [&](const auto& e) {
        return IsEvent(e, "Identification", channel) && e["detail"].value("verdict", "") == "flag";
      },
      30s, &seen);
  ASSERT_TRUE(flagged) << d->ServeLog();
  EXPECT_EQ((*flagged)["detail"]["match_type"], "moderation");
  EXPECT_EQ((*flagged)["detail"]["rule"], "track");
  auto applied = d->WaitForEvent([&](const auto& e) { return IsEvent(e, "Rule Applied", channel); }, 30s, &seen);
  ASSERT_TRUE(applied) << d->ServeLog();
  EXPECT_EQ((*applied)["detail"]["action"], "stop") << applied->dump();
  EXPECT_EQ((*applied)["detail"]["match_type"], "moderation");
  ASSERT_TRUE(d->WaitForEvent([&](const auto& e) { return IsEvent(e, "Stream End", channel); }, 20s, &seen));
  EXPECT_TRUE(publisher->Wait(15s).has_value()) << "the publisher is still connected";

  // What the classifier received: JPEGs with the stream's identity.
  const auto requests = (*classifier)->Requests();
  ASSERT_GE(requests.size(), 3u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].Header("Content-Type"), "image/jpeg");
  EXPECT_EQ(requests[0].Header("X-Earshot-Stream-Id"), stream_id);
  EXPECT_EQ(requests[0].body.substr(0, 2), "\xFF\xD8");
}

}  // namespace
}  // namespace earshot::server
