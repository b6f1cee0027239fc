#include "cli/scan_command.h"

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "catalog/catalog.h"
#include "common/log.h"
#include "delivery/http_client.h"
#include "delivery/outbox.h"
#include "delivery/registry.h"
#include "recognition/matcher.h"
#include "scan/scanner.h"

namespace earshot::cli {
namespace {

constexpr int kExitFailure = 1;
constexpr int kExitSetup = 2;

std::atomic<int> g_signal{0};
extern "C" void OnSignal(int signal) { g_signal.store(signal); }

void PrintError(const std::string& message) {
  std::fprintf(stderr, "earshot: error: %s\n", message.c_str());
}

// Reads "stream_id<TAB>input[<TAB>channel_id]" lines ('#' comments, blank lines skipped).
Result<std::vector<scan::ScanOptions>> ReadStreamsFile(const std::string& path,
                                                       const scan::ScanOptions& base) {
  std::ifstream in(path);
  if (!in) return MakeError(ErrorCode::kNotFound, "cannot open the streams file " + path);
  std::vector<scan::ScanOptions> out;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> fields;
    std::stringstream ss(line);
    for (std::string f; std::getline(ss, f, '\t');) fields.push_back(f);
    if (fields.size() < 2 || fields.size() > 3) {
      return MakeError(ErrorCode::kInvalidArgument,
                       path + ":" + std::to_string(number) +
                           ": expected stream_id<TAB>input[<TAB>channel_id]");
    }
    scan::ScanOptions o = base;
    o.stream_id = fields[0];
    o.input = fields[1];
    if (fields.size() == 3) o.channel_id = fields[2];
    out.push_back(std::move(o));
  }
  if (out.empty()) return MakeError(ErrorCode::kInvalidArgument, path + " lists no streams");
  return out;
}

nlohmann::json ReportToJson(const scan::ScanReport& r) {
  nlohmann::json j = {{"stream_id", r.stream_id},     {"scan_id", r.scan_id},
                      {"status", r.status},           {"stream_seconds", r.stream_seconds},
                      {"matches", r.matches},         {"files_written", r.files_written},
                      {"reconnects", r.reconnects},   {"damaged_packets", r.damaged_packets},
                      {"video_frames", r.video_frames}, {"thumbnails", r.thumbnails}};
  if (r.error) {
    j["error"] = {{"code", ErrorCodeName(r.error->code())}, {"message", r.error->message()}};
  }
  return j;
}

}  // namespace

void AddScanOptions(CLI::App* cmd, ScanArgs& a) {
  cmd->add_option("input", a.input,
                  "stream URL (rtmp://, http(s):// HLS playlist, srt://, udp://) or file; - = stdin");
  cmd->add_option("--stream-id", a.stream_id, "stream id: names RESULTS/{stream_id}/ (required with INPUT)");
  cmd->add_option("--channel", a.channel_id, "channel id written into every response");
  cmd->add_option("--streams", a.streams_file,
                  "scan many streams: a TSV file of stream_id<TAB>input[<TAB>channel_id] lines")
      ->check(CLI::ExistingFile);
  cmd->add_option("--results", a.results_dir, "results folder (env EARSHOT_RESULTS)")
      ->envname("EARSHOT_RESULTS")
      ->capture_default_str();
  cmd->add_flag("--realtime", a.realtime, "pace file inputs at real time (replay as if live)");
  cmd->add_option("--threads", a.threads, "scanner threads shared by all streams (0: one per core)")
      ->capture_default_str()
      ->check(CLI::Range(0, 256));
  cmd->add_option("--stall-timeout", a.stall_timeout_s,
                  "seconds without data before a network input counts as stalled (reconnect)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--reconnects", a.max_reconnects,
                  "failed reconnect attempts in a row before a network scan ends")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
  cmd->add_option("--reconnect-backoff", a.reconnect_backoff_s,
                  "seconds before the first reconnect; doubles per failure (at most 16 x)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--header", a.headers,
                  "HTTP header for http(s)/HLS inputs, e.g. 'Origin: https://example.com' (repeatable)");
  cmd->add_option("--ongoing-every", a.ongoing_every_s,
                  "write a match_ongoing response this often while a match lasts (0: never)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--thumbnail-every", a.thumbnail_every_s,
                  "store a JPEG thumbnail of each stream this often, seconds (0: none)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--no-video", a.no_video,
                "match the audio only, even when the catalog has video references");
  cmd->add_option("--sink", a.sinks,
                  "copy every result to a sink (repeatable), e.g. "
                  "s3:endpoint=http://127.0.0.1:4569,bucket=results,prefix=prod "
                  "(credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)");
  cmd->add_option("--notify", a.notifiers,
                  "notify on every result (repeatable): webhook:url=URL (HMAC secret from "
                  "EARSHOT_WEBHOOK_SECRET) or email:url=smtp://HOST:PORT,from=ADDR,to=ADDR;ADDR");
  cmd->add_option("--delivery-timeout", a.delivery_timeout_s,
                  "at the end, wait this long for deliveries; the rest stays spooled in "
                  "RESULTS/.outbox and is sent by the next run")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--log-level", a.log_level, "debug, info, warn or error (JSON lines on stderr)")
      ->capture_default_str();
}

int RunScan(const std::string& catalog_dir, const ScanArgs& args) {
  LogLevel level;
  if (!ParseLogLevel(args.log_level, &level)) {
    PrintError("--log-level must be debug, info, warn or error");
    return kExitSetup;
  }
  SetLogLevel(level);

  scan::ScanOptions base;
  base.realtime = args.realtime;
  base.stall_timeout_s = args.stall_timeout_s;
  base.max_reconnects = args.max_reconnects;
  base.reconnect_backoff_s = args.reconnect_backoff_s;
  base.max_backoff_s = std::max(args.reconnect_backoff_s, args.reconnect_backoff_s * 16);
  base.http_headers = args.headers;
  base.ongoing_every_s = args.ongoing_every_s;
  base.thumbnail_every_s = args.thumbnail_every_s;

  std::vector<scan::ScanOptions> streams;
  if (!args.streams_file.empty()) {
    if (!args.input.empty()) {
      PrintError("give either INPUT --stream-id ID or --streams FILE, not both");
      return kExitSetup;
    }
    auto list = ReadStreamsFile(args.streams_file, base);
    if (!list) {
      PrintError(list.error().message());
      return kExitSetup;
    }
    streams = std::move(*list);
  } else {
    if (args.input.empty() || args.stream_id.empty()) {
      PrintError("nothing to scan: give INPUT --stream-id ID (or --streams FILE); see --help");
      return kExitSetup;
    }
    scan::ScanOptions o = base;
    o.input = args.input;
    o.stream_id = args.stream_id;
    o.channel_id = args.channel_id;
    streams.push_back(std::move(o));
  }

  catalog::CatalogOptions copts;
  copts.read_only = true;
  copts.create_if_missing = false;
  auto catalog = catalog::Catalog::Open(catalog_dir, copts);
  if (!catalog) {
    PrintError(catalog.error().message());
    return kExitSetup;
  }
  const auto snapshot = (*catalog)->Snapshot();
  const auto video_index = args.no_video ? nullptr : (*catalog)->VideoSnapshot();
  const bool has_video = video_index != nullptr && video_index->size() > 0;
  if (snapshot->TrackCount() == 0 && !has_video) {
    PrintError("the catalog at " + catalog_dir +
               " is empty: add reference recordings with `earshot catalog add` (audio) or "
               "`earshot catalog add --video` (video)");
    return kExitSetup;
  }
  for (scan::ScanOptions& o : streams) o.video_index = has_video ? video_index : nullptr;
  recognition::Matcher matcher(*snapshot, (*catalog)->params(), recognition::QueryParams::Streaming());

  delivery::InitHttpClient();
  std::vector<std::unique_ptr<delivery::ResultSink>> sinks;
  std::vector<std::unique_ptr<delivery::Notifier>> notifiers;
  for (const std::string& spec : args.sinks) {
    auto sink = delivery::MakeSink(spec);
    if (!sink) {
      PrintError("--sink: " + sink.error().message());
      return kExitSetup;
    }
    sinks.push_back(std::move(*sink));
  }
  for (const std::string& spec : args.notifiers) {
    auto notifier = delivery::MakeNotifier(spec);
    if (!notifier) {
      PrintError("--notify: " + notifier.error().message());
      return kExitSetup;
    }
    notifiers.push_back(std::move(*notifier));
  }
  delivery::OutboxOptions oopts;
  oopts.results_dir = args.results_dir;
  auto outbox = delivery::Outbox::Open(oopts, std::move(sinks), std::move(notifiers));
  if (!outbox) {
    PrintError(outbox.error().message());
    return kExitSetup;
  }

  struct sigaction action {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  scan::ScanShared shared{catalog->get(), &matcher, args.results_dir,
                          (*outbox)->has_targets() ? outbox->get() : nullptr};
  int exit_code = 0;
  {
    scan::Scanner scanner(shared, scan::ScannerOptions{args.threads, 16000});
    for (scan::ScanOptions& o : streams) {
      auto added = scanner.Add(std::move(o));
      if (!added) {
        PrintError(added.error().message());
        exit_code = kExitSetup;
      }
    }
    bool cancelled = false;
    while (!scanner.WaitAll(std::chrono::steady_clock::now() + std::chrono::milliseconds(200))) {
      if (g_signal.load() != 0 && !cancelled) {
        Log(LogLevel::kInfo, "signal received: ending every scan",
            {{"signal", g_signal.load()}, {"streams", scanner.running()}});
        scanner.CancelAll();
        cancelled = true;
      }
    }
    for (const scan::ScanReport& r : scanner.reports()) {
      std::cout << ReportToJson(r).dump() << std::endl;
      if (r.status == "failed" && exit_code == 0) exit_code = kExitFailure;
    }
  }
  if ((*outbox)->has_targets()) {
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::chrono::duration<double>(args.delivery_timeout_s));
    const uint64_t pending = (*outbox)->Drain(deadline);
    if (pending > 0) {
      Log(LogLevel::kWarn, "undelivered results stay spooled; the next run delivers them",
          {{"pending", pending}, {"spool", (std::filesystem::path(args.results_dir) / ".outbox").string()}});
    }
  }
  return exit_code;
}

}  // namespace earshot::cli
