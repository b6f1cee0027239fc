#include "store/manifest.h"

#include <array>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <system_error>
#include <utility>

namespace earshot::store {
namespace {

using nlohmann::json;

enum class Column { kPath, kTitle, kArtist, kRightsHolder, kIsrc, kRule, kTags };

struct ColumnName {
  std::string_view name;
  Column column;
};

constexpr std::array<ColumnName, 7> kColumns = {{
    {"path", Column::kPath},
    {"title", Column::kTitle},
    {"artist", Column::kArtist},
    {"rights_holder", Column::kRightsHolder},
    {"isrc", Column::kIsrc},
    {"rule", Column::kRule},
    {"tags", Column::kTags},
}};

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

std::string AllowedColumns() {
  std::string out;
  for (const ColumnName& c : kColumns) {
    if (!out.empty()) out.append(", ");
    out.append(c.name);
  }
  return out;
}

std::string_view NameOf(Column column) {
  for (const ColumnName& c : kColumns) {
    if (c.column == column) return c.name;
  }
  return "?";
}

char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string Lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = AsciiLower(c);
  return out;
}

std::string_view Trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n\v\f";
  const size_t begin = s.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  const size_t end = s.find_last_not_of(kSpace);
  return s.substr(begin, end - begin + 1);
}

std::vector<std::string_view> Split(std::string_view s, char separator) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t end = s.find(separator, start);
    if (end == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, end - start));
    start = end + 1;
  }
}

std::string Quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::filesystem::path ResolvePath(std::string_view raw, const std::filesystem::path& base_dir) {
  std::filesystem::path path{std::string(raw)};
  if (path.is_relative() && !base_dir.empty()) path = (base_dir / path).lexically_normal();
  return path;
}

// Stores one textual field of an item (every column but tags).
Status SetField(Column column, std::string_view value, const std::filesystem::path& base_dir,
                ManifestItem& item) {
  switch (column) {
    case Column::kPath:
      if (value.empty()) return MakeError(ErrorCode::kInvalidArgument, "the path is empty");
      item.path = ResolvePath(value, base_dir);
      return Ok();
    case Column::kTitle:
      item.metadata.title = value;
      return Ok();
    case Column::kArtist:
      item.metadata.artist = value;
      return Ok();
    case Column::kRightsHolder:
      item.metadata.rights_holder = value;
      return Ok();
    case Column::kIsrc: {
      auto isrc = NormalizeIsrc(value);
      if (!isrc) return std::unexpected(isrc.error());
      item.metadata.isrc = std::move(*isrc);
      return Ok();
    }
    case Column::kRule: {
      if (value.empty()) {
        item.rule.reset();
        return Ok();
      }
      auto rule = ParseBusinessRule(value);
      if (!rule) return std::unexpected(rule.error());
      item.rule = *rule;
      return Ok();
    }
    case Column::kTags:
      break;
  }
  return MakeError(ErrorCode::kInternal, "manifest column without a text setter");
}

Status AddTag(std::string_view key, std::string_view value, ManifestItem& item) {
  if (key.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "tag with an empty key (=" + std::string(value) + ")");
  }
  if (!item.metadata.tags.emplace(std::string(key), std::string(value)).second) {
    return MakeError(ErrorCode::kInvalidArgument, "tag " + Quoted(key) + " appears twice");
  }
  return Ok();
}

// `k=v;k2=v2`; empty segments (a trailing ';') are ignored.
Status ParseTagList(std::string_view text, ManifestItem& item) {
  for (std::string_view segment : Split(text, ';')) {
    segment = Trim(segment);
    if (segment.empty()) continue;
    const size_t eq = segment.find('=');
    if (eq == std::string_view::npos) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "tag " + Quoted(segment) + " has no '=' (expected key=value;key2=value2)");
    }
    if (auto s = AddTag(Trim(segment.substr(0, eq)), Trim(segment.substr(eq + 1)), item); !s) {
      return s;
    }
  }
  return Ok();
}

// ---------------------------------------------------------------------- TSV

Result<std::vector<Column>> ParseHeader(const std::vector<std::string_view>& fields) {
  std::vector<Column> header;
  std::vector<std::string> unknown;
  for (size_t i = 0; i < fields.size(); ++i) {
    const std::string name = Lowercase(Trim(fields[i]));
    if (name.empty()) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "header: column " + std::to_string(i + 1) + " has no name");
    }
    bool known = false;
    for (const ColumnName& c : kColumns) {
      if (c.name != name) continue;
      known = true;
      for (Column seen : header) {
        if (seen == c.column) {
          return MakeError(ErrorCode::kInvalidArgument,
                           "header: column " + Quoted(name) + " appears twice");
        }
      }
      header.push_back(c.column);
    }
    if (!known) unknown.push_back(Quoted(Trim(fields[i])));
  }
  if (!unknown.empty()) {
    std::string list;
    for (const std::string& u : unknown) list.append(list.empty() ? "" : ", ").append(u);
    return MakeError(ErrorCode::kInvalidArgument, std::string("header: unknown column") +
                                                      (unknown.size() > 1 ? "s " : " ") + list +
                                                      " (allowed: " + AllowedColumns() + ")");
  }
  bool has_path = false;
  for (Column c : header) has_path = has_path || c == Column::kPath;
  if (!has_path) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "header: no \"path\" column (columns are tab-separated; allowed: " +
                         AllowedColumns() + ")");
  }
  return header;
}

std::string HeaderList(const std::vector<Column>& header) {
  std::string out;
  for (Column c : header) out.append(out.empty() ? "" : ", ").append(NameOf(c));
  return out;
}

Result<std::vector<ManifestItem>> ParseTsv(std::string_view text,
                                           const std::filesystem::path& base_dir) {
  if (text.starts_with(kUtf8Bom)) text.remove_prefix(kUtf8Bom.size());
  std::vector<ManifestItem> items;
  std::optional<std::vector<Column>> header;
  size_t line_number = 0;
  for (std::string_view line : Split(text, '\n')) {
    ++line_number;
    if (line.ends_with('\r')) line.remove_suffix(1);
    const std::string_view trimmed = Trim(line);
    if (trimmed.empty() || trimmed.front() == '#') continue;
    const std::string where = "line " + std::to_string(line_number);
    const std::vector<std::string_view> fields = Split(line, '\t');
    if (!header) {
      auto parsed = ParseHeader(fields);
      if (!parsed) return std::unexpected(parsed.error().Wrap(where));
      header = std::move(*parsed);
      continue;
    }
    if (fields.size() != header->size()) {
      return MakeError(ErrorCode::kInvalidArgument,
                       where + ": expected " + std::to_string(header->size()) +
                           " tab-separated fields (" + HeaderList(*header) + ") but found " +
                           std::to_string(fields.size()));
    }
    ManifestItem item;
    for (size_t i = 0; i < fields.size(); ++i) {
      const Column column = (*header)[i];
      const std::string_view value = Trim(fields[i]);
      Status status = column == Column::kTags ? ParseTagList(value, item)
                                              : SetField(column, value, base_dir, item);
      if (!status) {
        return std::unexpected(status.error().Wrap(where + ": column " + Quoted(NameOf(column))));
      }
    }
    items.push_back(std::move(item));
  }
  if (!header) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "no header line: the first line must name the tab-separated columns (" +
                         AllowedColumns() + "; path is required)");
  }
  return items;
}

// --------------------------------------------------------------------- JSON

Result<ManifestItem> ParseJsonItem(const json& object, const std::filesystem::path& base_dir) {
  if (!object.is_object()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     std::string("expected an object, got ") + object.type_name());
  }
  std::vector<std::string> unknown;
  for (const auto& [key, value] : object.items()) {
    bool known = false;
    for (const ColumnName& c : kColumns) known = known || c.name == key;
    if (!known) unknown.push_back(Quoted(key));
  }
  if (!unknown.empty()) {
    std::string list;
    for (const std::string& u : unknown) list.append(list.empty() ? "" : ", ").append(u);
    return MakeError(ErrorCode::kInvalidArgument, std::string("unknown key") +
                                                      (unknown.size() > 1 ? "s " : " ") + list +
                                                      " (allowed: " + AllowedColumns() + ")");
  }
  ManifestItem item;
  auto path = object.find("path");
  if (path == object.end() || path->is_null()) {
    return MakeError(ErrorCode::kInvalidArgument, "\"path\" is missing");
  }
  for (const ColumnName& c : kColumns) {
    auto it = object.find(c.name);
    if (it == object.end() || it->is_null()) continue;
    if (c.column == Column::kTags) {
      if (!it->is_object()) {
        return MakeError(
            ErrorCode::kInvalidArgument,
            std::string("\"tags\" must be an object of strings, got ") + it->type_name());
      }
      for (const auto& [key, value] : it->items()) {
        if (!value.is_string()) {
          return MakeError(ErrorCode::kInvalidArgument,
                           "tag " + Quoted(key) + " must be a string, got " + value.type_name());
        }
        if (auto s = AddTag(key, value.get_ref<const std::string&>(), item); !s) {
          return std::unexpected(s.error());
        }
      }
      continue;
    }
    if (!it->is_string()) {
      return MakeError(ErrorCode::kInvalidArgument,
                       Quoted(c.name) + " must be a string, got " + it->type_name());
    }
    const std::string& text = it->get_ref<const std::string&>();
    if (auto s = SetField(c.column, Trim(text), base_dir, item); !s) {
      return std::unexpected(s.error().Wrap(Quoted(c.name)));
    }
  }
  return item;
}

Result<std::vector<ManifestItem>> ParseJson(std::string_view text,
                                            const std::filesystem::path& base_dir) {
  json document;
  try {
    document = json::parse(text);
  } catch (const json::parse_error& e) {
    // e.what() is "[json.exception.parse_error.101] parse error at line 3,
    // column 5: ..."; keep the part after the tag.
    std::string_view what = e.what();
    if (const size_t tag_end = what.find("] ");
        what.starts_with("[json.") && tag_end != std::string_view::npos) {
      what.remove_prefix(tag_end + 2);
    }
    return MakeError(ErrorCode::kInvalidArgument,
                     "malformed JSON (byte " + std::to_string(e.byte) + "): " + std::string(what));
  }
  if (!document.is_array()) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        std::string("the manifest must be a JSON array of objects, got ") + document.type_name());
  }
  std::vector<ManifestItem> items;
  items.reserve(document.size());
  for (size_t i = 0; i < document.size(); ++i) {
    auto item = ParseJsonItem(document[i], base_dir);
    if (!item) return std::unexpected(item.error().Wrap("element [" + std::to_string(i) + "]"));
    items.push_back(std::move(*item));
  }
  return items;
}

Result<std::string> ReadFile(const std::filesystem::path& path) {
  struct FileClose {
    void operator()(std::FILE* file) const { std::fclose(file); }
  };
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return MakeError(ErrorCode::kIoError, "is a folder, not a file");
  }
  errno = 0;
  std::unique_ptr<std::FILE, FileClose> file(std::fopen(path.c_str(), "rb"));
  if (file == nullptr) {
    const int err = errno;
    return MakeError(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIoError,
                     "cannot open: " + std::generic_category().message(err));
  }
  std::string contents;
  char buffer[1 << 14];
  while (true) {
    const size_t n = std::fread(buffer, 1, sizeof(buffer), file.get());
    contents.append(buffer, n);
    if (n < sizeof(buffer)) {
      if (std::ferror(file.get())) {
        const int err = errno;
        return MakeError(ErrorCode::kIoError,
                         "read failed: " + std::generic_category().message(err));
      }
      return contents;
    }
  }
}

}  // namespace

Result<ManifestFormat> ManifestFormatFromPath(const std::filesystem::path& path) {
  const std::string extension = Lowercase(path.extension().string());
  if (extension == ".tsv") return ManifestFormat::kTsv;
  if (extension == ".json") return ManifestFormat::kJson;
  return MakeError(
      ErrorCode::kInvalidArgument,
      "manifest " + path.string() + ": unknown format" +
          (extension.empty() ? std::string(" (no extension)") : " " + Quoted(extension)) +
          "; expected a .tsv or .json file");
}

Result<std::vector<ManifestItem>> ParseManifest(const std::filesystem::path& manifest_path) {
  const std::string context = "manifest " + manifest_path.string();
  auto format = ManifestFormatFromPath(manifest_path);
  if (!format) return std::unexpected(format.error());
  auto text = ReadFile(manifest_path);
  if (!text) return std::unexpected(text.error().Wrap(context));
  std::error_code ec;
  std::filesystem::path base_dir = std::filesystem::absolute(manifest_path, ec).parent_path();
  if (ec) base_dir = manifest_path.parent_path();
  auto items = ParseManifestText(*text, *format, base_dir);
  if (!items) return std::unexpected(items.error().Wrap(context));
  return items;
}

Result<std::vector<ManifestItem>> ParseManifestText(std::string_view text, ManifestFormat format,
                                                    const std::filesystem::path& base_dir) {
  switch (format) {
    case ManifestFormat::kTsv:
      return ParseTsv(text, base_dir);
    case ManifestFormat::kJson:
      return ParseJson(text, base_dir);
  }
  return MakeError(ErrorCode::kInternal, "unknown manifest format");
}

}  // namespace earshot::store
