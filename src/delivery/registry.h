// Delivery backends by name: a spec string (target_spec.h) is turned into a
// ResultSink or Notifier by the factory registered for its kind.
//
// Built in: sinks "s3"; notifiers "webhook", "email". Every spec may carry
// name=NAME to tell two targets of one kind apart (it names the target's
// spool folder and its log lines; default: the kind).
//
// Thread safety: Register* must happen before concurrent Make* calls
// (during start-up); Make* may then be called from any thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "delivery/sink.h"
#include "delivery/target_spec.h"

namespace earshot::delivery {

using SinkFactory = std::function<Result<std::unique_ptr<ResultSink>>(const TargetSpec&)>;
using NotifierFactory = std::function<Result<std::unique_ptr<Notifier>>(const TargetSpec&)>;

// Adds (or replaces) the factory for `kind`.
void RegisterSinkKind(const std::string& kind, SinkFactory factory);
void RegisterNotifierKind(const std::string& kind, NotifierFactory factory);

// Builds a target from its spec. kInvalidArgument for an unknown kind (the
// message lists the known ones) or whatever the factory refuses.
Result<std::unique_ptr<ResultSink>> MakeSink(std::string_view spec);
Result<std::unique_ptr<Notifier>> MakeNotifier(std::string_view spec);

std::vector<std::string> SinkKinds();
std::vector<std::string> NotifierKinds();

}  // namespace earshot::delivery
