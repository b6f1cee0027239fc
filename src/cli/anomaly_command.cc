#include "cli/anomaly_command.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <string_view>
#include <system_error>

#include "anomaly/viewer_anomaly_detector.h"
#include "common/error.h"

namespace earshot::cli {
namespace {

constexpr int kExitBadInput = 1;
constexpr int kExitSetup = 2;
constexpr size_t kReadChunk = 1 << 16;
constexpr size_t kFlushBytes = 1 << 20;

// The knobs of a profile (see AnomalyArgs::profile).
Result<anomaly::DetectorOptions> ProfileOptions(const std::string& profile) {
  anomaly::DetectorOptions o;
  if (profile == "standard") return o;
  if (profile == "reward_low_FP") {
    o.min_sustain_s = 360;
    return o;
  }
  if (profile == "reward_low_FN") {
    o.min_sustain_s = 180;
    return o;
  }
  if (profile == "auto_stop") return o;
  return MakeError(ErrorCode::kInvalidArgument,
                   "unknown --profile \"" + profile +
                       "\" (want standard, reward_low_FP, reward_low_FN or auto_stop)");
}

Result<anomaly::DetectorOptions> BuildOptions(const AnomalyArgs& a) {
  auto o = ProfileOptions(a.profile);
  if (!o) return o;
  if (a.band_width >= 0) o->model.band_width = a.band_width;
  if (a.min_ratio >= 0) o->model.min_band_ratio = a.min_ratio;
  if (a.datapoints >= 0) o->alarm.datapoints_to_alarm = a.datapoints;
  if (a.evaluation_periods >= 0) o->alarm.evaluation_periods = a.evaluation_periods;
  if (a.period_s >= 0) o->alarm.period_s = static_cast<int64_t>(std::llround(a.period_s));
  if (!a.missing_data.empty()) {
    auto m = anomaly::ParseMissingData(a.missing_data);
    if (!m) return std::unexpected(m.error());
    o->alarm.missing_data = *m;
  }
  if (a.sustain_s >= 0) o->min_sustain_s = a.sustain_s;
  if (a.stop_ratio >= 0) o->auto_stop.ratio = a.stop_ratio;
  if (a.stop_minutes >= 0) o->auto_stop.sustain_s = a.stop_minutes * 60.0;
  if (auto s = anomaly::ValidateDetectorOptions(*o); !s) return std::unexpected(s.error());
  return o;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

struct Sample {
  std::string_view timestamp;  // as given (echoed)
  int64_t t = 0;
  std::string_view channel;
  double value = 0;
};

// Parses "timestamp,channel,value"; returns an empty string or the problem.
std::string ParseLine(std::string_view line, Sample* s) {
  const size_t c1 = line.find(',');
  const size_t c2 = c1 == std::string_view::npos ? c1 : line.find(',', c1 + 1);
  if (c2 == std::string_view::npos || line.find(',', c2 + 1) != std::string_view::npos) {
    return "expected 3 comma-separated fields \"timestamp,channel,value\"";
  }
  s->timestamp = Trim(line.substr(0, c1));
  s->channel = Trim(line.substr(c1 + 1, c2 - c1 - 1));
  const std::string_view value = Trim(line.substr(c2 + 1));
  const char* tb = s->timestamp.data();
  const char* te = tb + s->timestamp.size();
  auto [tp, tec] = std::from_chars(tb, te, s->t);
  if (tec != std::errc() || tp != te) {
    double td = 0;  // accept fractional Unix seconds, rounded down
    auto [dp, dec] = std::from_chars(tb, te, td);
    if (dec != std::errc() || dp != te || !std::isfinite(td) || std::fabs(td) > 9e15) {
      return "timestamp \"" + std::string(s->timestamp) + "\" is not Unix seconds";
    }
    s->t = static_cast<int64_t>(std::floor(td));
  }
  if (s->channel.empty()) return "empty channel id";
  const char* vb = value.data();
  const char* ve = vb + value.size();
  auto [vp, vec] = std::from_chars(vb, ve, s->value);
  if (vec != std::errc() || vp != ve || !std::isfinite(s->value) || s->value < 0) {
    return "value \"" + std::string(value) + "\" is not a non-negative number of viewers";
  }
  return {};
}

void AppendNumber(std::string* out, double v) {
  char buf[32];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 6);
  if (ec != std::errc()) {
    out->append("0");
    return;
  }
  out->append(buf, p);
}

bool Flush(std::string* out, std::FILE* f) {
  if (!out->empty() && std::fwrite(out->data(), 1, out->size(), f) != out->size()) return false;
  out->clear();
  return true;
}

}  // namespace

CLI::App* AddAnomalyCommand(CLI::App& app, AnomalyArgs& args) {
  CLI::App* cmd = app.add_subcommand(
      "anomaly",
      "viewer-count anomaly detection (stream protection): with --detector, read "
      "\"timestamp,channel,value\" lines on stdin and write "
      "\"timestamp,channel,alarm,band_low,band_high\" lines on stdout");
  cmd->add_flag("--detector", args.detector, "run the detector as a stdin -> stdout filter");
  cmd->add_flag("--auto-stop", args.auto_stop,
                "print the auto-stop verdict (large and sustained jump) as the alarm column");
  cmd->add_option("--profile", args.profile,
                  "preset of knobs: standard, reward_low_FP, reward_low_FN, auto_stop "
                  "(auto_stop implies --auto-stop)")
      ->capture_default_str();
  cmd->add_option("--band-width", args.band_width, "band half-width in sigmas (default 3)");
  cmd->add_option("--min-ratio", args.min_ratio,
                  "upper band at least this x the expected audience (default 5)");
  cmd->add_option("-M,--datapoints", args.datapoints, "datapoints to alarm, M (default 2)");
  cmd->add_option("-N,--evaluation-periods", args.evaluation_periods,
                  "evaluation periods, N (default 3)");
  cmd->add_option("--period", args.period_s,
                  "alarm period in seconds, statistic maximum (default 60)");
  cmd->add_option("--missing-data", args.missing_data,
                  "missing | notBreaching | breaching | ignore (default missing)");
  cmd->add_option("--sustain", args.sustain_s,
                  "seconds a jump must hold, not fading, before it breaches (default 300)");
  cmd->add_option("--stop-ratio", args.stop_ratio,
                  "auto-stop: minimum jump, x expected (default 8)");
  cmd->add_option("--stop-minutes", args.stop_minutes,
                  "auto-stop: minimum age of the jump (default 8)");
  return cmd;
}

int RunAnomaly(const AnomalyArgs& args) { return RunAnomalyDetector(args, stdin, stdout, stderr); }

int RunAnomalyDetector(const AnomalyArgs& args, std::FILE* in, std::FILE* out, std::FILE* err) {
  if (!args.detector) {
    std::fprintf(err, "earshot: error: anomaly: give --detector (the only mode so far)\n");
    return kExitSetup;
  }
  auto options = BuildOptions(args);
  if (!options) {
    std::fprintf(err, "earshot: error: anomaly: %s\n", options.error().message().c_str());
    return kExitSetup;
  }
  const bool auto_stop = args.auto_stop || args.profile == "auto_stop";
  anomaly::ViewerAnomalyDetector detector(*options);

  std::string buffer;  // unconsumed input
  std::string output;  // pending output
  output.reserve(kFlushBytes + 4096);
  std::vector<char> chunk(kReadChunk);
  uint64_t line_no = 0;
  bool eof = false;
  int status = 0;
  while (status == 0) {
    size_t start = 0;
    while (true) {
      const size_t nl = buffer.find('\n', start);
      if (nl == std::string::npos && !(eof && start < buffer.size())) break;
      const size_t end = nl == std::string::npos ? buffer.size() : nl;
      const std::string_view line = Trim(std::string_view(buffer).substr(start, end - start));
      start = nl == std::string::npos ? buffer.size() : nl + 1;
      ++line_no;
      if (line.empty()) continue;
      Sample s;
      if (std::string problem = ParseLine(line, &s); !problem.empty()) {
        std::fprintf(err, "earshot: error: line %llu: %s: \"%.*s\"\n",
                     static_cast<unsigned long long>(line_no), problem.c_str(),
                     static_cast<int>(std::min<size_t>(line.size(), 200)), line.data());
        status = kExitBadInput;
        break;
      }
      const anomaly::DetectorPoint p = detector.Update(s.channel, s.t, s.value);
      output.append(s.timestamp);
      output.push_back(',');
      output.append(s.channel);
      output.append((auto_stop ? p.auto_stop : p.alarm()) ? ",1," : ",0,");
      AppendNumber(&output, p.band.band_low);
      output.push_back(',');
      AppendNumber(&output, p.band.band_high);
      output.push_back('\n');
      if (output.size() >= kFlushBytes && !Flush(&output, out)) {
        std::fprintf(err, "earshot: error: writing the output: %s\n", std::strerror(errno));
        return kExitBadInput;
      }
    }
    buffer.erase(0, start);
    if (status != 0 || eof) break;
    const size_t n = std::fread(chunk.data(), 1, chunk.size(), in);
    if (n == 0) {
      if (std::ferror(in)) {
        std::fprintf(err, "earshot: error: reading the input: %s\n", std::strerror(errno));
        status = kExitBadInput;
      }
      eof = true;
    }
    buffer.append(chunk.data(), n);
  }
  if (!Flush(&output, out) || std::fflush(out) != 0) {
    std::fprintf(err, "earshot: error: writing the output: %s\n", std::strerror(errno));
    return kExitBadInput;
  }
  return status;
}

}  // namespace earshot::cli
