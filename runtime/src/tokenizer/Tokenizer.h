//===- Tokenizer.h - Hugging Face tokenizer.json, byte-level BPE -*- C++ -*-===//
//
// A reimplementation of the parts of Hugging Face `tokenizers` that Falcon
// and GPT-2 style tokenizers use: added tokens, the ByteLevel / Punctuation /
// Digits / Split pre-tokenizers, the byte-level BPE model, the ByteLevel
// decoder and a template post-processor. Anything else in a tokenizer.json is
// refused at load time, so that an accepted file encodes exactly as Hugging
// Face does (docs/tokenizer.md).
//
//===----------------------------------------------------------------------===//

#ifndef FALCON_RUNTIME_TOKENIZER_TOKENIZER_H
#define FALCON_RUNTIME_TOKENIZER_TOKENIZER_H

#include "falcon/runtime.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringRef.h"

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace falcon::tokenizer {

/// How a pre-tokenizer treats the pieces its pattern matches (HF's
/// SplitDelimiterBehavior).
enum class SplitBehavior {
  Removed,
  Isolated,
  MergedWithPrevious,
  MergedWithNext,
  Contiguous,
};

/// One pre-tokenizer of the (flattened) sequence.
struct PreTokenizerStage {
  enum class Kind { ByteLevel, Punctuation, Digits, Split };
  /// What a Split stage matches.
  enum class Pattern { Gpt2, ThreeDigits };
  Kind kind;
  SplitBehavior behavior = SplitBehavior::Isolated;
  bool invert = false;
  bool addPrefixSpace = false; // ByteLevel
  bool useRegex = true;        // ByteLevel
  Pattern pattern = Pattern::Gpt2;
};

struct AddedToken {
  std::string content;
  int32_t id;
  bool special;
  bool normalized;
};

class Tokenizer {
public:
  /// Loads `path` (a tokenizer.json or a directory holding one). On failure
  /// returns the error status and leaves `out` empty.
  static falcon_status_t open(llvm::StringRef path,
                              std::unique_ptr<Tokenizer> &out);

  /// Encodes `text` (validated as UTF-8 here) into `ids` (cleared first).
  falcon_status_t encode(llvm::StringRef text, bool addSpecialTokens,
                         std::vector<int64_t> &ids);

  /// Decodes `ids` into `text` (cleared first).
  falcon_status_t decode(llvm::ArrayRef<int64_t> ids, bool skipSpecialTokens,
                         std::string &text) const;

  /// The id of `token`, or -1.
  int64_t tokenToId(llvm::StringRef token) const;

  int64_t vocabSize() const { return static_cast<int64_t>(idInfo.size()); }

private:
  friend class TokenizerLoader;
  Tokenizer() = default;

  /// A stretch of the piece being split, in bytes.
  struct Span {
    uint32_t begin;
    uint32_t end;
    bool isMatch;
  };

  void encodeSegment(llvm::StringRef text, std::vector<int64_t> &ids);
  void runStages(size_t stage, llvm::StringRef piece, bool mapped,
                 std::vector<int64_t> &ids);
  void encodeWord(llvm::StringRef bytes, std::vector<int64_t> &ids);
  void mergeWord(llvm::StringRef bytes, llvm::SmallVectorImpl<int32_t> &out);
  /// Splits `text` on added tokens: (id, -1) for a token, (-1, -1) never;
  /// text runs as (begin, end) with id -1.
  struct Segment {
    int32_t tokenId; // -1: text
    uint32_t begin;
    uint32_t end;
  };
  void splitOnAddedTokens(llvm::StringRef text,
                          llvm::SmallVectorImpl<Segment> &segments) const;
  void splitOnTokens(llvm::StringRef text, const std::vector<int32_t> &tokens,
                     const std::array<bool, 256> &firstBytes, uint32_t begin,
                     uint32_t end,
                     llvm::SmallVectorImpl<Segment> &segments) const;

  // Model.
  struct MergeResult {
    int32_t rank;
    int32_t id;
  };
  llvm::StringMap<int32_t> vocab;       // token as written -> id
  llvm::StringMap<int32_t> vocabBytes;  // token as raw bytes -> id
  llvm::DenseMap<uint64_t, MergeResult> merges; // (left << 32 | right)
  std::array<int32_t, 256> byteIds;     // -1: the byte has no token
  int32_t unkId = -1;
  bool fuseUnk = false;
  bool ignoreMerges = false;

  // Added tokens; those with normalized=false are matched first, over the
  // whole text, the others in what is left (HF's order).
  std::vector<AddedToken> addedTokens;
  llvm::StringMap<int32_t> addedByContent;
  std::vector<int32_t> rawAddedTokens;        // indices, longest first
  std::vector<int32_t> normalizedAddedTokens; // indices, longest first
  std::array<bool, 256> rawFirstBytes{};
  std::array<bool, 256> normalizedFirstBytes{};

  std::vector<PreTokenizerStage> stages;

  // Post-processor template for add_special_tokens.
  std::vector<int64_t> prefixIds;
  std::vector<int64_t> suffixIds;

  // Per id: decoded bytes; present; special.
  struct IdInfo {
    std::string bytes;
    bool present = false;
    bool special = false;
  };
  std::vector<IdInfo> idInfo;

  // Cache of encoded words (pre-token bytes -> ids), guarded by cacheMutex,
  // which encode holds for the whole call.
  std::mutex cacheMutex;
  llvm::StringMap<llvm::SmallVector<int32_t, 4>> wordCache;
};

/// GPT-2's byte -> code point map (printable Latin-1 bytes map to themselves,
/// the others to U+0100 upwards).
const std::array<uint32_t, 256> &byteToCodePoint();

} // namespace falcon::tokenizer

#endif // FALCON_RUNTIME_TOKENIZER_TOKENIZER_H
