// Viewer-spike alarms of `earshot serve`: the adapter around the anomaly
// detector (src/anomaly, no I/O). Alarms are resources in the state store
// (one channel, or every channel); each tick samples the concurrent-viewer
// counts of the live channels (PlaybackService), closes periods (statistic:
// the period's maximum), feeds them to each alarm's detector, stores the
// band for plots, and acts on state changes:
//   entering ALARM  -> an "Alarm" event (subscriptions deliver it by webhook
//                      or email) when the alarm notifies;
//   auto-stop       -> with "stop_stream", once the detector's auto-stop
//                      verdict holds (large and sustained), the stream is
//                      stopped (and its key reset with "reset_key");
//   back to OK      -> an "Alarm" event with state OK.
// The detectors' state is saved to the store every few periods and at Stop,
// and restored by Load, so a restart keeps what they learnt.
//
// Thread safety: every public method may be called from any thread (one
// mutex; Tick runs on the service's thread or a test's).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "anomaly/viewer_anomaly_detector.h"
#include "common/error.h"
#include "server/control_plane.h"
#include "server/metrics.h"
#include "server/playback_service.h"
#include "state/state_store.h"

namespace earshot::server {

// An alarm's settings (JSON names in parentheses; see docs/anomaly.md).
struct AlarmSpec {
  std::string name;                 // "name"
  std::string channel_id;           // "channel_id": "" = every channel
  double band_width = 3;            // "band_width": the band's width in standard deviations
  int64_t period_s = 60;            // "period_s": 1..3600
  int datapoints_to_alarm = 2;      // "datapoints_to_alarm": M
  int evaluation_periods = 3;       // "evaluation_periods": N (>= M)
  anomaly::MissingData missing_data = anomaly::MissingData::kMissing;  // "treat_missing_data"
  double min_sustain_s = 300;       // "min_sustain_s": a jump must last this long to breach
  bool notify = true;               // "actions.notify": an Alarm event (subscriptions)
  bool stop_stream = false;         // "actions.stop_stream": auto-stop (opt-in)
  bool reset_key = true;            // "actions.reset_key": with stop_stream, also reset the key
  double auto_stop_ratio = 8;       // "auto_stop.ratio": x the expected audience at least
  double auto_stop_sustain_s = 480; // "auto_stop.sustain_s": held this long at least
  // "auto_stop.min_learned_minutes": never stop a channel whose usual
  // audience the detector has seen for less than this (live minutes): a
  // popular channel it has just met looks like a spike against the prior.
  double auto_stop_min_learned_minutes = 120;
};

// Parses and validates (unknown members refused, so a typo cannot silently
// keep a default). kInvalidArgument naming the member.
Result<AlarmSpec> AlarmSpecFromJson(const nlohmann::json& json);
nlohmann::json AlarmSpecToJson(const AlarmSpec& spec);
anomaly::DetectorOptions DetectorOptionsFor(const AlarmSpec& spec);

struct AlarmServiceOptions {
  int64_t tick_ms = 1000;        // how often counts are sampled
  int save_every_periods = 10;   // detector state saved every this many closed periods
};

class AlarmService {
 public:
  AlarmService(state::StateStore& state, PlaybackService& viewers, ControlPlane& control,
               Metrics* metrics, AlarmServiceOptions options = {});
  ~AlarmService();  // Stop()

  // Reads the alarms and their detectors' saved state. Errors name the alarm.
  Status Load();
  void Start();
  // Stops the thread and saves every detector's state.
  void Stop();

  // --- the /v1/alarms resource -------------------------------------------
  Result<nlohmann::json> Create(const nlohmann::json& body);
  Result<nlohmann::json> Get(const std::string& id);
  Result<nlohmann::json> List();
  Status Delete(const std::string& id);

  // One sampling step at `now_ms` (the thread calls it every tick_ms).
  void Tick(int64_t now_ms);

 private:
  struct PeriodMax {
    int64_t period_start_s = 0;
    double max = 0;
    bool has = false;
  };
  struct Runtime {
    state::AlarmRecord record;
    AlarmSpec spec;
    std::unique_ptr<anomaly::ViewerAnomalyDetector> detector;
    std::map<std::string, PeriodMax> open;       // channel -> the period being sampled
    std::map<std::string, bool> stop_pending;    // channel -> a stop failed; try again
    std::set<std::string> known;                 // channels its detector has state for
    int closed_since_save = 0;
  };

  Result<std::unique_ptr<Runtime>> MakeRuntime(const state::AlarmRecord& record);
  nlohmann::json RuntimeJson(const Runtime& r) const;
  // `stream_id`: the channel's live stream ("" when it is offline now).
  void ClosePeriod(Runtime& r, const std::string& channel, const std::string& stream_id,
                   const PeriodMax& period,
                   std::vector<state::AlarmPointRecord>& points);
  void SaveStates(Runtime& r);

  state::StateStore& state_;
  PlaybackService& viewers_;
  ControlPlane& control_;
  Metrics* metrics_;
  AlarmServiceOptions options_;

  std::mutex mutex_;
  std::map<std::string, std::unique_ptr<Runtime>> alarms_;  // GUARDED_BY(mutex_)

  std::mutex thread_mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;  // GUARDED_BY(thread_mutex_)
  std::thread thread_;
};

}  // namespace earshot::server
