//===- FakeArtifact.h - artifacts around the fake host library --*- C++ -*-===//
//
// Writes an artifact directory (manifest.json, weights.bin with the right
// size and checksum, the fake host library) into a fresh temporary
// directory, and predicts what the fake computes.
//
//===----------------------------------------------------------------------===//

#ifndef FALCON_TEST_UNIT_RUNTIME_FAKEARTIFACT_H
#define FALCON_TEST_UNIT_RUNTIME_FAKEARTIFACT_H

#include "../ReferenceChecksum.h"
#include "falcon/runtime.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/JSON.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace falcon::test {

/// "xxh3-64x64m:" + 16 lower-case hex digits.
std::string checksumString(uint64_t checksum);

class FakeArtifact {
public:
  /// Creates and writes a valid artifact in a new temporary directory, which
  /// the destructor removes.
  FakeArtifact();
  ~FakeArtifact();
  FakeArtifact(const FakeArtifact &) = delete;
  FakeArtifact &operator=(const FakeArtifact &) = delete;

  const std::string &dir() const { return directory; }
  std::string path(llvm::StringRef file) const;

  llvm::json::Object &manifest() { return manifestObject; }
  std::vector<uint8_t> &weights() { return weightBytes; }

  /// Sets or removes a key given as a dotted path ("config.vocab_size").
  void setKey(llvm::StringRef dottedKey, llvm::json::Value value);
  void eraseKey(llvm::StringRef dottedKey);

  /// Writes weights.bin, records its size and checksum in the manifest and
  /// writes manifest.json and the host library.
  void write();
  /// Writes manifest.json exactly as manifest() is now.
  void writeManifest();
  /// Overwrites a file of the artifact with `contents`, manifest untouched.
  void writeFile(llvm::StringRef file, llvm::StringRef contents);

  /// The salt the fake derives from the weights.
  int64_t salt() const;

  /// Reads a counter exported by this artifact's copy of the fake library
  /// (fake_model_calls, fake_model_abi_errors, ...); -1 when the library is
  /// not loaded.
  int64_t counter(const char *name) const;

private:
  std::string directory;
  llvm::json::Object manifestObject;
  std::vector<uint8_t> weightBytes;
};

/// Reads a counter exported by the loaded copy of the fake library at
/// `libraryPath`; -1 when that library is not loaded.
int64_t readFakeCounter(const std::string &libraryPath, const char *name);

/// The next token the fake predicts after `tokens` (the row so far).
int64_t fakeNextToken(const std::vector<int64_t> &tokens, int64_t salt);
/// The fake's logits [vocab] at the last position of `tokens`.
std::vector<float> fakeLogits(const std::vector<int64_t> &tokens, int64_t salt);
/// The fake's greedy continuation of `prompt`: `count` tokens.
std::vector<int64_t> fakeGreedy(std::vector<int64_t> prompt, int64_t count,
                                int64_t salt);

/// A status turned into plain values (and freed).
struct StatusResult {
  falcon_status_code_t code;
  std::string message;
  bool ok() const { return code == FALCON_STATUS_OK; }
};
StatusResult consume(falcon_status_t status);

struct ModelDeleter {
  void operator()(falcon_model_t *model) const { falcon_model_release(model); }
};
struct SessionDeleter {
  void operator()(falcon_session_t *session) const {
    falcon_session_release(session);
  }
};
using ModelPtr = std::unique_ptr<falcon_model_t, ModelDeleter>;
using SessionPtr = std::unique_ptr<falcon_session_t, SessionDeleter>;

} // namespace falcon::test

#endif // FALCON_TEST_UNIT_RUNTIME_FAKEARTIFACT_H
