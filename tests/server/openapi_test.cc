#include <gtest/gtest.h>

#include <set>

#include <nlohmann/json.hpp>

#include "server/http_api.h"
#include "server/openapi_doc.h"

namespace earshot::server {
namespace {

// The document served at /v1/openapi.json describes exactly the routes the
// server registers: nothing undocumented, nothing documented that is missing.
TEST(OpenApiTest, DocumentMatchesTheRegisteredRoutes) {
  const nlohmann::json doc = nlohmann::json::parse(OpenApiDocument(), nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << "docs/openapi.json is not valid JSON";
  ASSERT_EQ(doc["openapi"], "3.0.3");
  std::set<std::pair<std::string, std::string>> documented;
  for (const auto& [path, ops] : doc["paths"].items()) {
    for (const auto& [method, op] : ops.items()) {
      std::string m = method;
      for (char& c : m) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      documented.insert({m, path});
      EXPECT_TRUE(op.contains("responses")) << m << " " << path;
      EXPECT_TRUE(op.contains("operationId")) << m << " " << path;
    }
  }
  ServeConfig config;
  HttpApiDeps deps;
  deps.config = &config;
  HttpApi api(deps);  // registers routes; nothing is served
  std::set<std::pair<std::string, std::string>> registered;
  for (const RouteInfo& r : api.routes()) registered.insert({r.method, r.path});
  for (const auto& r : registered) EXPECT_TRUE(documented.contains(r)) << "undocumented: " << r.first << " " << r.second;
  for (const auto& d : documented) EXPECT_TRUE(registered.contains(d)) << "not implemented: " << d.first << " " << d.second;
}

// Every $ref points at a schema that exists.
TEST(OpenApiTest, EveryReferenceResolves) {
  const std::string text(OpenApiDocument());
  const nlohmann::json doc = nlohmann::json::parse(text);
  size_t pos = 0;
  int refs = 0;
  const std::string marker = "\"$ref\": \"#/components/schemas/";
  while ((pos = text.find(marker, pos)) != std::string::npos) {
    pos += marker.size();
    const std::string name = text.substr(pos, text.find('"', pos) - pos);
    EXPECT_TRUE(doc["components"]["schemas"].contains(name)) << name;
    ++refs;
  }
  EXPECT_GT(refs, 10);
}

}  // namespace
}  // namespace earshot::server
