#include "delivery/registry.h"

#include <map>
#include <mutex>

#include "delivery/email_notifier.h"
#include "delivery/s3_sink.h"
#include "delivery/webhook_notifier.h"

namespace earshot::delivery {
namespace {

struct Registry {
  std::map<std::string, SinkFactory> sinks;
  std::map<std::string, NotifierFactory> notifiers;
};

Registry& TheRegistry() {
  static Registry* registry = [] {
    auto* r = new Registry;
    r->sinks["s3"] = [](const TargetSpec& spec) { return MakeS3Sink(spec); };
    r->notifiers["webhook"] = [](const TargetSpec& spec) { return MakeWebhookNotifier(spec); };
    r->notifiers["email"] = [](const TargetSpec& spec) { return MakeEmailNotifier(spec); };
    return r;
  }();
  return *registry;
}

// A target under another name (name=...): forwards every call.
class NamedSink final : public ResultSink {
 public:
  NamedSink(std::string name, std::unique_ptr<ResultSink> inner)
      : name_(std::move(name)), inner_(std::move(inner)) {}
  const std::string& name() const override { return name_; }
  Status Put(const ResultFile& file) override { return inner_->Put(file); }

 private:
  std::string name_;
  std::unique_ptr<ResultSink> inner_;
};

class NamedNotifier final : public Notifier {
 public:
  NamedNotifier(std::string name, std::unique_ptr<Notifier> inner)
      : name_(std::move(name)), inner_(std::move(inner)) {}
  const std::string& name() const override { return name_; }
  Status Notify(const Notification& n) override { return inner_->Notify(n); }

 private:
  std::string name_;
  std::unique_ptr<Notifier> inner_;
};

template <class Map>
std::string KnownKinds(const Map& map) {
  std::string out;
  for (const auto& [kind, factory] : map) out += (out.empty() ? "" : ", ") + kind;
  return out;
}

// Splits name=... off a spec; checks it names a folder safely.
Result<std::string> TakeName(TargetSpec& spec) {
  auto it = spec.options.find("name");
  if (it == spec.options.end()) return spec.kind;
  std::string name = it->second;
  spec.options.erase(it);
  bool ok = !name.empty() && name.size() <= 64 && name.front() != '.';
  for (char c : name) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_');
  if (!ok) {
    return MakeError(ErrorCode::kInvalidArgument,
                     spec.kind + ": name '" + name + "' must be 1-64 of A-Z a-z 0-9 - _");
  }
  return name;
}

template <class T, class Named, class Map>
Result<std::unique_ptr<T>> Make(std::string_view text, const Map& map, const char* what) {
  auto spec = ParseTargetSpec(text);
  if (!spec) return std::unexpected(spec.error());
  auto name = TakeName(*spec);
  if (!name) return std::unexpected(name.error());
  auto it = map.find(spec->kind);
  if (it == map.end()) {
    return MakeError(ErrorCode::kInvalidArgument, "unknown " + std::string(what) + " kind '" +
                                                      spec->kind + "' (known: " + KnownKinds(map) +
                                                      ")");
  }
  auto made = it->second(*spec);
  if (!made) return std::unexpected(made.error());
  if (*name == (*made)->name()) return std::move(*made);
  return std::unique_ptr<T>(std::make_unique<Named>(*name, std::move(*made)));
}

}  // namespace

void RegisterSinkKind(const std::string& kind, SinkFactory factory) {
  TheRegistry().sinks[kind] = std::move(factory);
}
void RegisterNotifierKind(const std::string& kind, NotifierFactory factory) {
  TheRegistry().notifiers[kind] = std::move(factory);
}

Result<std::unique_ptr<ResultSink>> MakeSink(std::string_view spec) {
  return Make<ResultSink, NamedSink>(spec, TheRegistry().sinks, "sink");
}
Result<std::unique_ptr<Notifier>> MakeNotifier(std::string_view spec) {
  return Make<Notifier, NamedNotifier>(spec, TheRegistry().notifiers, "notifier");
}

std::vector<std::string> SinkKinds() {
  std::vector<std::string> out;
  for (const auto& [kind, f] : TheRegistry().sinks) out.push_back(kind);
  return out;
}
std::vector<std::string> NotifierKinds() {
  std::vector<std::string> out;
  for (const auto& [kind, f] : TheRegistry().notifiers) out.push_back(kind);
  return out;
}

}  // namespace earshot::delivery
