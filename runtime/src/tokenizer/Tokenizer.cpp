//===- Tokenizer.cpp - Hugging Face tokenizer.json, byte-level BPE --------===//
//
// Loading refuses every field whose value would make Hugging Face encode
// differently from what is implemented here; encoding follows `tokenizers`
// 0.23 step for step: added tokens (leftmost-longest, non-normalized tokens
// first), the pre-tokenizer sequence with HF's split behaviours, then BPE
// with HF's merge order (lowest rank, then leftmost) and a word cache.
//
//===----------------------------------------------------------------------===//

#include "tokenizer/Tokenizer.h"

#include "core/Status.h"
#include "tokenizer/Unicode.h"

#include "falcon/Support/Json.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <algorithm>

using namespace falcon::tokenizer;
using falcon::runtime::makeStatus;
namespace json = llvm::json;

namespace {

/// The largest id a tokenizer.json may use; real vocabularies stay below
/// 2^18, and the per-id table is sized by the largest id.
constexpr int64_t kMaxTokenId = (int64_t(1) << 24) - 1;

/// Words cached before the cache is emptied (HF caches 10000).
constexpr size_t kWordCacheLimit = 1 << 18;

/// GPT-2's pre-tokenization pattern (ByteLevel's use_regex).
constexpr llvm::StringLiteral kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr llvm::StringLiteral kThreeDigitsPattern = "[0-9][0-9][0-9]";

std::array<int32_t, 0x144> makeCodePointToByte() {
  std::array<int32_t, 0x144> table;
  table.fill(-1);
  const std::array<uint32_t, 256> &forward = byteToCodePoint();
  for (int b = 0; b < 256; ++b)
    table[forward[b]] = b;
  return table;
}

/// The bytes a byte-level token stands for; false when a character of it is
/// not in GPT-2's byte map.
bool tokenToBytes(llvm::StringRef token, std::string &bytes) {
  static const std::array<int32_t, 0x144> inverse = makeCodePointToByte();
  bytes.clear();
  size_t offset = 0;
  while (offset < token.size()) {
    uint32_t cp;
    size_t length = decodeUtf8(token, offset, cp);
    if (length == 0 || cp >= inverse.size() || inverse[cp] < 0)
      return false;
    bytes.push_back(static_cast<char>(inverse[cp]));
    offset += length;
  }
  return true;
}

} // namespace

const std::array<uint32_t, 256> &falcon::tokenizer::byteToCodePoint() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) ||
                       (b >= 0xAE && b <= 0xFF);
      t[b] = printable ? b : next++;
    }
    return t;
  }();
  return table;
}

//===----------------------------------------------------------------------===//
// Loading
//===----------------------------------------------------------------------===//

namespace falcon::tokenizer {

class TokenizerLoader {
public:
  TokenizerLoader(std::string file, Tokenizer &tok)
      : file(std::move(file)), tok(tok) {}

  falcon_status_t load(const json::Value &root);

private:
  falcon_status_t unsupported(const llvm::Twine &path,
                              const llvm::Twine &message) {
    return makeStatus(FALCON_STATUS_UNIMPLEMENTED,
                      file + ": " + path + ": " + message);
  }
  falcon_status_t malformed(const llvm::Twine &path,
                            const llvm::Twine &message) {
    return makeStatus(FALCON_STATUS_FAILED_PRECONDITION,
                      file + ": " + path + ": " + message);
  }

  /// Refuses keys of `object` outside `allowed`.
  falcon_status_t checkKeys(const json::Object &object, llvm::StringRef path,
                            llvm::ArrayRef<llvm::StringRef> allowed);
  /// `object[key]` as a bool (`fallback` when absent or null).
  falcon_status_t getBool(const json::Object &object, llvm::StringRef path,
                          llvm::StringRef key, bool fallback, bool &out);
  falcon_status_t getString(const json::Object &object, llvm::StringRef path,
                            llvm::StringRef key, std::string &out);
  falcon_status_t getType(const json::Value &value, llvm::StringRef path,
                          const json::Object *&object, std::string &type);
  /// Refuses `object[key]` unless it is absent, null or `allowedValue`.
  falcon_status_t expectDefaultBool(const json::Object &object,
                                    llvm::StringRef path, llvm::StringRef key,
                                    bool allowedValue);

  falcon_status_t loadModel(const json::Value *value);
  falcon_status_t loadAddedTokens(const json::Value *value);
  falcon_status_t loadPreTokenizer(const json::Value &value,
                                   const std::string &path);
  falcon_status_t loadBehavior(const json::Object &object,
                               llvm::StringRef path, SplitBehavior &out);
  falcon_status_t loadPostProcessor(const json::Value &value,
                                    const std::string &path);
  falcon_status_t loadDecoder(const json::Value *value);
  falcon_status_t setId(int64_t id, llvm::StringRef token,
                        llvm::StringRef path);

  std::string file;
  Tokenizer &tok;
};

} // namespace falcon::tokenizer

falcon_status_t TokenizerLoader::checkKeys(
    const json::Object &object, llvm::StringRef path,
    llvm::ArrayRef<llvm::StringRef> allowed) {
  for (const auto &entry : object) {
    llvm::StringRef key = entry.first;
    if (!llvm::is_contained(allowed, key))
      return unsupported(path.empty() ? key : (path + "." + key).str(),
                         "the key is not supported (supported: " +
                             llvm::join(allowed, ", ") + ")");
  }
  return nullptr;
}

falcon_status_t TokenizerLoader::getBool(const json::Object &object,
                                         llvm::StringRef path,
                                         llvm::StringRef key, bool fallback,
                                         bool &out) {
  out = fallback;
  const json::Value *value = object.get(key);
  if (!value || value->kind() == json::Value::Null)
    return nullptr;
  std::optional<bool> flag = value->getAsBoolean();
  if (!flag)
    return malformed(path + "." + key, "expected a boolean");
  out = *flag;
  return nullptr;
}

falcon_status_t TokenizerLoader::getString(const json::Object &object,
                                           llvm::StringRef path,
                                           llvm::StringRef key,
                                           std::string &out) {
  std::optional<llvm::StringRef> text = object.getString(key);
  if (!text)
    return malformed(path + "." + key, "expected a string");
  out = text->str();
  return nullptr;
}

falcon_status_t TokenizerLoader::getType(const json::Value &value,
                                         llvm::StringRef path,
                                         const json::Object *&object,
                                         std::string &type) {
  object = value.getAsObject();
  if (!object)
    return malformed(path, "expected an object");
  return getString(*object, path, "type", type);
}

falcon_status_t TokenizerLoader::expectDefaultBool(const json::Object &object,
                                                   llvm::StringRef path,
                                                   llvm::StringRef key,
                                                   bool allowedValue) {
  bool flag;
  FALCON_RETURN_IF_ERROR(getBool(object, path, key, allowedValue, flag));
  if (flag != allowedValue)
    return unsupported(path + "." + key,
                       llvm::Twine(flag ? "true" : "false") +
                           " is not supported (supported: " +
                           (allowedValue ? "true" : "false") + ")");
  return nullptr;
}

falcon_status_t TokenizerLoader::setId(int64_t id, llvm::StringRef token,
                                       llvm::StringRef path) {
  if (id < 0 || id > kMaxTokenId)
    return malformed(path, "id " + llvm::Twine(id) + " of '" + token +
                               "' is outside [0, " + llvm::Twine(kMaxTokenId) +
                               "]");
  if (static_cast<size_t>(id) >= tok.idInfo.size())
    tok.idInfo.resize(id + 1);
  Tokenizer::IdInfo &info = tok.idInfo[id];
  info.present = true;
  // ByteLevel decoding: a token whose characters are all in the byte map
  // stands for those bytes; any other token is written as it is spelled.
  if (!tokenToBytes(token, info.bytes))
    info.bytes = token.str();
  return nullptr;
}

falcon_status_t TokenizerLoader::load(const json::Value &rootValue) {
  const json::Object *root = rootValue.getAsObject();
  if (!root)
    return malformed("(root)", "expected an object");
  FALCON_RETURN_IF_ERROR(checkKeys(
      *root, "",
      {"version", "truncation", "padding", "added_tokens", "normalizer",
       "pre_tokenizer", "post_processor", "decoder", "model"}));
  for (llvm::StringRef key : {"truncation", "padding"}) {
    const json::Value *value = root->get(key);
    if (value && value->kind() != json::Value::Null)
      return unsupported(key, key + llvm::Twine(" is not supported (supported: null)"));
  }
  if (const json::Value *normalizer = root->get("normalizer");
      normalizer && normalizer->kind() != json::Value::Null) {
    const json::Object *object;
    std::string type;
    FALCON_RETURN_IF_ERROR(getType(*normalizer, "normalizer", object, type));
    return unsupported("normalizer", "type '" + type +
                                         "' is not supported (supported: null)");
  }
  FALCON_RETURN_IF_ERROR(loadModel(root->get("model")));
  FALCON_RETURN_IF_ERROR(loadAddedTokens(root->get("added_tokens")));

  const json::Value *preTokenizer = root->get("pre_tokenizer");
  if (!preTokenizer || preTokenizer->kind() == json::Value::Null)
    return unsupported("pre_tokenizer",
                       "null is not supported (byte-level BPE needs ByteLevel)");
  FALCON_RETURN_IF_ERROR(loadPreTokenizer(*preTokenizer, "pre_tokenizer"));
  size_t byteLevelCount = llvm::count_if(tok.stages, [](const auto &stage) {
    return stage.kind == PreTokenizerStage::Kind::ByteLevel;
  });
  if (byteLevelCount != 1)
    return unsupported("pre_tokenizer",
                       llvm::Twine(byteLevelCount) +
                           " ByteLevel pre-tokenizers are not supported "
                           "(supported: exactly one)");

  if (const json::Value *post = root->get("post_processor");
      post && post->kind() != json::Value::Null)
    FALCON_RETURN_IF_ERROR(loadPostProcessor(*post, "post_processor"));
  return loadDecoder(root->get("decoder"));
}

falcon_status_t TokenizerLoader::loadModel(const json::Value *value) {
  if (!value)
    return malformed("model", "missing");
  const json::Object *model;
  std::string type;
  FALCON_RETURN_IF_ERROR(getType(*value, "model", model, type));
  if (type != "BPE")
    return unsupported("model", "type '" + type +
                                    "' is not supported (supported: BPE)");
  FALCON_RETURN_IF_ERROR(checkKeys(
      *model, "model",
      {"type", "dropout", "unk_token", "continuing_subword_prefix",
       "end_of_word_suffix", "fuse_unk", "byte_fallback", "ignore_merges",
       "vocab", "merges"}));
  if (const json::Value *dropout = model->get("dropout");
      dropout && dropout->kind() != json::Value::Null)
    return unsupported("model.dropout", "BPE dropout is not supported (supported: null)");
  for (llvm::StringRef key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const json::Value *affix = model->get(key);
    if (affix && affix->kind() != json::Value::Null &&
        affix->getAsString() != llvm::StringRef(""))
      return unsupported("model." + key.str(),
                         "a non-empty value is not supported (supported: null)");
  }
  FALCON_RETURN_IF_ERROR(expectDefaultBool(*model, "model", "byte_fallback", false));
  FALCON_RETURN_IF_ERROR(getBool(*model, "model", "fuse_unk", false, tok.fuseUnk));
  FALCON_RETURN_IF_ERROR(
      getBool(*model, "model", "ignore_merges", false, tok.ignoreMerges));

  const json::Object *vocab = model->getObject("vocab");
  if (!vocab)
    return malformed("model.vocab", "expected an object");
  std::string bytes;
  for (const auto &entry : *vocab) {
    llvm::StringRef token = entry.first;
    std::optional<int64_t> id = getAsInt64(entry.second);
    if (!id)
      return malformed("model.vocab", "the id of '" + token + "' is not an integer");
    FALCON_RETURN_IF_ERROR(setId(*id, token, "model.vocab"));
    tok.vocab[token] = static_cast<int32_t>(*id);
    if (tokenToBytes(token, bytes))
      tok.vocabBytes[bytes] = static_cast<int32_t>(*id);
  }
  for (int b = 0; b < 256; ++b) {
    bytes.assign(1, static_cast<char>(b));
    auto it = tok.vocabBytes.find(bytes);
    tok.byteIds[b] = it == tok.vocabBytes.end() ? -1 : it->second;
  }
  if (const json::Value *unk = model->get("unk_token");
      unk && unk->kind() != json::Value::Null) {
    std::optional<llvm::StringRef> name = unk->getAsString();
    auto it = name ? tok.vocab.find(*name) : tok.vocab.end();
    if (it == tok.vocab.end())
      return malformed("model.unk_token", "not a string of the vocabulary");
    tok.unkId = it->second;
  }

  const json::Array *merges = model->getArray("merges");
  if (!merges)
    return malformed("model.merges", "expected an array");
  for (size_t rank = 0; rank < merges->size(); ++rank) {
    const json::Value &merge = (*merges)[rank];
    std::string where = ("model.merges[" + llvm::Twine(rank) + "]").str();
    llvm::StringRef left, right;
    if (std::optional<llvm::StringRef> line = merge.getAsString()) {
      // HF splits on ' ' and wants exactly two parts.
      std::tie(left, right) = line->split(' ');
      if (left.size() == line->size() || right.contains(' '))
        return malformed(where, "'" + *line + "' is not two tokens separated by one space");
    } else if (const json::Array *pair = merge.getAsArray();
               pair && pair->size() == 2 && (*pair)[0].getAsString() &&
               (*pair)[1].getAsString()) {
      left = *(*pair)[0].getAsString();
      right = *(*pair)[1].getAsString();
    } else {
      return malformed(where, "expected \"a b\" or [\"a\", \"b\"]");
    }
    auto leftIt = tok.vocab.find(left), rightIt = tok.vocab.find(right);
    auto mergedIt = tok.vocab.find((left + right).str());
    if (leftIt == tok.vocab.end() || rightIt == tok.vocab.end() ||
        mergedIt == tok.vocab.end())
      return malformed(where, "'" + left + "', '" + right + "' or '" + left +
                                  right + "' is not in the vocabulary");
    uint64_t key = (uint64_t(uint32_t(leftIt->second)) << 32) |
                   uint32_t(rightIt->second);
    // A repeated pair keeps its last rank, as HF's map does.
    tok.merges[key] = {static_cast<int32_t>(rank), mergedIt->second};
  }
  return nullptr;
}

falcon_status_t TokenizerLoader::loadAddedTokens(const json::Value *value) {
  if (!value || value->kind() == json::Value::Null)
    return nullptr;
  const json::Array *tokens = value->getAsArray();
  if (!tokens)
    return malformed("added_tokens", "expected an array");
  for (size_t i = 0; i < tokens->size(); ++i) {
    std::string path = ("added_tokens[" + llvm::Twine(i) + "]").str();
    const json::Object *object = (*tokens)[i].getAsObject();
    if (!object)
      return malformed(path, "expected an object");
    FALCON_RETURN_IF_ERROR(checkKeys(*object, path,
                                     {"id", "content", "single_word", "lstrip",
                                      "rstrip", "normalized", "special"}));
    for (llvm::StringRef flag : {"single_word", "lstrip", "rstrip"})
      FALCON_RETURN_IF_ERROR(expectDefaultBool(*object, path, flag, false));
    AddedToken token;
    FALCON_RETURN_IF_ERROR(getString(*object, path, "content", token.content));
    if (token.content.empty())
      return malformed(path + ".content", "empty");
    const json::Value *idValue = object->get("id");
    std::optional<int64_t> id = idValue ? getAsInt64(*idValue) : std::nullopt;
    if (!id)
      return malformed(path + ".id", "expected an integer");
    FALCON_RETURN_IF_ERROR(getBool(*object, path, "special", false, token.special));
    // HF's default: special tokens are not normalized, others are.
    FALCON_RETURN_IF_ERROR(
        getBool(*object, path, "normalized", !token.special, token.normalized));
    FALCON_RETURN_IF_ERROR(setId(*id, token.content, path + ".id"));
    token.id = static_cast<int32_t>(*id);
    tok.idInfo[*id].special = token.special;
    tok.addedByContent[token.content] = token.id;
    tok.addedTokens.push_back(std::move(token));
  }
  for (size_t i = 0; i < tok.addedTokens.size(); ++i) {
    const AddedToken &token = tok.addedTokens[i];
    (token.normalized ? tok.normalizedAddedTokens : tok.rawAddedTokens)
        .push_back(static_cast<int32_t>(i));
    (token.normalized ? tok.normalizedFirstBytes
                      : tok.rawFirstBytes)[static_cast<unsigned char>(
        token.content[0])] = true;
  }
  auto longestFirst = [&](int32_t a, int32_t b) {
    return tok.addedTokens[a].content.size() > tok.addedTokens[b].content.size();
  };
  llvm::stable_sort(tok.rawAddedTokens, longestFirst);
  llvm::stable_sort(tok.normalizedAddedTokens, longestFirst);
  return nullptr;
}

falcon_status_t TokenizerLoader::loadBehavior(const json::Object &object,
                                              llvm::StringRef path,
                                              SplitBehavior &out) {
  std::string name;
  FALCON_RETURN_IF_ERROR(getString(object, path, "behavior", name));
  static const std::pair<llvm::StringRef, SplitBehavior> kNames[] = {
      {"Removed", SplitBehavior::Removed},
      {"Isolated", SplitBehavior::Isolated},
      {"MergedWithPrevious", SplitBehavior::MergedWithPrevious},
      {"MergedWithNext", SplitBehavior::MergedWithNext},
      {"Contiguous", SplitBehavior::Contiguous}};
  for (const auto &[known, behavior] : kNames)
    if (name == known) {
      out = behavior;
      return nullptr;
    }
  return unsupported(path + ".behavior",
                     "'" + name + "' is not a split behavior");
}

falcon_status_t TokenizerLoader::loadPreTokenizer(const json::Value &value,
                                                  const std::string &path) {
  const json::Object *object;
  std::string type;
  FALCON_RETURN_IF_ERROR(getType(value, path, object, type));
  PreTokenizerStage stage;
  if (type == "Sequence") {
    FALCON_RETURN_IF_ERROR(checkKeys(*object, path, {"type", "pretokenizers"}));
    const json::Array *items = object->getArray("pretokenizers");
    if (!items)
      return malformed(path + ".pretokenizers", "expected an array");
    for (size_t i = 0; i < items->size(); ++i)
      FALCON_RETURN_IF_ERROR(loadPreTokenizer(
          (*items)[i], (path + ".pretokenizers[" + llvm::Twine(i) + "]").str()));
    return nullptr;
  }
  if (type == "ByteLevel") {
    FALCON_RETURN_IF_ERROR(checkKeys(
        *object, path, {"type", "add_prefix_space", "trim_offsets", "use_regex"}));
    stage.kind = PreTokenizerStage::Kind::ByteLevel;
    FALCON_RETURN_IF_ERROR(getBool(*object, path, "add_prefix_space", true,
                                   stage.addPrefixSpace));
    FALCON_RETURN_IF_ERROR(
        getBool(*object, path, "use_regex", true, stage.useRegex));
  } else if (type == "Punctuation") {
    FALCON_RETURN_IF_ERROR(checkKeys(*object, path, {"type", "behavior"}));
    stage.kind = PreTokenizerStage::Kind::Punctuation;
    if (object->get("behavior"))
      FALCON_RETURN_IF_ERROR(loadBehavior(*object, path, stage.behavior));
  } else if (type == "Digits") {
    FALCON_RETURN_IF_ERROR(checkKeys(*object, path, {"type", "individual_digits"}));
    stage.kind = PreTokenizerStage::Kind::Digits;
    bool individual;
    FALCON_RETURN_IF_ERROR(
        getBool(*object, path, "individual_digits", false, individual));
    stage.behavior =
        individual ? SplitBehavior::Isolated : SplitBehavior::Contiguous;
  } else if (type == "Split") {
    FALCON_RETURN_IF_ERROR(
        checkKeys(*object, path, {"type", "pattern", "behavior", "invert"}));
    stage.kind = PreTokenizerStage::Kind::Split;
    FALCON_RETURN_IF_ERROR(loadBehavior(*object, path, stage.behavior));
    FALCON_RETURN_IF_ERROR(getBool(*object, path, "invert", false, stage.invert));
    const json::Object *pattern = object->getObject("pattern");
    std::optional<llvm::StringRef> regex =
        pattern ? pattern->getString("Regex") : std::nullopt;
    if (!pattern || pattern->size() != 1)
      return malformed(path + ".pattern", "expected {\"Regex\": ...} or {\"String\": ...}");
    if (!regex)
      return unsupported(path + ".pattern",
                         "String patterns are not supported (supported: Regex)");
    if (*regex == kThreeDigitsPattern)
      stage.pattern = PreTokenizerStage::Pattern::ThreeDigits;
    else if (*regex == kGpt2Pattern)
      stage.pattern = PreTokenizerStage::Pattern::Gpt2;
    else
      return unsupported(path + ".pattern",
                         "Split regex '" + *regex +
                             "' is not supported (supported: '" +
                             kThreeDigitsPattern + "' and GPT-2's pattern)");
  } else {
    return unsupported(path, "pre-tokenizer type '" + type +
                                 "' is not supported (supported: ByteLevel, "
                                 "Digits, Punctuation, Sequence, Split)");
  }
  tok.stages.push_back(stage);
  return nullptr;
}

falcon_status_t TokenizerLoader::loadPostProcessor(const json::Value &value,
                                                   const std::string &path) {
  const json::Object *object;
  std::string type;
  FALCON_RETURN_IF_ERROR(getType(value, path, object, type));
  if (type == "ByteLevel") // Offsets only; the ids are unchanged.
    return checkKeys(*object, path,
                     {"type", "add_prefix_space", "trim_offsets", "use_regex"});
  if (type == "Sequence") {
    FALCON_RETURN_IF_ERROR(checkKeys(*object, path, {"type", "processors"}));
    const json::Array *items = object->getArray("processors");
    if (!items)
      return malformed(path + ".processors", "expected an array");
    for (size_t i = 0; i < items->size(); ++i)
      FALCON_RETURN_IF_ERROR(loadPostProcessor(
          (*items)[i], (path + ".processors[" + llvm::Twine(i) + "]").str()));
    return nullptr;
  }
  if (type != "TemplateProcessing")
    return unsupported(path, "post-processor type '" + type +
                                 "' is not supported (supported: ByteLevel, "
                                 "Sequence, TemplateProcessing)");
  FALCON_RETURN_IF_ERROR(
      checkKeys(*object, path, {"type", "single", "pair", "special_tokens"}));
  if (!tok.prefixIds.empty() || !tok.suffixIds.empty())
    return unsupported(path, "a second TemplateProcessing is not supported");
  const json::Array *single = object->getArray("single");
  const json::Object *specials = object->getObject("special_tokens");
  if (!single || !specials)
    return malformed(path, "expected 'single' (array) and 'special_tokens' (object)");
  bool seenSequence = false;
  for (size_t i = 0; i < single->size(); ++i) {
    std::string where = (path + ".single[" + llvm::Twine(i) + "]").str();
    const json::Object *item = (*single)[i].getAsObject();
    if (!item || item->size() != 1)
      return malformed(where, "expected {\"SpecialToken\": ...} or {\"Sequence\": ...}");
    if (const json::Object *sequence = item->getObject("Sequence")) {
      if (seenSequence || sequence->getString("id") != llvm::StringRef("A"))
        return unsupported(where, "only one Sequence 'A' is supported");
      seenSequence = true;
      continue;
    }
    const json::Object *special = item->getObject("SpecialToken");
    std::optional<llvm::StringRef> name =
        special ? special->getString("id") : std::nullopt;
    const json::Object *entry = name ? specials->getObject(*name) : nullptr;
    const json::Array *ids = entry ? entry->getArray("ids") : nullptr;
    if (!ids)
      return malformed(where, "a SpecialToken missing from special_tokens");
    for (const json::Value &id : *ids) {
      std::optional<int64_t> number = getAsInt64(id);
      if (!number || *number < 0 || *number > kMaxTokenId)
        return malformed(where, "bad special token id");
      (seenSequence ? tok.suffixIds : tok.prefixIds).push_back(*number);
    }
  }
  if (!seenSequence)
    return malformed(path + ".single", "no Sequence 'A'");
  return nullptr;
}

falcon_status_t TokenizerLoader::loadDecoder(const json::Value *value) {
  if (!value || value->kind() == json::Value::Null)
    return unsupported("decoder", "null is not supported (supported: ByteLevel)");
  const json::Object *object;
  std::string type;
  FALCON_RETURN_IF_ERROR(getType(*value, "decoder", object, type));
  if (type != "ByteLevel")
    return unsupported("decoder", "type '" + type +
                                      "' is not supported (supported: ByteLevel)");
  return checkKeys(*object, "decoder",
                   {"type", "add_prefix_space", "trim_offsets", "use_regex"});
}

falcon_status_t Tokenizer::open(llvm::StringRef path,
                                std::unique_ptr<Tokenizer> &out) {
  out.reset();
  llvm::SmallString<256> file(path);
  if (llvm::sys::fs::is_directory(file))
    llvm::sys::path::append(file, "tokenizer.json");
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buffer =
      llvm::MemoryBuffer::getFile(file, /*IsText=*/true);
  if (!buffer)
    return makeStatus(buffer.getError() == std::errc::no_such_file_or_directory
                          ? FALCON_STATUS_NOT_FOUND
                          : FALCON_STATUS_FAILED_PRECONDITION,
                      "cannot read '" + file + "': " +
                          buffer.getError().message());
  llvm::Expected<json::Value> root = falcon::parseJson((*buffer)->getBuffer());
  if (!root)
    return makeStatus(FALCON_STATUS_FAILED_PRECONDITION,
                      file + ": invalid JSON: " +
                          llvm::toString(root.takeError()));
  std::unique_ptr<Tokenizer> tok(new Tokenizer());
  tok->byteIds.fill(-1);
  FALCON_RETURN_IF_ERROR(TokenizerLoader(std::string(file), *tok).load(*root));
  out = std::move(tok);
  return nullptr;
}

//===----------------------------------------------------------------------===//
// Encoding
//===----------------------------------------------------------------------===//

namespace {

struct CharInfo {
  uint32_t offset;
  uint32_t cp;
  uint8_t classes;
};

/// The characters of `piece`: UTF-8 (already validated) or, after
/// ByteLevel, one character per byte through GPT-2's byte map.
void decodePiece(llvm::StringRef piece, bool mapped,
                 llvm::SmallVectorImpl<CharInfo> &chars) {
  chars.clear();
  const std::array<uint32_t, 256> &byteMap = byteToCodePoint();
  size_t offset = 0;
  while (offset < piece.size()) {
    uint32_t cp;
    size_t length = 1;
    unsigned char byte = static_cast<unsigned char>(piece[offset]);
    if (mapped)
      cp = byteMap[byte];
    else if (byte < 0x80)
      cp = byte;
    else
      length = decodeUtf8(piece, offset, cp);
    chars.push_back({static_cast<uint32_t>(offset), cp, classify(cp)});
    offset += length;
  }
}

/// GPT-2's pattern over `chars`, as (begin, end) character index pairs
/// appended to `matches`; every character is in one match.
void matchGpt2(llvm::ArrayRef<CharInfo> chars,
               llvm::SmallVectorImpl<std::pair<size_t, size_t>> &matches) {
  size_t n = chars.size();
  auto cls = [&](size_t i) { return chars[i].classes; };
  auto isOther = [&](size_t i) {
    return !(cls(i) & (kLetter | kNumber | kWhiteSpace));
  };
  auto runOf = [&](size_t i, auto predicate) {
    while (i < n && predicate(i))
      ++i;
    return i;
  };
  auto isLetter = [&](size_t i) { return (cls(i) & kLetter) != 0; };
  auto isNumber = [&](size_t i) { return (cls(i) & kNumber) != 0; };
  auto isSpace = [&](size_t i) { return (cls(i) & kWhiteSpace) != 0; };
  size_t i = 0;
  while (i < n) {
    uint32_t cp = chars[i].cp;
    size_t end = 0;
    // 's|'t|'re|'ve|'m|'ll|'d
    if (cp == '\'' && i + 1 < n) {
      uint32_t c1 = chars[i + 1].cp;
      if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd')
        end = i + 2;
      else if (i + 2 < n) {
        uint32_t c2 = chars[i + 2].cp;
        if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') ||
            (c1 == 'l' && c2 == 'l'))
          end = i + 3;
      }
    }
    if (!end) {
      // ` ?X+` for X in \p{L}, \p{N}, [^\s\p{L}\p{N}], in that order.
      size_t start = (cp == ' ' && i + 1 < n) ? i + 1 : i;
      if (isLetter(i) || (start != i && isLetter(start)))
        end = runOf(isLetter(i) ? i : start, isLetter);
      else if (isNumber(i) || (start != i && isNumber(start)))
        end = runOf(isNumber(i) ? i : start, isNumber);
      else if (isOther(i) || (start != i && isOther(start)))
        end = runOf(isOther(i) ? i : start, isOther);
      else {
        // \s+(?!\S)|\s+
        size_t spaceEnd = runOf(i, isSpace);
        end = (spaceEnd == n || spaceEnd - i < 2) ? spaceEnd : spaceEnd - 1;
      }
    }
    matches.push_back({i, end});
    i = end;
  }
}

} // namespace

void Tokenizer::runStages(size_t stageIndex, llvm::StringRef piece, bool mapped,
                          std::vector<int64_t> &ids) {
  if (piece.empty())
    return;
  if (stageIndex == stages.size()) {
    encodeWord(piece, ids);
    return;
  }
  const PreTokenizerStage &stage = stages[stageIndex];
  llvm::SmallVector<CharInfo, 64> chars;
  llvm::SmallVector<std::pair<size_t, size_t>, 16> matches;

  if (stage.kind == PreTokenizerStage::Kind::ByteLevel) {
    std::string prefixed;
    llvm::StringRef text = piece;
    if (stage.addPrefixSpace && piece.front() != ' ') {
      prefixed.reserve(piece.size() + 1);
      prefixed.push_back(' ');
      prefixed.append(piece.data(), piece.size());
      text = prefixed;
    }
    if (!stage.useRegex) {
      runStages(stageIndex + 1, text, /*mapped=*/true, ids);
      return;
    }
    decodePiece(text, mapped, chars);
    matchGpt2(chars, matches);
    auto offsetOf = [&](size_t index) {
      return index == chars.size() ? text.size() : chars[index].offset;
    };
    for (auto [begin, end] : matches)
      runStages(stageIndex + 1,
                text.slice(offsetOf(begin), offsetOf(end)), /*mapped=*/true,
                ids);
    return;
  }

  // The pieces the pattern matches and the gaps between them, in order.
  decodePiece(piece, mapped, chars);
  auto offsetOf = [&](size_t index) -> uint32_t {
    return index == chars.size() ? piece.size() : chars[index].offset;
  };
  llvm::SmallVector<Span, 32> spans;
  auto addMatch = [&](size_t begin, size_t end) {
    uint32_t from = offsetOf(begin), to = offsetOf(end);
    uint32_t last = spans.empty() ? 0 : spans.back().end;
    if (last < from)
      spans.push_back({last, from, false});
    spans.push_back({from, to, true});
  };
  switch (stage.kind) {
  case PreTokenizerStage::Kind::Punctuation:
  case PreTokenizerStage::Kind::Digits: {
    uint8_t wanted = stage.kind == PreTokenizerStage::Kind::Punctuation
                         ? kPunctuation
                         : kNumber;
    for (size_t i = 0; i < chars.size(); ++i)
      if (chars[i].classes & wanted)
        addMatch(i, i + 1);
    break;
  }
  case PreTokenizerStage::Kind::Split:
    if (stage.pattern == PreTokenizerStage::Pattern::ThreeDigits) {
      auto isDigit = [&](size_t i) {
        return i < chars.size() && chars[i].cp >= '0' && chars[i].cp <= '9';
      };
      for (size_t i = 0; i < chars.size();) {
        if (isDigit(i) && isDigit(i + 1) && isDigit(i + 2)) {
          addMatch(i, i + 3);
          i += 3;
        } else {
          ++i;
        }
      }
    } else {
      matchGpt2(chars, matches);
      for (auto [begin, end] : matches)
        addMatch(begin, end);
    }
    break;
  case PreTokenizerStage::Kind::ByteLevel:
    break;
  }
  uint32_t last = spans.empty() ? 0 : spans.back().end;
  if (last < piece.size())
    spans.push_back({last, static_cast<uint32_t>(piece.size()), false});
  if (stage.invert)
    for (Span &span : spans)
      span.isMatch = !span.isMatch;

  // HF's SplitDelimiterBehavior, fold for fold.
  llvm::SmallVector<Span, 32> pieces;
  bool previousMatch = false;
  switch (stage.behavior) {
  case SplitBehavior::Removed:
    for (const Span &span : spans)
      if (!span.isMatch)
        pieces.push_back(span);
    break;
  case SplitBehavior::Isolated:
    pieces = spans;
    break;
  case SplitBehavior::Contiguous:
    for (const Span &span : spans) {
      if (span.isMatch == previousMatch && !pieces.empty())
        pieces.back().end = span.end;
      else
        pieces.push_back(span);
      previousMatch = span.isMatch;
    }
    break;
  case SplitBehavior::MergedWithPrevious:
    for (const Span &span : spans) {
      if (span.isMatch && !previousMatch && !pieces.empty())
        pieces.back().end = span.end;
      else
        pieces.push_back(span);
      previousMatch = span.isMatch;
    }
    break;
  case SplitBehavior::MergedWithNext:
    for (const Span &span : llvm::reverse(spans)) {
      if (span.isMatch && !previousMatch && !pieces.empty())
        pieces.back().begin = span.begin;
      else
        pieces.push_back(span);
      previousMatch = span.isMatch;
    }
    std::reverse(pieces.begin(), pieces.end());
    break;
  }
  for (const Span &span : pieces)
    runStages(stageIndex + 1, piece.slice(span.begin, span.end), mapped, ids);
}

void Tokenizer::mergeWord(llvm::StringRef bytes,
                          llvm::SmallVectorImpl<int32_t> &out) {
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool removed;
  };
  llvm::SmallVector<Symbol, 32> symbols;
  bool previousUnk = false;
  for (char c : bytes) {
    int32_t id = byteIds[static_cast<unsigned char>(c)];
    if (id < 0) {
      // HF drops a character without a token when there is no unk token.
      if (unkId < 0)
        continue;
      if (fuseUnk && previousUnk)
        continue;
      id = unkId;
      previousUnk = true;
    } else {
      previousUnk = false;
    }
    int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, -1, false});
    if (index > 0)
      symbols[index - 1].next = index;
  }

  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t id;
  };
  // Lowest rank first, then leftmost (HF's BinaryHeap<Merge> order).
  auto later = [](const Candidate &a, const Candidate &b) {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  };
  llvm::SmallVector<Candidate, 32> queue;
  auto pairKey = [&](int32_t left, int32_t right) {
    return (uint64_t(uint32_t(symbols[left].id)) << 32) |
           uint32_t(symbols[right].id);
  };
  auto push = [&](int32_t left) {
    int32_t right = symbols[left].next;
    if (right < 0)
      return;
    auto it = merges.find(pairKey(left, right));
    if (it == merges.end())
      return;
    queue.push_back({it->second.rank, left, it->second.id});
    std::push_heap(queue.begin(), queue.end(), later);
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i)
    push(i);
  while (!queue.empty()) {
    std::pop_heap(queue.begin(), queue.end(), later);
    Candidate top = queue.pop_back_val();
    Symbol &left = symbols[top.pos];
    if (left.removed || left.next < 0)
      continue;
    auto it = merges.find(pairKey(top.pos, left.next));
    if (it == merges.end() || it->second.id != top.id)
      continue; // Stale: the pair changed since it was queued.
    int32_t right = left.next;
    left.id = top.id;
    left.next = symbols[right].next;
    symbols[right].removed = true;
    if (left.next >= 0)
      symbols[left.next].prev = top.pos;
    if (left.prev >= 0)
      push(left.prev);
    push(top.pos);
  }
  for (int32_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next)
    out.push_back(symbols[i].id);
}

void Tokenizer::encodeWord(llvm::StringRef bytes, std::vector<int64_t> &ids) {
  auto cached = wordCache.find(bytes);
  if (cached != wordCache.end()) {
    ids.insert(ids.end(), cached->second.begin(), cached->second.end());
    return;
  }
  llvm::SmallVector<int32_t, 4> word;
  auto whole = ignoreMerges ? vocabBytes.find(bytes) : vocabBytes.end();
  if (whole != vocabBytes.end())
    word.push_back(whole->second);
  else
    mergeWord(bytes, word);
  ids.insert(ids.end(), word.begin(), word.end());
  if (wordCache.size() >= kWordCacheLimit)
    wordCache.clear();
  wordCache.try_emplace(bytes, std::move(word));
}

void Tokenizer::splitOnTokens(llvm::StringRef text,
                              const std::vector<int32_t> &tokens,
                              const std::array<bool, 256> &firstBytes,
                              uint32_t begin, uint32_t end,
                              llvm::SmallVectorImpl<Segment> &segments) const {
  uint32_t textStart = begin;
  uint32_t i = begin;
  while (i < end) {
    if (!firstBytes[static_cast<unsigned char>(text[i])]) {
      ++i;
      continue;
    }
    // Leftmost-longest: the tokens are sorted longest first.
    const AddedToken *found = nullptr;
    for (int32_t index : tokens) {
      const AddedToken &token = addedTokens[index];
      if (token.content.size() <= end - i &&
          text.substr(i, token.content.size()) == token.content) {
        found = &token;
        break;
      }
    }
    if (!found) {
      ++i;
      continue;
    }
    if (textStart < i)
      segments.push_back({-1, textStart, i});
    segments.push_back({found->id, i, i + uint32_t(found->content.size())});
    i += found->content.size();
    textStart = i;
  }
  if (textStart < end)
    segments.push_back({-1, textStart, end});
}

void Tokenizer::splitOnAddedTokens(
    llvm::StringRef text, llvm::SmallVectorImpl<Segment> &segments) const {
  llvm::SmallVector<Segment, 8> first;
  splitOnTokens(text, rawAddedTokens, rawFirstBytes, 0, text.size(), first);
  if (normalizedAddedTokens.empty()) {
    segments.append(first.begin(), first.end());
    return;
  }
  for (const Segment &segment : first) {
    if (segment.tokenId >= 0)
      segments.push_back(segment);
    else
      splitOnTokens(text, normalizedAddedTokens, normalizedFirstBytes,
                    segment.begin, segment.end, segments);
  }
}

falcon_status_t Tokenizer::encode(llvm::StringRef text, bool addSpecialTokens,
                                  std::vector<int64_t> &ids) {
  ids.clear();
  if (text.size() >= UINT32_MAX)
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      "text of " + llvm::Twine(text.size()) +
                          " bytes is too long (limit 4 GiB)");
  size_t invalid = findInvalidUtf8(text);
  if (invalid != llvm::StringRef::npos)
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      "invalid UTF-8 at byte offset " + llvm::Twine(invalid));
  if (addSpecialTokens)
    ids.insert(ids.end(), prefixIds.begin(), prefixIds.end());
  llvm::SmallVector<Segment, 8> segments;
  splitOnAddedTokens(text, segments);
  std::lock_guard<std::mutex> lock(cacheMutex);
  for (const Segment &segment : segments) {
    if (segment.tokenId >= 0)
      ids.push_back(segment.tokenId);
    else
      runStages(0, text.slice(segment.begin, segment.end), /*mapped=*/false,
                ids);
  }
  if (addSpecialTokens)
    ids.insert(ids.end(), suffixIds.begin(), suffixIds.end());
  return nullptr;
}

//===----------------------------------------------------------------------===//
// Decoding and lookups
//===----------------------------------------------------------------------===//

falcon_status_t Tokenizer::decode(llvm::ArrayRef<int64_t> ids,
                                  bool skipSpecialTokens,
                                  std::string &text) const {
  text.clear();
  std::string bytes;
  for (size_t i = 0; i < ids.size(); ++i) {
    int64_t id = ids[i];
    if (id < 0 || id >= vocabSize() || !idInfo[id].present)
      return makeStatus(FALCON_STATUS_OUT_OF_RANGE,
                        "token id " + llvm::Twine(id) + " (at index " +
                            llvm::Twine(i) + ") is not in the vocabulary (" +
                            llvm::Twine(vocabSize()) + " ids)");
    if (skipSpecialTokens && idInfo[id].special)
      continue;
    bytes += idInfo[id].bytes;
  }
  appendUtf8Lossy(bytes, text);
  return nullptr;
}

int64_t Tokenizer::tokenToId(llvm::StringRef token) const {
  auto added = addedByContent.find(token);
  if (added != addedByContent.end())
    return added->second;
  auto it = vocab.find(token);
  return it == vocab.end() ? -1 : it->second;
}
