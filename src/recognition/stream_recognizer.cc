#include "recognition/stream_recognizer.h"

#include <algorithm>
#include <cmath>

namespace earshot::recognition {

const char* StreamEventTypeName(StreamEvent::Type type) {
  switch (type) {
    case StreamEvent::Type::kStarted: return "started";
    case StreamEvent::Type::kOngoing: return "ongoing";
    case StreamEvent::Type::kEnded: return "ended";
  }
  return "unknown";
}

StreamRecognizer::StreamRecognizer(const Matcher& matcher, const StreamParams& params)
    : matcher_(matcher),
      params_(params),
      fp_params_(matcher.params()),
      fingerprinter_(matcher.params(), matcher.query_params().query_peaks_per_band) {}

double StreamRecognizer::stream_seconds() const {
  return static_cast<double>(samples_) / fp_params_.sample_rate;
}

void StreamRecognizer::Push(std::span<const float> pcm, std::vector<StreamEvent>& events) {
  const uint64_t hop_samples =
      std::max<uint64_t>(1, static_cast<uint64_t>(params_.hop_seconds * fp_params_.sample_rate));
  if (next_step_sample_ == 0) next_step_sample_ = hop_samples;
  while (!pcm.empty()) {
    const size_t take = static_cast<size_t>(std::min<uint64_t>(pcm.size(), next_step_sample_ - samples_));
    new_peaks_.clear();
    fingerprinter_.Push(pcm.first(take), new_peaks_);
    peaks_.insert(peaks_.end(), new_peaks_.begin(), new_peaks_.end());
    samples_ += take;
    pcm = pcm.subspan(take);
    if (samples_ >= next_step_sample_) {
      Step(fingerprinter_.frames(), /*final_step=*/false, events);
      next_step_sample_ += hop_samples;
    }
  }
}

void StreamRecognizer::Finish(std::vector<StreamEvent>& events) {
  new_peaks_.clear();
  fingerprinter_.Finish(new_peaks_);
  peaks_.insert(peaks_.end(), new_peaks_.begin(), new_peaks_.end());
  Step(fingerprinter_.frames(), /*final_step=*/true, events);
  const uint32_t now = fingerprinter_.frames();
  for (const Active& a : active_) events.push_back(MakeEvent(StreamEvent::Type::kEnded, a, now));
  active_.clear();
}

StreamEvent StreamRecognizer::MakeEvent(StreamEvent::Type type, const Active& a,
                                        uint32_t now_frame) const {
  const double hop = fp_params_.hop_seconds();
  StreamEvent e;
  e.type = type;
  e.match_id = a.id;
  e.track = a.track;
  e.start_seconds = a.first_frame * hop;
  e.end_seconds = std::max(a.last_confirmed_frame, a.first_frame) * hop;
  e.reported_at_seconds = std::max(static_cast<double>(now_frame) * hop, stream_seconds());
  e.reference_seconds = (a.offset + a.scale * a.first_frame) * hop;
  e.time_scale = a.scale;
  e.pitch_factor = a.pitch;
  e.score = a.best_score;
  return e;
}

void StreamRecognizer::Prune(uint32_t now_frame) {
  const uint32_t window = static_cast<uint32_t>(params_.window_seconds * fp_params_.frames_per_second());
  const uint32_t horizon = now_frame > window ? now_frame - window : 0;
  // Peaks are kept a little longer than the window: pairs need their targets.
  const uint32_t peak_horizon =
      horizon > static_cast<uint32_t>(fp_params_.pair_max_dt) ? horizon - static_cast<uint32_t>(fp_params_.pair_max_dt) : 0;
  while (!peaks_.empty() && peaks_.front().frame < std::min(peak_horizon, next_anchor_frame_)) peaks_.pop_front();
  votes_.DropBefore(static_cast<int32_t>(horizon));
}

void StreamRecognizer::Step(uint32_t now_frame, bool final_step, std::vector<StreamEvent>& events) {
  if (peaks_.empty()) return;
  const QueryParams& query = matcher_.query_params();

  // 1. Votes of the anchors whose targets are all known by now.
  const uint32_t last_peak = peaks_.back().frame;
  const uint32_t max_dt = static_cast<uint32_t>(fp_params_.pair_max_dt);
  const uint32_t anchor_end =
      final_step ? UINT32_MAX : (last_peak > max_dt ? last_peak - max_dt : 0);
  if (anchor_end > next_anchor_frame_) {
    scratch_peaks_.clear();
    for (const Peak& p : peaks_) {
      if (p.frame >= next_anchor_frame_) scratch_peaks_.push_back(p);
    }
    // CollectVotes visits anchors in frame order, so the votes arrive in
    // query_frame order, as the window wants them.
    new_votes_.clear();
    matcher_.CollectVotes(scratch_peaks_, next_anchor_frame_, anchor_end, new_votes_);
    votes_.Add(new_votes_);
    next_anchor_frame_ = anchor_end;
  }
  Prune(now_frame);
  if (peaks_.empty()) return;
  const uint32_t window_frames = static_cast<uint32_t>(params_.window_seconds * fp_params_.frames_per_second());
  std::erase_if(recently_ended_, [&](const auto& kv) { return kv.second + window_frames < now_frame; });

  const double fps = fp_params_.frames_per_second();
  // 2. Follow the running matches on the most recent audio.
  const uint32_t follow = static_cast<uint32_t>(params_.follow_seconds * fps);
  const uint32_t follow_base = now_frame > follow ? now_frame - follow : 0;
  scratch_peaks_.clear();
  for (const Peak& p : peaks_) {
    if (p.frame >= follow_base) {
      Peak q = p;
      q.frame -= follow_base;
      scratch_peaks_.push_back(q);
    }
  }
  const uint32_t end_after = static_cast<uint32_t>(params_.end_after_seconds * fps);
  const uint32_t ongoing_every = static_cast<uint32_t>(params_.ongoing_every_seconds * fps);
  for (size_t i = 0; i < active_.size();) {
    Active& a = active_[i];
    if (!scratch_peaks_.empty()) {
      const MatchResult r = matcher_.Verify(scratch_peaks_, a.track, a.offset + a.scale * follow_base,
                                            a.scale, a.pitch);
      if (r.score >= params_.continue_score && r.hits > 0) {
        a.last_confirmed_frame = std::max(a.last_confirmed_frame, follow_base + r.query_last_frame);
        // Only strong evidence moves the offset (weak verifications at the
        // edges of the music would pull it off). Scale and pitch come from
        // full verifications over the window (step 3): the follow search is
        // too narrow to estimate them without drifting.
        if (r.score >= query.min_score) a.offset = r.reference_offset - a.scale * follow_base;
        a.best_score = std::max(a.best_score, r.score);
      }
    }
    if (final_step) {  // Finish() ends every running match after this step
      ++i;
      continue;
    }
    if (now_frame > a.last_confirmed_frame + end_after) {
      events.push_back(MakeEvent(StreamEvent::Type::kEnded, a, now_frame));
      recently_ended_[a.track] = a.last_confirmed_frame;
      active_.erase(active_.begin() + static_cast<ptrdiff_t>(i));
      continue;
    }
    if (now_frame >= a.last_report_frame + ongoing_every) {
      events.push_back(MakeEvent(StreamEvent::Type::kOngoing, a, now_frame));
      a.last_report_frame = now_frame;
    }
    ++i;
  }

  // 3. New matches among the window's candidates.
  if (votes_.empty()) return;
  const uint32_t base = static_cast<uint32_t>(votes_.first_query_frame());
  scratch_peaks_.clear();
  for (const Peak& p : peaks_) {
    if (p.frame >= base) {
      Peak q = p;
      q.frame -= base;
      scratch_peaks_.push_back(q);
    }
  }
  for (Candidate& c : matcher_.RankWindowCandidates(votes_)) {
    // Verification works on frames counted from the window's start.
    for (Vote& v : c.votes) v.query_frame -= static_cast<int32_t>(base);
    const MatchResult r = matcher_.VerifyCandidate(scratch_peaks_, c, query.min_score);
    if (r.score < query.min_score) continue;
    const double offset = r.reference_offset - r.time_scale * base;
    const uint32_t first = base + r.query_first_frame;
    const uint32_t last = base + r.query_last_frame;
    // Only music that is still playing starts a match, and a track that just
    // ended needs new evidence after its end (the window still holds its tail).
    if (now_frame > last + end_after) continue;
    const auto ended = recently_ended_.find(r.track);
    if (ended != recently_ended_.end() && last <= ended->second + end_after) continue;
    bool known = false;
    // One running match per track: music that loops or repeats a section
    // aligns at several offsets, and all of them are the same playback.
    for (Active& a : active_) {
      if (a.track == r.track) {
        known = true;
        a.last_confirmed_frame = std::max(a.last_confirmed_frame, last);
        // A full verification over the window fits scale and offset on more
        // audio than the one that started the match: adopt its alignment
        // when it is at least as convincing, and the match's start moves
        // with it (the reference start is derived from the alignment).
        if (r.score >= a.best_score) {
          a.offset = offset;
          a.scale = r.time_scale;
          a.pitch = r.pitch_factor;
        }
        a.best_score = std::max(a.best_score, r.score);
        break;
      }
    }
    if (known) continue;
    Active a;
    a.id = next_match_id_++;
    a.track = r.track;
    a.offset = offset;
    a.scale = r.time_scale;
    a.pitch = r.pitch_factor;
    a.first_frame = first;
    a.last_confirmed_frame = last;
    a.best_score = r.score;
    a.last_report_frame = now_frame;
    events.push_back(MakeEvent(StreamEvent::Type::kStarted, a, now_frame));
    active_.push_back(a);
  }
}

}  // namespace earshot::recognition
