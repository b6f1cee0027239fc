#include "cli/serve_command.h"

#include <atomic>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>

#include "common/log.h"
#include "server/nginx_settings.h"
#include "server/config.h"
#include "server/server.h"
#include "state/state_store.h"

namespace earshot::cli {
namespace {

constexpr int kExitFailure = 1;
constexpr int kExitSetup = 2;

std::atomic<int> g_stop_signal{0};
void OnStopSignal(int sig) { g_stop_signal.store(sig); }

void PrintError(const std::string& message) { std::cerr << "earshot: " << message << "\n"; }

Result<server::ServeConfig> LoadConfig(const std::string& path) {
  return server::LoadServeConfig(path, server::EarshotEnvironment());
}

// The state store the config names (its folder created), for the admin
// commands; errors are printed here.
std::unique_ptr<state::StateStore> OpenConfiguredState(const std::string& config_path) {
  auto config = LoadConfig(config_path);
  if (!config) {
    PrintError(config.error().message());
    return nullptr;
  }
  std::error_code ec;
  std::filesystem::create_directories(config->data_dir, ec);
  auto state = state::OpenStateStore(config->StateUrl());
  if (!state) {
    PrintError(state.error().message());
    return nullptr;
  }
  return std::move(*state);
}

}  // namespace

void ServeCommands::Add(CLI::App& app) {
  const std::string config_help =
      "TOML config file (see docs/earshot.toml; every key also from env EARSHOT_<SECTION>_<KEY>)";
  serve_ = app.add_subcommand(
      "serve",
      "run the control plane: HTTP API (/v1), nginx-rtmp hooks (/hooks/nginx), metrics, and "
      "scan workers, on SQLite and local folders by default. Ends on SIGTERM/SIGINT after "
      "running scans have flushed their results.");
  serve_->add_option("-c,--config", config_path_, config_help);
  serve_->add_flag("--reference-config", reference_config_,
                   "print the reference config (every key, its default, its env name) and exit");
  serve_->add_flag("--print-config", print_config_, "print the effective config and exit");

  worker_ = app.add_subcommand(
      "worker",
      "run scan workers only, against the state database and queue of an `earshot serve` "
      "(same config): add processes to scan more streams");
  worker_->add_option("-c,--config", config_path_, config_help);
  worker_->add_option("-w,--workers", worker_jobs_,
                      "scan jobs this process runs at once (default: [workers] workers of the "
                      "config, or 1 when that is 0 because `earshot serve` leaves scanning to "
                      "worker processes)")
      ->check(CLI::Range(1, 256));

  auto* admin = app.add_subcommand("admin", "administration: API keys");
  admin->require_subcommand(1);
  create_key_ = admin->add_subcommand(
      "create-key", "create an admin API key for the HTTP API (printed once; stored hashed)");
  create_key_->add_option("--name", key_name_, "what the key is for, e.g. \"ops dashboard\"")->required();
  create_key_->add_option("-c,--config", config_path_, config_help);
  list_keys_ = admin->add_subcommand("list-keys", "list API keys (ids and names, never the keys)");
  list_keys_->add_option("-c,--config", config_path_, config_help);
  revoke_key_ = admin->add_subcommand("revoke-key", "revoke an API key by id");
  revoke_key_->add_option("id", key_id_, "key id (see list-keys)")->required();
  revoke_key_->add_option("-c,--config", config_path_, config_help);

  nginx_config_ = app.add_subcommand(
      "nginx-config",
      "print an nginx + nginx-rtmp config that matches the settings: ingest application with "
      "hooks to earshot, relay named by channel id, HLS, control and stat endpoints");
  nginx_config_->add_option("-c,--config", config_path_, config_help);
  nginx_config_->add_option("--run-dir", nginx_run_dir_,
                            "nginx prefix folder (logs/ and tmp/ are created in it, and "
                            "[ingest] hls_dir); default: {data_dir}/nginx");
  nginx_config_->add_option("--http-listen", nginx_http_listen_,
                            "HOST:PORT nginx serves HLS, /control and /stat on; default: the host "
                            "and port of [ingest] control_url");
}

int ServeCommands::RunIfParsed() {
  if (serve_->parsed()) return RunServe(false);
  if (worker_->parsed()) return RunServe(true);
  if (create_key_->parsed()) return RunCreateKey();
  if (list_keys_->parsed()) return RunListKeys();
  if (revoke_key_->parsed()) return RunRevokeKey();
  if (nginx_config_->parsed()) return RunNginxConfig();
  return -1;
}

int ServeCommands::RunServe(bool worker_only) {
  if (reference_config_) {
    std::cout << server::ReferenceConfig();
    return 0;
  }
  auto config = LoadConfig(config_path_);
  if (!config) {
    PrintError(config.error().message());
    return kExitSetup;
  }
  if (worker_only) {
    if (worker_jobs_ > 0) {
      config->workers = worker_jobs_;
    } else if (config->workers == 0) {
      config->workers = 1;
    }
  }
  if (print_config_) {
    std::cout << server::ConfigToToml(*config);
    return 0;
  }
  LogLevel level = LogLevel::kInfo;
  if (ParseLogLevel(config->log_level, &level)) SetLogLevel(level);
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto srv = server::EarshotServer::Open(*config, worker_only ? server::ServerRole::kWorker
                                                              : server::ServerRole::kServe);
  if (!srv) {
    PrintError(srv.error().message());
    return kExitSetup;
  }
  if (Status s = (*srv)->Start(); !s) {
    PrintError(s.error().message());
    return kExitSetup;
  }
  while (g_stop_signal.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  Log(LogLevel::kInfo, "signal received: shutting down", {{"signal", g_stop_signal.load()}});
  (*srv)->Shutdown();
  return 0;
}

int ServeCommands::RunCreateKey() {
  auto store = OpenConfiguredState(config_path_);
  if (!store) return kExitSetup;
  auto key = store->CreateApiKey(key_name_);
  if (!key) {
    PrintError(key.error().message());
    return kExitFailure;
  }
  std::cerr << "API key " << key->info.id << " (\"" << key_name_
            << "\") created. It is shown once; use it as `Authorization: Bearer KEY`:\n";
  std::cout << key->key << std::endl;
  return 0;
}

int ServeCommands::RunListKeys() {
  auto store = OpenConfiguredState(config_path_);
  if (!store) return kExitSetup;
  auto keys = store->ListApiKeys();
  if (!keys) {
    PrintError(keys.error().message());
    return kExitFailure;
  }
  for (const auto& k : *keys) std::cout << state::ApiKeyInfoToJson(k).dump() << "\n";
  return 0;
}

int ServeCommands::RunRevokeKey() {
  auto store = OpenConfiguredState(config_path_);
  if (!store) return kExitSetup;
  if (Status s = store->RevokeApiKey(key_id_); !s) {
    PrintError(s.error().message());
    return s.error().code() == ErrorCode::kNotFound ? kExitFailure : kExitSetup;
  }
  std::cerr << "API key " << key_id_ << " revoked\n";
  return 0;
}

int ServeCommands::RunNginxConfig() {
  auto config = LoadConfig(config_path_);
  if (!config) {
    PrintError(config.error().message());
    return kExitSetup;
  }
  auto options = server::NginxOptionsFor(*config, nginx_run_dir_, nginx_http_listen_);
  if (!options) {
    PrintError(options.error().message());
    return kExitSetup;
  }
  auto text = ingest::GenerateNginxConfig(*options);
  if (!text) {
    PrintError(text.error().message());
    return kExitSetup;
  }
  // nginx creates neither its log folder nor the HLS folder.
  for (const std::filesystem::path& dir :
       {std::filesystem::path(options->run_dir) / "logs", std::filesystem::path(options->run_dir) / "tmp",
        std::filesystem::path(options->hls_dir)}) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      PrintError("cannot create " + dir.string() + ": " + ec.message());
      return kExitSetup;
    }
  }
  std::cout << *text;
  return 0;
}

}  // namespace earshot::cli
