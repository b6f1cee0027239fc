#include "recognition/memory_index.h"

#include <algorithm>
#include <string>
#include <utility>

namespace earshot::recognition {
namespace {

bool ByTrackTime(const Posting& a, const Posting& b) {
  return a.track != b.track ? a.track < b.track : a.time < b.time;
}

}  // namespace

Status MemoryIndex::Add(TrackFingerprint track) {
  if (tracks_.contains(track.track)) {
    return MakeError(ErrorCode::kAlreadyExists,
                     "track " + std::to_string(track.track) + " is already in the index");
  }
  Track& t = tracks_[track.track];
  t.frame_count = track.frame_count;
  t.side_data = std::move(track.side_data);
  t.postings = track.hashes.size();
  for (const HashEntry& h : track.hashes) {
    std::vector<Posting>& list = postings_[h.hash];
    const Posting p{track.track, h.time};
    list.insert(std::upper_bound(list.begin(), list.end(), p, ByTrackTime), p);
    t.keys.push_back(h.hash);
  }
  std::sort(t.keys.begin(), t.keys.end());
  t.keys.erase(std::unique(t.keys.begin(), t.keys.end()), t.keys.end());
  posting_count_ += t.postings;
  return Ok();
}

Status MemoryIndex::Remove(TrackId track) {
  auto it = tracks_.find(track);
  if (it == tracks_.end()) {
    return MakeError(ErrorCode::kNotFound,
                     "track " + std::to_string(track) + " is not in the index");
  }
  for (HashKey key : it->second.keys) {
    auto list = postings_.find(key);
    if (list == postings_.end()) continue;
    std::erase_if(list->second, [track](const Posting& p) { return p.track == track; });
    if (list->second.empty()) postings_.erase(list);
  }
  posting_count_ -= it->second.postings;
  tracks_.erase(it);
  return Ok();
}

std::vector<HashKey> MemoryIndex::Keys() const {
  std::vector<HashKey> keys;
  keys.reserve(postings_.size());
  for (const auto& [key, list] : postings_) keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  return keys;
}

std::vector<TrackId> MemoryIndex::Tracks() const {
  std::vector<TrackId> ids;
  ids.reserve(tracks_.size());
  for (const auto& [id, track] : tracks_) ids.push_back(id);
  return ids;
}

void MemoryIndex::Lookup(HashKey hash, std::vector<Posting>& out) const {
  auto it = postings_.find(hash);
  if (it != postings_.end()) out.insert(out.end(), it->second.begin(), it->second.end());
}

bool MemoryIndex::HasTrack(TrackId track) const { return tracks_.contains(track); }

std::span<const uint8_t> MemoryIndex::SideData(TrackId track) const {
  auto it = tracks_.find(track);
  return it == tracks_.end() ? std::span<const uint8_t>() : std::span(it->second.side_data);
}

uint32_t MemoryIndex::FrameCount(TrackId track) const {
  auto it = tracks_.find(track);
  return it == tracks_.end() ? 0 : it->second.frame_count;
}

}  // namespace earshot::recognition
