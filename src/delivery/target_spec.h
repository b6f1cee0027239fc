// Delivery targets are configured by a one-line spec: KIND[:KEY=VALUE,...]
//   s3:endpoint=http://127.0.0.1:4569,bucket=results,prefix=prod,region=us-east-1,
//      access_key_env=AWS_ACCESS_KEY_ID,secret_key_env=AWS_SECRET_ACCESS_KEY
//   webhook:url=http://127.0.0.1:8080/hook,secret_env=EARSHOT_WEBHOOK_SECRET
//   email:url=smtp://127.0.0.1:2525,from=earshot@example.com,to=ops@example.com;legal@example.com
// Values cannot contain ','; lists inside a value use ';'. Secrets are never
// written in a spec: a key ending in "_env" names the environment variable
// that holds the secret (so it stays out of `ps`, shell history and logs).
//
// Pure functions (no I/O except SecretOption, which reads the environment).
#pragma once

#include <initializer_list>
#include <map>
#include <string>
#include <string_view>

#include "common/error.h"

namespace earshot::delivery {

struct TargetSpec {
  std::string kind;                            // "s3", "webhook", "email"
  std::map<std::string, std::string> options;  // KEY -> VALUE, keys unique
};

// Errors (kInvalidArgument): empty kind, an item without '=', an empty key,
// a key given twice.
Result<TargetSpec> ParseTargetSpec(std::string_view text);

// kInvalidArgument naming the unknown key and listing the known ones.
Status CheckKnownOptions(const TargetSpec& spec, std::initializer_list<std::string_view> known);

// The value of a required key, or kInvalidArgument ("webhook: missing url=...").
Result<std::string> RequiredOption(const TargetSpec& spec, const std::string& key);

// The value of a key, or `fallback` when absent.
std::string OptionOr(const TargetSpec& spec, const std::string& key, std::string fallback);

// An integer option in [min, max], or `fallback` when absent. kInvalidArgument
// naming the key, the value and the range otherwise ("s3: timeout_ms='abc'
// is not a whole number in 1..600000").
Result<int> IntOption(const TargetSpec& spec, const std::string& key, int fallback, int min,
                      int max);

// The secret named by KEY_env: reads the environment variable it names
// (default `default_env` when KEY_env is absent). kInvalidArgument when the
// variable is unset or empty; the message names the variable, never a value.
Result<std::string> SecretOption(const TargetSpec& spec, const std::string& key,
                                 const std::string& default_env);

}  // namespace earshot::delivery
