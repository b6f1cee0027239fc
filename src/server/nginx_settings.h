// `earshot nginx-config`: the nginx-rtmp config that matches a ServeConfig
// (ports and applications from [ingest], hooks to [server] listen).
#pragma once

#include <string>

#include "common/error.h"
#include "ingest/nginx_config.h"
#include "server/config.h"

namespace earshot::server {

// The generator options for `config`. `run_dir` "" = {data_dir}/nginx;
// `http_listen` = HOST:PORT nginx serves HLS, /control and /stat on; "" =
// the host and port of ingest.control_url. Paths are made absolute. When run as root
// the workers run as the current user, so they can write hls_dir.
Result<ingest::NginxConfigOptions> NginxOptionsFor(const ServeConfig& config, const std::string& run_dir,
                                                   const std::string& http_listen);

// GenerateNginxConfig(NginxOptionsFor(...)).
Result<std::string> NginxConfigFor(const ServeConfig& config, const std::string& run_dir,
                                   const std::string& http_listen);

}  // namespace earshot::server
