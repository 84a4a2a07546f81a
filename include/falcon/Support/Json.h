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

} // namespace falcon

#endif // FALCON_SUPPORT_JSON_H
