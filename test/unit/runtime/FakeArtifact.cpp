//===- FakeArtifact.cpp - artifacts around the fake host library ----------===//

#include "FakeArtifact.h"

#include "FakeModel.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"
#include "gtest/gtest.h"

#include <dlfcn.h>

using namespace falcon::test;
namespace json = llvm::json;

#ifndef FALCON_FAKE_MODEL_LIBRARY
#error "FALCON_FAKE_MODEL_LIBRARY must name the fake host library"
#endif

std::string falcon::test::checksumString(uint64_t checksum) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << "xxh3-64x64m:" << llvm::format_hex_no_prefix(checksum, 16);
  return text;
}

FakeArtifact::FakeArtifact() {
  llvm::SmallString<128> created;
  std::error_code error =
      llvm::sys::fs::createUniqueDirectory("falcon-runtime-test", created);
  EXPECT_FALSE(error) << error.message();
  directory = std::string(created);

  // 1000 bytes (not a multiple of 64 or of 4): nothing may assume more.
  weightBytes.resize(1000);
  for (size_t index = 0; index < weightBytes.size(); ++index)
    weightBytes[index] = uint8_t((index * 37 + 11) & 0xff);

  manifestObject = json::Object{
      {"format_version", 6},
      {"model", "fake-tiny"},
      // This machine, needing no ISA feature: the fake is plain C.
      {"target", json::Object{{"kind", "cpu"},
                              {"triple", llvm::sys::getProcessTriple()},
                              {"cpu", "generic"},
                              {"required_features", json::Array{}},
                              {"vector_bits", 128}}},
      {"activation_dtype", "f32"},
      {"plan", json::Object{{"tp", 1},
                            {"pp", 1},
                            {"threads", 1},
                            {"ranks",
                             json::Array{json::Object{
                                 {"rank", 0},
                                 {"stage", 0},
                                 {"slot", 0},
                                 {"first_layer", 0},
                                 {"num_layers", FAKE_LAYERS},
                                 {"host_library", "libfalcon_model.so"},
                                 {"entry_point", "_mlir_ciface_forward"},
                                 {"weights", json::Object{{"file", "weights.bin"},
                                                          {"size", 0},
                                                          {"checksum", checksumString(0)},
                                                          {"alignment", 64},
                                                          {"tensors", json::Array{json::Object{
                                                              {"name", "fake.salt"},
                                                              {"dtype", "f32"},
                                                              {"shape", json::Array{250}},
                                                              {"offset", 0},
                                                              {"bytes", 1000}}}}}}}}}}},
      {"config", json::Object{{"vocab_size", FAKE_VOCAB_SIZE},
                              {"hidden_size", 16},
                              {"num_hidden_layers", FAKE_LAYERS},
                              {"num_attention_heads", 4},
                              {"num_kv_heads", FAKE_KV_HEADS},
                              {"head_dim", FAKE_HEAD_DIM},
                              {"max_position_embeddings", FAKE_MAX_POSITIONS},
                              {"alibi", false}}},
      {"kv_cache", json::Object{{"layers", FAKE_LAYERS},
                                {"kv_heads", FAKE_KV_HEADS},
                                {"head_dim", FAKE_HEAD_DIM},
                                {"dtype", "f32"}}}};
  write();
}

FakeArtifact::~FakeArtifact() {
  if (!directory.empty())
    llvm::sys::fs::remove_directories(directory);
}

std::string FakeArtifact::path(llvm::StringRef file) const {
  llvm::SmallString<128> result(directory);
  llvm::sys::path::append(result, file);
  return std::string(result);
}

namespace {
/// The object holding the last component of `dottedKey`, created on the way;
/// a component `name[i]` steps into element i of array `name`, which must
/// exist ("plan.ranks[0].weights.size").
json::Object *parentOf(json::Object &root, llvm::StringRef dottedKey,
                       llvm::StringRef &lastKey) {
  json::Object *object = &root;
  llvm::StringRef rest = dottedKey;
  while (true) {
    auto [head, tail] = rest.split('.');
    if (tail.empty()) {
      lastKey = head;
      return object;
    }
    auto [name, index] = head.split('[');
    json::Value *child = object->get(name);
    if (!index.empty()) {
      unsigned element = 0;
      EXPECT_FALSE(index.drop_back().getAsInteger(10, element)) << dottedKey.str();
      child = &(*child->getAsArray())[element];
    } else if (!child || !child->getAsObject()) {
      (*object)[name] = json::Object{};
      child = object->get(name);
    }
    object = child->getAsObject();
    rest = tail;
  }
}
} // namespace

void FakeArtifact::setKey(llvm::StringRef dottedKey, json::Value value) {
  llvm::StringRef last;
  (*parentOf(manifestObject, dottedKey, last))[last] = std::move(value);
}

void FakeArtifact::eraseKey(llvm::StringRef dottedKey) {
  llvm::StringRef last;
  parentOf(manifestObject, dottedKey, last)->erase(last);
}

void FakeArtifact::writeFile(llvm::StringRef file, llvm::StringRef contents) {
  std::error_code error;
  llvm::raw_fd_ostream os(path(file), error);
  ASSERT_FALSE(error) << error.message();
  os << contents;
}

void FakeArtifact::writeManifest() {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::formatv("{0:2}", json::Value(json::Object(manifestObject)));
  writeFile("manifest.json", text);
}

void FakeArtifact::write() {
  writeFile("weights.bin",
            llvm::StringRef(reinterpret_cast<const char *>(weightBytes.data()),
                            weightBytes.size()));
  setKey("plan.ranks[0].weights.size", int64_t(weightBytes.size()));
  setKey("plan.ranks[0].weights.checksum", checksumString(referenceChecksum(weightBytes)));
  writeManifest();
  std::string library = path("libfalcon_model.so");
  llvm::sys::fs::remove(library);
  std::error_code error =
      llvm::sys::fs::copy_file(FALCON_FAKE_MODEL_LIBRARY, library);
  EXPECT_FALSE(error) << FALCON_FAKE_MODEL_LIBRARY << ": " << error.message();
}

int64_t FakeArtifact::salt() const {
  return int64_t(weightBytes.front()) + int64_t(weightBytes.back());
}

int64_t falcon::test::readFakeCounter(const std::string &libraryPath,
                                      const char *name) {
  void *handle = dlopen(libraryPath.c_str(), RTLD_NOW | RTLD_NOLOAD);
  if (!handle)
    return -1;
  auto function = reinterpret_cast<int64_t (*)()>(dlsym(handle, name));
  int64_t value = function ? function() : -1;
  dlclose(handle);
  return value;
}

int64_t FakeArtifact::counter(const char *name) const {
  return readFakeCounter(path("libfalcon_model.so"), name);
}

int64_t falcon::test::fakeNextToken(const std::vector<int64_t> &tokens,
                                    int64_t salt) {
  int64_t sum = 0;
  for (int64_t id : tokens)
    sum += id;
  return fakeTarget(sum, int64_t(tokens.size()) - 1, salt);
}

std::vector<float> falcon::test::fakeLogits(const std::vector<int64_t> &tokens,
                                            int64_t salt) {
  int64_t target = fakeNextToken(tokens, salt);
  std::vector<float> logits(FAKE_VOCAB_SIZE);
  for (int64_t id = 0; id < FAKE_VOCAB_SIZE; ++id)
    logits[id] = fakeLogit(id, target);
  return logits;
}

std::vector<int64_t> falcon::test::fakeGreedy(std::vector<int64_t> prompt,
                                              int64_t count, int64_t salt) {
  std::vector<int64_t> generated;
  for (int64_t step = 0; step < count; ++step) {
    generated.push_back(fakeNextToken(prompt, salt));
    prompt.push_back(generated.back());
  }
  return generated;
}

StatusResult falcon::test::consume(falcon_status_t status) {
  StatusResult result{falcon_status_code(status),
                      falcon_status_message(status)};
  falcon_status_free(status);
  return result;
}
