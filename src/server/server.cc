#include "server/server.h"

#include <unistd.h>

#include <cstdlib>

#include "common/log.h"
#include "delivery/http_client.h"
#include "delivery/registry.h"
#include "ingest/registry.h"
#include "queue/registry.h"
#include "recognition/memory_index.h"

namespace earshot::server {

namespace {

// A matcher and the snapshot it reads, kept alive together.
struct MatcherBundle {
  std::shared_ptr<const recognition::IndexReader> snapshot;
  recognition::Matcher matcher;
  MatcherBundle(std::shared_ptr<const recognition::IndexReader> s, const recognition::FingerprintParams& p)
      : snapshot(std::move(s)), matcher(*snapshot, p, recognition::QueryParams::Streaming()) {}
};

std::string WorkerId() {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(getpid());
}

Result<std::pair<std::string, int>> SplitHostPort(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return MakeError(ErrorCode::kInvalidArgument, "server.listen: expected HOST:PORT");
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return std::make_pair(host, std::stoi(listen.substr(colon + 1)));
}

}  // namespace

EarshotServer::EarshotServer(ServeConfig config, ServerRole role)
    : config_(std::move(config)), role_(role) {}

EarshotServer::~EarshotServer() { Shutdown(); }

Result<std::unique_ptr<EarshotServer>> EarshotServer::Open(const ServeConfig& config, ServerRole role) {
  std::unique_ptr<EarshotServer> s(new EarshotServer(config, role));
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) {
    return MakeError(ErrorCode::kIoError, "server.data_dir " + config.data_dir +
                                              ": cannot create it: " + ec.message());
  }
  std::filesystem::create_directories(config.ResultsDir(), ec);
  delivery::InitHttpClient();

  auto state = state::OpenStateStore(config.StateUrl());
  if (!state) return std::unexpected(state.error().Wrap("state.url"));
  s->state_ = std::move(*state);

  queue::QueueOptions qopts;
  qopts.backoff.base = std::chrono::milliseconds(static_cast<int64_t>(config.retry_backoff_s * 1000));
  auto queue = queue::OpenJobQueue(config.QueueUrl(), qopts);
  if (!queue) return std::unexpected(queue.error().Wrap("queue.url"));
  s->queue_ = std::move(*queue);

  ingest::IngestSettings isettings;
  isettings.rtmp_url = config.rtmp_url;
  isettings.relay_app = config.relay_app;
  isettings.control_url = config.control_url;
  isettings.playback_url = config.playback_url;
  auto ingest = ingest::MakeIngestController(config.ingest_kind, isettings);
  if (!ingest) return std::unexpected(ingest.error().Wrap("ingest.kind"));
  s->ingest_ = std::move(*ingest);

  catalog::CatalogOptions copts;
  copts.create_if_missing = true;
  copts.read_only = role == ServerRole::kWorker;
  if (role == ServerRole::kWorker) copts.create_if_missing = false;
  auto catalog = catalog::Catalog::Open(config.catalog_dir, copts);
  if (!catalog) return std::unexpected(catalog.error().Wrap("server.catalog_dir " + config.catalog_dir));
  s->catalog_ = std::move(*catalog);

  std::vector<std::unique_ptr<delivery::ResultSink>> sinks;
  std::vector<std::unique_ptr<delivery::Notifier>> notifiers;
  for (const std::string& spec : config.sinks) {
    auto sink = delivery::MakeSink(spec);
    if (!sink) return std::unexpected(sink.error().Wrap("delivery.sinks"));
    sinks.push_back(std::move(*sink));
  }
  for (const std::string& spec : config.notify) {
    auto n = delivery::MakeNotifier(spec);
    if (!n) return std::unexpected(n.error().Wrap("delivery.notify"));
    notifiers.push_back(std::move(*n));
  }
  delivery::OutboxOptions oopts;
  oopts.results_dir = config.ResultsDir();
  auto outbox = delivery::Outbox::Open(oopts, std::move(sinks), std::move(notifiers));
  if (!outbox) return std::unexpected(outbox.error().Wrap("delivery"));
  s->outbox_ = std::move(*outbox);

  ControlPlaneDeps deps;
  deps.config = &s->config_;
  deps.state = s->state_.get();
  deps.queue = s->queue_.get();
  deps.ingest = s->ingest_.get();
  deps.metrics = &s->metrics_;
  deps.catalog = s->catalog_.get();
  EarshotServer* raw = s.get();
  deps.job_enqueued = [raw] {
    if (raw->workers_) raw->workers_->Poke();
  };
  if (!config.moderation_url.empty() && config.workers > 0) {
    delivery::ModerationClientOptions mopts;
    mopts.url = config.moderation_url;
    mopts.timeout_s = config.moderation_timeout_s;
    if (!config.moderation_secret_env.empty()) {
      const char* secret = std::getenv(config.moderation_secret_env.c_str());
      if (secret == nullptr || *secret == '\0') {
        return MakeError(ErrorCode::kInvalidArgument,
                         "video.moderation_secret_env: the environment variable " +
                             config.moderation_secret_env + " is not set");
      }
      mopts.secret = secret;
    }
    auto client = delivery::ModerationClient::Create(mopts);
    if (!client) return std::unexpected(client.error().Wrap("video.moderation_url"));
    s->moderation_ = std::make_unique<ModerationService>(
        std::move(*client), config.ResultsDir(),
        [raw](const ScanJob& job, const nlohmann::json& response) {
          raw->control_->OnResponse(job, response);
        });
    deps.thumbnail_stored = [raw](const ScanJob& job, const scan::ThumbnailInfo& info) {
      raw->moderation_->Submit(job, info);
    };
  }
  s->control_ = std::make_unique<ControlPlane>(deps);

  if (role == ServerRole::kServe) {
    PlaybackServiceOptions popts;
    popts.max_keys = static_cast<size_t>(config.max_playback_keys);
    popts.viewer_idle_ms = static_cast<int64_t>(config.viewer_idle_s * 1000);
    popts.geoip_database = config.geoip_database;
    auto playback = PlaybackService::Open(*s->state_, &s->metrics_, popts);
    if (!playback) return std::unexpected(playback.error());
    s->playback_ = std::move(*playback);
    s->alarms_ = std::make_unique<AlarmService>(*s->state_, *s->playback_, *s->control_, &s->metrics_);
    if (Status r = s->alarms_->Load(); !r) return std::unexpected(r.error());
  }
  return s;
}

std::shared_ptr<const recognition::Matcher> EarshotServer::NewMatcher() {
  if (role_ == ServerRole::kWorker) {
    if (Status r = catalog_->Refresh(); !r) {
      Log(LogLevel::kWarn, "catalog refresh failed; scanning with the tracks known so far",
          {{"error", r.error().ToString()}});
    }
  }
  auto bundle = std::make_shared<MatcherBundle>(catalog_->Snapshot(), catalog_->params());
  return std::shared_ptr<const recognition::Matcher>(bundle, &bundle->matcher);
}

Status EarshotServer::Start() {
  if (config_.workers > 0) {
    scan::ScanShared shared;
    shared.catalog = catalog_.get();
    shared.results_dir = config_.ResultsDir();
    shared.outbox = outbox_->has_targets() ? outbox_.get() : nullptr;
    // Every job brings a matcher over the newest catalog snapshot.
    auto bundle = std::make_shared<MatcherBundle>(catalog_->Snapshot(), catalog_->params());
    shared.matcher = &bundle->matcher;
    fallback_matcher_ = bundle;
    scan::ScannerOptions sopts;
    sopts.threads = config_.scan_threads;
    sopts.keep_reports = false;
    ScanWorkerOptions wopts;
    wopts.worker_id = WorkerId();
    wopts.max_jobs = config_.workers;
    wopts.lease = std::chrono::milliseconds(static_cast<int64_t>(config_.lease_s * 1000));
    wopts.poll = std::chrono::milliseconds(static_cast<int64_t>(config_.poll_s * 1000));
    wopts.scan.stall_timeout_s = config_.stall_timeout_s;
    wopts.scan.max_reconnects = config_.reconnects;
    wopts.scan.reconnect_backoff_s = config_.reconnect_backoff_s;
    wopts.scan.max_backoff_s = std::max(config_.reconnect_backoff_s, config_.reconnect_backoff_s * 16);
    wopts.scan.ongoing_every_s = config_.ongoing_every_s;
    wopts.matcher_factory = [this] { return NewMatcher(); };
    // Video references come from the same catalog (refreshed by NewMatcher).
    wopts.video_index_factory = [this] { return catalog_->VideoSnapshot(); };
    wopts.scan.thumbnail_every_s = config_.thumbnail_every_s;
    wopts.scan.thumbnail_width = config_.thumbnail_width;
    if (moderation_) moderation_->Start();
    // Workers before the scanner: the scanner's sessions call back into them.
    workers_ = std::make_unique<ScanWorkers>(*queue_, *control_, wopts);
    scanner_ = std::make_unique<scan::Scanner>(shared, sopts);
    workers_->Start(*scanner_);
  }
  if (role_ == ServerRole::kServe) {
    EventDispatcherOptions dopts;
    dopts.cursor_file = std::filesystem::path(config_.data_dir) / "subscriptions.cursor";
    dispatcher_ = std::make_unique<EventDispatcher>(*state_, &metrics_, dopts);
    dispatcher_->Start();
    HttpApiDeps deps;
    deps.config = &config_;
    deps.state = state_.get();
    deps.queue = queue_.get();
    deps.control = control_.get();
    deps.catalog = catalog_.get();
    deps.metrics = &metrics_;
    deps.playback = playback_.get();
    deps.alarms = alarms_.get();
    playback_->Start();
    alarms_->Start();
    http_ = std::make_unique<HttpApi>(deps);
    auto hp = SplitHostPort(config_.listen);
    if (!hp) return std::unexpected(hp.error());
    if (Status s = http_->Start(hp->first, hp->second); !s) return s;
  }
  Log(LogLevel::kInfo, role_ == ServerRole::kServe ? "earshot serve ready" : "earshot worker ready",
      {{"listen", role_ == ServerRole::kServe ? config_.listen : std::string()},
       {"http_port", http_port()},
       {"workers", config_.workers},
       {"state", config_.StateUrl()},
       {"catalog", config_.catalog_dir}});
  return Ok();
}

void EarshotServer::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  if (http_) http_->Stop();
  if (alarms_) alarms_->Stop();
  if (playback_) {
    playback_->Stop();
    (void)playback_->FlushViewerMinutes();
  }
  if (dispatcher_) dispatcher_->Stop();
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(config_.shutdown_grace_s * 1000));
  if (workers_) workers_->Stop(deadline);
  scanner_.reset();  // waits for the sessions that are still flushing
  workers_.reset();
  if (moderation_) moderation_->Stop();  // thumbnails still waiting are dropped
  if (outbox_ && outbox_->has_targets()) {
    const uint64_t pending = outbox_->Drain(std::chrono::steady_clock::now() + std::chrono::seconds(5));
    if (pending > 0) {
      Log(LogLevel::kWarn, "undelivered results stay spooled; the next start delivers them",
          {{"pending", pending}});
    }
  }
  Log(LogLevel::kInfo, "earshot stopped", {});
}

}  // namespace earshot::server
