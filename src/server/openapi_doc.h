// The OpenAPI 3 document of the HTTP API (docs/openapi.json, compiled in at
// build time), served at GET /v1/openapi.json. Tests check it against the
// routes the server registers.
#pragma once

#include <string_view>

namespace earshot::server {

// The document's JSON text (static storage).
std::string_view OpenApiDocument();

}  // namespace earshot::server
