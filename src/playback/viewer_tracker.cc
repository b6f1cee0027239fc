#include "playback/viewer_tracker.h"

#include <algorithm>
#include <iterator>
#include <tuple>
#include <unordered_set>

namespace earshot::playback {
namespace {

constexpr int64_t kMinuteMs = 60'000;

// floor(ms / 60000), also for times before 1970.
int64_t MinuteOf(int64_t ms) {
  int64_t q = ms / kMinuteMs;
  if (ms % kMinuteMs < 0) --q;
  return q;
}

}  // namespace

ViewerTracker::ViewerTracker(int64_t idle_timeout_ms, size_t max_viewers_per_channel)
    : idle_timeout_ms_(std::max<int64_t>(idle_timeout_ms, 1)),
      max_viewers_per_channel_(std::max<size_t>(max_viewers_per_channel, 1)) {}

ViewerTracker::Shard& ViewerTracker::ShardOf(std::string_view channel_id) {
  return shards_[StringHash{}(channel_id) % kShards];
}

ViewerTracker::Channel ViewerTracker::NewChannel(int64_t now_ms) const {
  Channel c;
  c.minute = MinuteOf(now_ms);
  c.next_report = c.minute;
  return c;
}

void ViewerTracker::Expire(Channel& c, int64_t now_ms) const {
  while (!c.viewers.empty() && now_ms - c.viewers.front().last_seen_ms > idle_timeout_ms_) {
    c.by_key.erase(c.viewers.front().key);
    c.viewers.pop_front();
  }
}

void ViewerTracker::Advance(Channel& c, int64_t now_ms) const {
  const int64_t minute = MinuteOf(now_ms);
  while (c.minute < minute) {
    // Close c.minute.
    if (c.minute_max > 0) {
      c.pending.emplace_back(c.minute, c.minute_max);
      if (static_cast<int64_t>(c.pending.size()) > kMaxPendingMinutes) c.pending.pop_front();
    }
    if (c.viewers.empty()) {
      // Nobody until now: every minute in between had 0 viewers.
      c.minute = minute;
      c.minute_max = 0;
      break;
    }
    // The next minute starts with the viewers still active at its start.
    ++c.minute;
    Expire(c, c.minute * kMinuteMs);
    c.minute_max = static_cast<int64_t>(c.viewers.size());
  }
  Expire(c, now_ms);
}

bool ViewerTracker::Idle(const Channel& c) {
  return c.viewers.empty() && c.pending.empty() && c.minute_max == 0 && !c.live;
}

void ViewerTracker::Seen(std::string_view channel_id, std::string_view viewer_key, int64_t now_ms) {
  Shard& shard = ShardOf(channel_id);
  std::lock_guard lock(shard.mu);
  auto it = shard.channels.find(channel_id);
  if (it == shard.channels.end()) {
    it = shard.channels.emplace(std::string(channel_id), NewChannel(now_ms)).first;
  }
  Channel& c = it->second;
  Advance(c, now_ms);

  ViewerList::iterator node;
  bool moved = true;
  if (auto found = c.by_key.find(viewer_key); found != c.by_key.end()) {
    node = found->second;
    moved = now_ms > node->last_seen_ms;
    if (moved) node->last_seen_ms = now_ms;
  } else {
    if (c.viewers.size() >= max_viewers_per_channel_) {
      // At the cap: the viewer seen least recently makes room.
      c.by_key.erase(c.viewers.front().key);
      c.viewers.pop_front();
    }
    c.viewers.push_back(Viewer{std::string(viewer_key), now_ms});
    node = std::prev(c.viewers.end());
    c.by_key.emplace(std::string_view(node->key), node);
  }
  if (moved) {
    // Keep the list in time order: the node goes after the last viewer seen
    // no later than it. Usually that is the back; callers that raced for the
    // lock walk past the few viewers seen in between.
    auto pos = c.viewers.end();
    while (pos != c.viewers.begin()) {
      auto prev = std::prev(pos);
      if (prev != node && prev->last_seen_ms <= node->last_seen_ms) break;
      pos = prev;
    }
    c.viewers.splice(pos, c.viewers, node);  // no-op when already in place
  }
  c.minute_max = std::max(c.minute_max, static_cast<int64_t>(c.viewers.size()));

  if (++shard.seen_calls % kSweepEvery == 0) {
    for (auto ch = shard.channels.begin(); ch != shard.channels.end();) {
      Advance(ch->second, now_ms);
      ch = Idle(ch->second) ? shard.channels.erase(ch) : std::next(ch);
    }
  }
}

int64_t ViewerTracker::Count(std::string_view channel_id, int64_t now_ms) {
  Shard& shard = ShardOf(channel_id);
  std::lock_guard lock(shard.mu);
  auto it = shard.channels.find(channel_id);
  if (it == shard.channels.end()) return 0;
  Advance(it->second, now_ms);
  return static_cast<int64_t>(it->second.viewers.size());
}

std::map<std::string, int64_t> ViewerTracker::Counts(int64_t now_ms) {
  std::map<std::string, int64_t> counts;
  for (Shard& shard : shards_) {
    std::lock_guard lock(shard.mu);
    for (auto ch = shard.channels.begin(); ch != shard.channels.end();) {
      Advance(ch->second, now_ms);
      if (!ch->second.viewers.empty()) {
        counts.emplace(ch->first, static_cast<int64_t>(ch->second.viewers.size()));
      }
      ch = Idle(ch->second) ? shard.channels.erase(ch) : std::next(ch);
    }
  }
  return counts;
}

std::vector<ViewerMinute> ViewerTracker::TakeClosedMinutes(
    int64_t now_ms, std::span<const std::string> live_channels) {
  const std::unordered_set<std::string_view, StringHash, std::equal_to<>> live(
      live_channels.begin(), live_channels.end());
  std::vector<ViewerMinute> out;
  for (Shard& shard : shards_) {
    std::lock_guard lock(shard.mu);
    for (auto ch = shard.channels.begin(); ch != shard.channels.end();) {
      Channel& c = ch->second;
      c.live = live.contains(ch->first);
      Advance(c, now_ms);
      // Minutes before c.minute have ended. Merge the pending ones (max > 0)
      // with 0s for a live channel's silent minutes.
      const int64_t end = c.minute;
      int64_t next = c.live ? std::max(c.next_report, end - kMaxBackfillMinutes) : end;
      for (const auto& [minute, max] : c.pending) {
        for (; next < std::min(minute, end); ++next) out.push_back({ch->first, next * 60, 0});
        out.push_back({ch->first, minute * 60, max});
        next = std::max(next, minute + 1);
      }
      for (; next < end; ++next) out.push_back({ch->first, next * 60, 0});
      c.pending.clear();
      c.next_report = std::max(c.next_report, end);
      ch = Idle(c) ? shard.channels.erase(ch) : std::next(ch);
    }
  }
  // Live channels the tracker has not met: their minutes count from now.
  for (const std::string& id : live_channels) {
    Shard& shard = ShardOf(id);
    std::lock_guard lock(shard.mu);
    if (shard.channels.contains(id)) continue;
    Channel c = NewChannel(now_ms);
    c.live = true;
    shard.channels.emplace(id, std::move(c));
  }
  std::sort(out.begin(), out.end(), [](const ViewerMinute& a, const ViewerMinute& b) {
    return std::tie(a.channel_id, a.minute_start_s) < std::tie(b.channel_id, b.minute_start_s);
  });
  return out;
}

void ViewerTracker::Forget(std::string_view channel_id) {
  Shard& shard = ShardOf(channel_id);
  std::lock_guard lock(shard.mu);
  if (auto it = shard.channels.find(channel_id); it != shard.channels.end()) {
    shard.channels.erase(it);
  }
}

}  // namespace earshot::playback
