// `earshot serve`, `earshot worker`, `earshot admin ...` and
// `earshot nginx-config`: the control-plane commands (src/server).
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace earshot::cli {

// Declares the subcommands on `app`; Run returns the exit status when one of
// them was parsed, or -1.
class ServeCommands {
 public:
  void Add(CLI::App& app);
  int RunIfParsed();

 private:
  int RunServe(bool worker_only);
  int RunCreateKey();
  int RunListKeys();
  int RunRevokeKey();
  int RunNginxConfig();

  CLI::App* serve_ = nullptr;
  CLI::App* worker_ = nullptr;
  CLI::App* create_key_ = nullptr;
  CLI::App* list_keys_ = nullptr;
  CLI::App* revoke_key_ = nullptr;
  CLI::App* nginx_config_ = nullptr;
  std::string config_path_;
  bool reference_config_ = false;
  bool print_config_ = false;
  std::string key_name_;
  int worker_jobs_ = 0;  // `worker --workers N`; 0 = from the config
  std::string key_id_;
  std::string nginx_run_dir_;
  std::string nginx_http_listen_;  // "" = from [ingest] control_url
};

}  // namespace earshot::cli
