#include "ingest/registry.h"

#include <array>

#include "ingest/nginx_rtmp_controller.h"

namespace earshot::ingest {
namespace {

// Documented in docs only so far (/work/shared/reference: MediaMTX kicks with
// POST /v3/rtmpconns/kick/{id}, SRS with DELETE /api/v1/clients/{id}).
constexpr std::array<std::string_view, 2> kPlannedKinds = {"srs", "mediamtx"};

}  // namespace

std::vector<std::string> IngestKinds() {
  std::vector<std::string> kinds = {std::string(NginxRtmpController::kKind)};
  for (std::string_view kind : kPlannedKinds) kinds.emplace_back(kind);
  return kinds;
}

Result<std::unique_ptr<IngestController>> MakeIngestController(std::string_view kind,
                                                               const IngestSettings& settings) {
  if (kind == NginxRtmpController::kKind) {
    NginxRtmpControllerOptions options;
    options.control_url = settings.control_url;
    options.rtmp_url = settings.rtmp_url;
    options.relay_app = settings.relay_app;
    options.playback_url = settings.playback_url;
    options.connect_timeout_ms = settings.connect_timeout_ms;
    options.request_timeout_ms = settings.request_timeout_ms;
    auto controller = NginxRtmpController::Create(std::move(options));
    if (!controller) return std::unexpected(controller.error());
    return std::unique_ptr<IngestController>(std::move(*controller));
  }
  for (std::string_view planned : kPlannedKinds) {
    if (kind == planned) {
      return MakeError(ErrorCode::kUnsupported,
                       "ingest server kind '" + std::string(kind) +
                           "' is not yet implemented; earshot supports nginx-rtmp for now");
    }
  }
  std::string known;
  for (const std::string& k : IngestKinds()) known += (known.empty() ? "" : ", ") + k;
  return MakeError(ErrorCode::kInvalidArgument, "unknown ingest server kind '" +
                                                    std::string(kind) + "' (known: " + known +
                                                    "; only nginx-rtmp is implemented)");
}

}  // namespace earshot::ingest
