#include "cli/cli.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>

#include "catalog/catalog.h"
#include "catalog/identify.h"
#include "cli/anomaly_command.h"
#include "cli/deliver_command.h"
#include "cli/progress.h"
#include "cli/scan_command.h"
#include "cli/serve_command.h"
#include "recognition/fingerprint_params.h"
#include "store/manifest.h"

namespace earshot::cli {

namespace fs = std::filesystem;

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitSetup = 2;

void PrintError(const std::string& message) { std::fprintf(stderr, "earshot: error: %s\n", message.c_str()); }
void PrintWarning(const std::string& message) { std::fprintf(stderr, "earshot: warning: %s\n", message.c_str()); }

std::string FormatNumber(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

int DefaultJobs() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

std::string DefaultCatalogDir() {
  if (const char* env = std::getenv("EARSHOT_CATALOG"); env && *env) return env;
  return "earshot-catalog";
}

// Opens the catalog; only `catalog add` creates one (`create`).
Result<std::unique_ptr<catalog::Catalog>> OpenCatalog(const std::string& dir, bool read_only,
                                                      bool create = false) {
  catalog::CatalogOptions options;
  options.read_only = read_only;
  options.create_if_missing = create;
  std::vector<std::string> repaired;
  auto opened = catalog::Catalog::Open(dir, options, &repaired);
  for (const std::string& line : repaired) PrintWarning(line);
  return opened;
}

// --- catalog add ---
struct AddArgs {
  std::vector<std::string> paths;
  std::string manifest;
  std::string rule = "track";
  std::string title, artist, rights_holder, isrc;
  std::vector<std::string> tags;
  int jobs = DefaultJobs();
  bool json = false;
  bool video = false;  // video references (AddVideo) instead of audio
  std::optional<bool> progress;
};

int RunCatalogAdd(const std::string& catalog_dir, const AddArgs& args) {
  auto rule = store::ParseBusinessRule(args.rule);
  if (!rule) {
    PrintError(rule.error().message());
    return kExitSetup;
  }
  store::TrackMetadata shared;
  shared.artist = args.artist;
  shared.rights_holder = args.rights_holder;
  if (!args.isrc.empty()) {
    auto isrc = store::NormalizeIsrc(args.isrc);
    if (!isrc) {
      PrintError(isrc.error().message());
      return kExitSetup;
    }
    shared.isrc = *isrc;
  }
  for (const std::string& tag : args.tags) {
    const size_t eq = tag.find('=');
    if (eq == std::string::npos || eq == 0) {
      PrintError("--tag wants KEY=VALUE, got \"" + tag + "\"");
      return kExitSetup;
    }
    shared.tags[tag.substr(0, eq)] = tag.substr(eq + 1);
  }

  const char* media = args.video ? "video" : "audio";
  std::vector<catalog::AddItem> items;
  if (!args.manifest.empty()) {
    auto manifest = store::ParseManifest(args.manifest);
    if (!manifest) {
      PrintError(manifest.error().message());
      return kExitSetup;
    }
    for (store::ManifestItem& m : *manifest) {
      catalog::AddItem item;
      item.path = m.path;
      item.metadata = m.metadata;
      item.rule = m.rule.value_or(*rule);
      items.push_back(std::move(item));
    }
  }
  for (const std::string& p : args.paths) {
    std::error_code ec;
    std::vector<fs::path> files;
    if (fs::is_directory(p, ec)) {
      files = args.video ? catalog::FindVideoFiles(p) : catalog::FindAudioFiles(p);
      if (files.empty()) PrintWarning(std::string("no ") + media + " files found in folder " + p);
    } else {
      files.push_back(p);
    }
    for (const fs::path& f : files) {
      catalog::AddItem item;
      item.path = f;
      item.metadata = shared;
      if (!args.title.empty()) item.metadata.title = args.title;
      item.rule = *rule;
      items.push_back(std::move(item));
    }
  }
  if (items.empty()) {
    PrintError(std::string("nothing to add: give ") + media +
               " files or folders, or --manifest FILE");
    return kExitSetup;
  }
  if (!args.title.empty() && items.size() > 1) {
    PrintError("--title names one recording, but " + std::to_string(items.size()) + " were given");
    return kExitSetup;
  }

  auto catalog = OpenCatalog(catalog_dir, /*read_only=*/false, /*create=*/true);
  if (!catalog) {
    PrintError(catalog.error().message());
    return kExitSetup;
  }
  const bool show = args.progress.value_or(ProgressBar::StderrIsTerminal());
  ProgressBar bar("fingerprinting", items.size(), show);
  const auto start = std::chrono::steady_clock::now();
  const auto on_progress = [&](const catalog::AddProgress& p) {
    bar.Update(p.done, FormatDuration(p.audio_seconds) + " of " + media);
  };
  auto outcomes = args.video ? (*catalog)->AddVideo(items, args.jobs, on_progress)
                             : (*catalog)->Add(items, args.jobs, on_progress);
  bar.Done();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  size_t added = 0, failed = 0;
  double seconds = 0;
  for (const catalog::AddOutcome& o : outcomes) {
    if (o.entry) {
      ++added;
      seconds += o.entry->duration_s;
      if (args.json) std::cout << catalog::EntryToJson(*o.entry).dump() << "\n";
    } else {
      ++failed;
      PrintError(o.entry.error().message());
      if (args.json) std::cout << catalog::ErrorToJson(o.path.string(), o.entry.error()).dump() << "\n";
    }
  }
  std::fprintf(stderr, "added %zu of %zu recordings (%s of %s) in %.1f s%s\n", added, items.size(),
               FormatDuration(seconds).c_str(), media, elapsed,
               failed ? (", " + std::to_string(failed) + " failed").c_str() : "");
  return failed ? kExitFailure : 0;
}

// --- catalog list / remove / stats ---
int RunCatalogList(const std::string& catalog_dir, const std::string& rule_name,
                   const std::string& kind_name, const std::string& search, size_t limit,
                   bool json) {
  auto catalog = OpenCatalog(catalog_dir, /*read_only=*/true);
  if (!catalog) {
    PrintError(catalog.error().message());
    return kExitSetup;
  }
  store::CatalogDb::ListFilter filter;
  if (!rule_name.empty()) {
    auto rule = store::ParseBusinessRule(rule_name);
    if (!rule) {
      PrintError(rule.error().message());
      return kExitSetup;
    }
    filter.rule = *rule;
  }
  if (!kind_name.empty()) {
    auto kind = store::ParseMediaKind(kind_name);
    if (!kind) {
      PrintError(kind.error().message());
      return kExitSetup;
    }
    filter.kind = *kind;
  }
  filter.text = search;
  filter.limit = limit;
  auto entries = (*catalog)->List(filter);
  if (!entries) {
    PrintError(entries.error().message());
    return kExitSetup;
  }
  if (json) {
    for (const auto& e : *entries) std::cout << catalog::EntryToJson(e).dump() << "\n";
    return 0;
  }
  std::printf("%6s  %-5s  %-5s  %8s  %-36s  %-24s  %s\n", "id", "kind", "rule", "length", "title",
              "artist", "rights holder");
  for (const auto& e : *entries) {
    std::printf("%6u  %-5s  %-5s  %8s  %-36.36s  %-24.24s  %s\n", e.id,
                std::string(store::MediaKindName(e.kind)).c_str(),
                std::string(store::BusinessRuleName(e.rule)).c_str(),
                FormatDuration(e.duration_s).c_str(), e.metadata.title.c_str(),
                e.metadata.artist.c_str(), e.metadata.rights_holder.c_str());
  }
  return 0;
}

int RunCatalogRemove(const std::string& catalog_dir, std::vector<uint32_t> ids) {
  auto catalog = OpenCatalog(catalog_dir, /*read_only=*/false);
  if (!catalog) {
    PrintError(catalog.error().message());
    return kExitSetup;
  }
  if (auto s = (*catalog)->Remove(ids); !s) {
    PrintError(s.error().message());
    return kExitFailure;
  }
  std::sort(ids.begin(), ids.end());
  const size_t removed = static_cast<size_t>(std::unique(ids.begin(), ids.end()) - ids.begin());
  std::fprintf(stderr, "removed %zu track%s\n", removed, removed == 1 ? "" : "s");
  return 0;
}

int RunCatalogStats(const std::string& catalog_dir, bool json) {
  auto catalog = OpenCatalog(catalog_dir, /*read_only=*/true);
  if (!catalog) {
    PrintError(catalog.error().message());
    return kExitSetup;
  }
  auto stats = (*catalog)->Stats();
  if (!stats) {
    PrintError(stats.error().message());
    return kExitSetup;
  }
  const double hours = stats->audio_seconds / 3600.0;
  const double mb_per_hour = hours > 0 ? static_cast<double>(stats->index_bytes) / 1e6 / hours : 0;
  if (json) {
    nlohmann::json j;
    j["tracks"] = stats->tracks;
    j["audio_seconds"] = stats->audio_seconds;
    j["postings"] = stats->postings;
    j["index_bytes"] = stats->index_bytes;
    j["index_mb_per_hour"] = mb_per_hour;
    j["segments"] = stats->segments;
    j["algorithm_version"] = stats->algorithm_version;
    j["video_references"] = stats->video_references;
    j["video_seconds"] = stats->video_seconds;
    j["video_index_entries"] = stats->video_index_entries;
    for (const auto& [rule, n] : stats->by_rule) j["by_rule"][std::string(store::BusinessRuleName(rule))] = n;
    std::cout << j.dump() << "\n";
    return 0;
  }
  std::printf("catalog            %s\n", catalog_dir.c_str());
  std::printf("tracks             %llu\n", static_cast<unsigned long long>(stats->tracks));
  std::printf("audio              %s (%.2f h)\n", FormatDuration(stats->audio_seconds).c_str(), hours);
  std::printf("index              %.2f MB in %llu segment(s), %.2f MB per hour of audio\n",
              static_cast<double>(stats->index_bytes) / 1e6, static_cast<unsigned long long>(stats->segments),
              mb_per_hour);
  std::printf("postings           %llu\n", static_cast<unsigned long long>(stats->postings));
  std::printf("algorithm version  %u\n", stats->algorithm_version);
  std::printf("video references   %llu\n",
              static_cast<unsigned long long>(stats->video_references));
  std::printf("video              %s (%.2f h)\n", FormatDuration(stats->video_seconds).c_str(),
              stats->video_seconds / 3600.0);
  std::printf("video hashes       %llu\n",
              static_cast<unsigned long long>(stats->video_index_entries));
  for (const auto& [rule, n] : stats->by_rule) {
    std::printf("rule %-13s %llu\n", std::string(store::BusinessRuleName(rule)).c_str(),
                static_cast<unsigned long long>(n));
  }
  return 0;
}

// --- identify ---
struct IdentifyArgs {
  std::vector<std::string> inputs;
  std::string follow;
  bool realtime = false;
  bool pretty = false;
  int jobs = DefaultJobs();
  std::optional<double> min_score;
};

int RunIdentify(const std::string& catalog_dir, const IdentifyArgs& args) {
  auto catalog = OpenCatalog(catalog_dir, /*read_only=*/true);
  if (!catalog) {
    PrintError(catalog.error().message());
    return kExitSetup;
  }
  catalog::IdentifyOptions options;
  if (args.min_score) options.query.min_score = options.stream_query.min_score = *args.min_score;
  const int indent = args.pretty ? 2 : -1;

  if (!args.follow.empty() && !args.inputs.empty()) {
    PrintError("--follow takes one input; identify files without --follow");
    return kExitSetup;
  }
  if (!args.follow.empty()) {
    Status s = catalog::FollowInput(**catalog, args.follow, args.realtime, options,
                                    [&](const nlohmann::json& event) {
                                      std::cout << event.dump(indent) << std::endl;
                                    });
    if (!s) {
      PrintError(s.error().message());
      return kExitFailure;
    }
    return 0;
  }
  if (args.inputs.empty()) {
    PrintError("nothing to identify: give files, or --follow INPUT");
    return kExitSetup;
  }
  // Files are identified on `jobs` threads and printed in the order given.
  const size_t n = args.inputs.size();
  std::vector<std::optional<std::string>> lines(n);
  std::vector<bool> failed(n, false);
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<size_t> next{0};
  std::vector<std::jthread> workers;
  for (int w = 0; w < std::max(1, args.jobs) && static_cast<size_t>(w) < n; ++w) {
    workers.emplace_back([&] {
      for (size_t i; (i = next.fetch_add(1)) < n;) {
        auto response = catalog::IdentifyFile(**catalog, args.inputs[i], options);
        std::string line;
        bool bad = false;
        if (response) {
          line = catalog::ResponseToJson(*response).dump(indent);
        } else {
          bad = true;
          line = catalog::ErrorToJson(args.inputs[i], response.error()).dump(indent);
          std::lock_guard lock(mu);
          PrintError(response.error().message());
        }
        std::lock_guard lock(mu);
        lines[i] = std::move(line);
        failed[i] = bad;
        cv.notify_all();
      }
    });
  }
  bool any_failed = false;
  for (size_t i = 0; i < n; ++i) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return lines[i].has_value(); });
    std::cout << *lines[i] << "\n";
    any_failed = any_failed || failed[i];
  }
  std::cout.flush();
  return any_failed ? kExitFailure : 0;
}

}  // namespace

int RunCli(int argc, char** argv) {
  CLI::App app{"earshot: recognise catalogued music in live streams and recordings.\n"
               "Build a catalog of reference recordings with `earshot catalog add`, then\n"
               "`earshot identify FILE...` or `earshot identify --follow INPUT`.",
               "earshot"};
  app.require_subcommand(1);
  std::string catalog_dir = DefaultCatalogDir();
  app.add_option("--catalog", catalog_dir,
                 "catalog directory (metadata + fingerprint index); env EARSHOT_CATALOG")
      ->capture_default_str();
  app.set_version_flag("--version", "earshot 0.1.0 (fingerprint algorithm version " +
                                        std::to_string(recognition::kAlgorithmVersion) + ")");

  auto* cat = app.add_subcommand("catalog", "manage the reference catalog");
  cat->require_subcommand(1);

  AddArgs add;
  auto* add_cmd = cat->add_subcommand("add", "fingerprint reference recordings into the catalog");
  add_cmd->add_option("paths", add.paths,
                      "audio (or with --video, video) files or folders (searched recursively)");
  add_cmd->add_flag(
      "--video", add.video,
      "add video references: their pictures are fingerprinted (folders: mp4 mkv mov webm flv ts "
      "m4v avi mpg mpeg files); `identify` then matches the video of its inputs too");
  add_cmd->add_option("--manifest", add.manifest,
                      "TSV or JSON manifest: path, title, artist, rights_holder, isrc, rule, tags")
      ->check(CLI::ExistingFile);
  add_cmd->add_option("--rule", add.rule, "business rule: block, mute, allow or track (manifest rows may override)")
      ->capture_default_str();
  add_cmd->add_option("--title", add.title, "title (one recording only; default: the file name)");
  add_cmd->add_option("--artist", add.artist, "artist");
  add_cmd->add_option("--rights-holder", add.rights_holder, "rights holder");
  add_cmd->add_option("--isrc", add.isrc, "ISRC, e.g. GB-AAA-24-00001");
  add_cmd->add_option("--tag", add.tags, "free-form tag KEY=VALUE (repeatable)");
  add_cmd->add_option("-j,--jobs", add.jobs, "parallel decoders")->capture_default_str()->check(CLI::Range(1, 64));
  add_cmd->add_flag("--json", add.json, "print each added entry (or error) as a JSON line");
  add_cmd->add_flag("--progress,!--no-progress", add.progress, "progress bar (default: when stderr is a terminal)");

  std::string list_rule, list_kind, list_search;
  size_t list_limit = 0;
  bool list_json = false;
  auto* list_cmd = cat->add_subcommand("list", "list catalogued recordings");
  list_cmd->add_option("--rule", list_rule, "only this business rule");
  list_cmd->add_option("--kind", list_kind, "only audio or only video references");
  list_cmd->add_option("--search", list_search, "text in title, artist or rights holder");
  list_cmd->add_option("--limit", list_limit, "at most this many (0: all)");
  list_cmd->add_flag("--json", list_json, "JSON lines");

  std::vector<uint32_t> remove_ids;
  auto* remove_cmd = cat->add_subcommand("remove", "remove recordings by track id");
  remove_cmd->add_option("ids", remove_ids, "track ids (see `catalog list`)")->required();

  bool stats_json = false;
  auto* stats_cmd =
      cat->add_subcommand("stats", "catalog size, index size, rules, video references");
  stats_cmd->add_flag("--json", stats_json, "JSON");

  IdentifyArgs ident;
  auto* id_cmd = app.add_subcommand(
      "identify",
      "identify catalogued music in recordings (and catalogued video, when the catalog has video "
      "references): one JSON identification response per input (or, with --follow, JSON event "
      "lines "
      "of the audio as they happen)");
  id_cmd->add_option("inputs", ident.inputs, "audio or video files (any format FFmpeg reads)");
  id_cmd->add_option("--follow", ident.follow,
                     "follow one continuous input (file, URL, or - for stdin) and print events");
  id_cmd->add_flag("--realtime", ident.realtime, "with --follow: pace a file at real time");
  id_cmd->add_flag("--pretty", ident.pretty, "indent the JSON");
  id_cmd->add_option("-j,--jobs", ident.jobs, "files identified in parallel")->capture_default_str()->check(CLI::Range(1, 64));
  id_cmd->add_option("--min-score", ident.min_score,
                     "report matches scoring at least this (default " +
                         FormatNumber(recognition::QueryParams{}.min_score) + "; unrelated audio scores about 1)");

  ScanArgs scan_args;
  auto* scan_cmd = app.add_subcommand(
      "scan",
      "watch live streams (or replay files) and write a JSON identification response into "
      "RESULTS/{stream_id}/ for every catalogued match, plus a summary at the end; "
      "results can also go to S3, webhooks and email. Ends at the end of the stream or on "
      "SIGTERM/SIGINT, flushing every result.");
  AddScanOptions(scan_cmd, scan_args);

  ServeCommands serve_commands;
  serve_commands.Add(app);

  DeliverArgs deliver_args;
  CLI::App* deliver_cmd = AddDeliverCommand(app, deliver_args);

  AnomalyArgs anomaly_args;
  CLI::App* anomaly_cmd = AddAnomalyCommand(app, anomaly_args);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitSetup;
  }
  if (add_cmd->parsed()) return RunCatalogAdd(catalog_dir, add);
  if (list_cmd->parsed()) {
    return RunCatalogList(catalog_dir, list_rule, list_kind, list_search, list_limit, list_json);
  }
  if (remove_cmd->parsed()) return RunCatalogRemove(catalog_dir, remove_ids);
  if (stats_cmd->parsed()) return RunCatalogStats(catalog_dir, stats_json);
  if (id_cmd->parsed()) return RunIdentify(catalog_dir, ident);
  if (scan_cmd->parsed()) return RunScan(catalog_dir, scan_args);
  if (int rc = serve_commands.RunIfParsed(); rc >= 0) return rc;
  if (deliver_cmd->parsed()) return RunDeliver(deliver_args);
  if (anomaly_cmd->parsed()) return RunAnomaly(anomaly_args);
  return kExitSetup;
}

}  // namespace earshot::cli
