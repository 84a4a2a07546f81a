//===- Json.h - bounded JSON parsing ----------------------------*- C++ -*-===//
//
// llvm::json::parse recurses once per nesting level, so a hostile file of a
// few hundred kilobytes of '[' overflows the stack. Every JSON file falcon-mlir
// reads (config.json, safetensors headers and indexes, manifest.json) goes
// through parseJson, which rejects deep nesting first. Header-only: the
// compiler and the runtime (which links LLVM Support but not MLIR) share it.
//
//===----------------------------------------------------------------------===//
#ifndef FALCON_SUPPORT_JSON_H
#define FALCON_SUPPORT_JSON_H

#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <cstdint>
#include <optional>

namespace falcon {

/// Deepest nesting of arrays and objects parseJson accepts; real files nest
/// three or four levels.
inline constexpr unsigned kMaxJsonDepth = 256;

/// llvm::json::parse(text), or an error when arrays and objects nest deeper
/// than kMaxJsonDepth.
inline llvm::Expected<llvm::json::Value> parseJson(llvm::StringRef text) {
  unsigned depth = 0;
  bool inString = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (inString) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        inString = false;
    } else if (c == '"') {
      inString = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth)
        return llvm::createStringError(
            "arrays and objects nest deeper than " + llvm::Twine(kMaxJsonDepth) +
            " levels (at offset " + llvm::Twine(i) + ")");
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return llvm::json::parse(text);
}

/// `value` as an int64_t: json::Value::getAsInteger without its undefined
/// behaviour. getAsInteger accepts a double up to `double(INT64_MAX)`, which
/// rounds to 2^63, and converting 2^63 (`9.223372036854775807e18` in a file)
/// to int64_t overflows. Integral doubles below 2^63 (`80.0`) are accepted,
/// as getAsInteger does.
inline std::optional<int64_t> getAsInt64(const llvm::json::Value &value) {
  std::optional<double> number = value.getAsNumber();
  // Integers written as integers are exact (T_Integer/T_UINT64); only a
  // double can reach 2^63 here.
  if (number && !value.getAsUINT64() && *number >= 0x1p63)
    return std::nullopt;
  return value.getAsInteger();
}

/// `value` as a non-negative integer only when the file writes it as one:
/// `80`, not `80.0`, `8e1` or `-1`; nothing otherwise.
inline std::optional<uint64_t>
getAsNonNegativeInteger(const llvm::json::Value &value) {
  // The JSON parser keeps a literal without '.', 'e' or 'E' as an integer, and
  // getAsUINT64 never converts a double.
  return value.getAsUINT64();
}

} // namespace falcon

#endif // FALCON_SUPPORT_JSON_H
