//===- SafetensorsTest.cpp - safetensors header validation ----------------===//

#include "falcon/Import/Safetensors.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"
#include "gtest/gtest.h"

using namespace mlir::falcon;

namespace {

/// A safetensors image: 8-byte little-endian length, header, `dataSize` bytes.
std::string makeImage(const std::string &header, size_t dataSize) {
  std::string image(8, '\0');
  uint64_t length = header.size();
  for (int i = 0; i < 8; ++i)
    image[i] = char((length >> (8 * i)) & 0xff);
  return image + header + std::string(dataSize, '\x01');
}

llvm::Expected<SafetensorsFile> parse(const std::string &image) {
  return parseSafetensorsHeader(image, image.size(), "w.safetensors");
}

std::string errorOf(const std::string &image) {
  llvm::Expected<SafetensorsFile> file = parse(image);
  if (file)
    return "<no error>";
  return llvm::toString(file.takeError());
}

TEST(Safetensors, ParsesTensorsAndMetadata) {
  std::string image = makeImage(
      R"({"__metadata__": {"format": "pt"},
          "b": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [16, 28]},
          "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})",
      28);
  llvm::Expected<SafetensorsFile> file = parse(image);
  ASSERT_TRUE(bool(file)) << llvm::toString(file.takeError());
  ASSERT_EQ(file->tensors.size(), 2u);
  // Sorted by offset.
  EXPECT_EQ(file->tensors[0].name, "a");
  EXPECT_EQ(file->tensors[0].dtype, SafetensorsDType::F32);
  EXPECT_EQ(file->tensors[1].name, "b");
  EXPECT_EQ(file->tensors[1].shape[1], 3);
  EXPECT_EQ(file->tensors[1].begin, file->dataOffset + 16);
  EXPECT_EQ(file->tensors[1].end, file->dataOffset + 28);
  EXPECT_EQ(file->tensors[1].numElements(), 6);
}

TEST(Safetensors, ScalarAndEmptyTensors) {
  std::string image = makeImage(
      R"({"s": {"dtype": "I64", "shape": [], "data_offsets": [0, 8]},
          "e": {"dtype": "F16", "shape": [0, 5], "data_offsets": [8, 8]}})",
      8);
  llvm::Expected<SafetensorsFile> file = parse(image);
  ASSERT_TRUE(bool(file)) << llvm::toString(file.takeError());
  EXPECT_EQ(file->tensors.size(), 2u);
}

TEST(Safetensors, RejectsShortFile) {
  EXPECT_NE(errorOf("abc").find("file is truncated: 3 bytes"), std::string::npos);
}

TEST(Safetensors, RejectsHeaderLengthPastEnd) {
  std::string image = makeImage(R"({})", 0);
  image[0] = char(200); // claims a 200-byte header in a 10-byte file
  EXPECT_NE(errorOf(image).find("header length 200 points past the end of the file (10 bytes)"),
            std::string::npos)
      << errorOf(image);
}

TEST(Safetensors, RejectsHugeHeaderLength) {
  std::string image = makeImage(R"({})", 0);
  for (int i = 0; i < 8; ++i)
    image[i] = char(0xff);
  EXPECT_NE(errorOf(image).find("header length 18446744073709551615 exceeds the limit of "
                                "100000000 bytes"),
            std::string::npos)
      << errorOf(image);
}

TEST(Safetensors, RejectsOffsetsPastEnd) {
  std::string image = makeImage(
      R"({"w": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}})", 16);
  EXPECT_NE(errorOf(image).find("tensor 'w': data offsets [0, 32) point past the end "
                                "of the data section (16 bytes)"),
            std::string::npos)
      << errorOf(image);
}

TEST(Safetensors, RejectsOverlap) {
  std::string image = makeImage(
      R"({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
          "y": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}})",
      24);
  EXPECT_NE(errorOf(image).find("data of tensors 'x' and 'y' overlap"), std::string::npos)
      << errorOf(image);
}

TEST(Safetensors, RejectsUnknownDType) {
  std::string image = makeImage(
      R"({"w": {"dtype": "F12", "shape": [1], "data_offsets": [0, 2]}})", 2);
  EXPECT_NE(errorOf(image).find("tensor 'w': unknown dtype 'F12'"), std::string::npos);
}

TEST(Safetensors, RejectsSizeMismatch) {
  std::string image = makeImage(
      R"({"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 8]}})", 8);
  EXPECT_NE(errorOf(image).find("span 8 bytes, but BF16 x 3 needs 6"), std::string::npos)
      << errorOf(image);
}

TEST(Safetensors, RejectsBadJsonAndEntries) {
  EXPECT_NE(errorOf(makeImage("{not json", 0)).find("invalid JSON header"),
            std::string::npos);
  EXPECT_NE(errorOf(makeImage("[]", 0)).find("header is not a JSON object"),
            std::string::npos);
  EXPECT_NE(errorOf(makeImage(R"({"w": {"dtype": "F32", "shape": [-1],
                                        "data_offsets": [0, 0]}})", 0))
                .find("non-negative integers"),
            std::string::npos);
  EXPECT_NE(errorOf(makeImage(R"({"w": {"dtype": "F32", "shape": [1],
                                        "data_offsets": [4, 0]}})", 4))
                .find("begin <= end"),
            std::string::npos);
}

// The rules and caps of the reference `safetensors` library.

TEST(Safetensors, RejectsHeaderOverTheCap) {
  // 100'000'001 bytes claimed in a file large enough to hold them: the cap
  // (the reference's MAX_HEADER_SIZE), not the file size, refuses it.
  std::string image = makeImage(R"({})", 0);
  uint64_t length = 100'000'001;
  for (int i = 0; i < 8; ++i)
    image[i] = char((length >> (8 * i)) & 0xff);
  llvm::Expected<SafetensorsFile> file =
      parseSafetensorsHeader(image, uint64_t(1) << 40, "w.safetensors");
  ASSERT_FALSE(bool(file));
  EXPECT_EQ(llvm::toString(file.takeError()),
            "w.safetensors: header length 100000001 exceeds the limit of "
            "100000000 bytes");
}

TEST(Safetensors, RejectsDuplicateNames) {
  // llvm::json keeps the last of two equal keys; the first would go unseen.
  std::string image = makeImage(
      R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
          "w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
      8);
  EXPECT_EQ(errorOf(image),
            "w.safetensors: tensor name 'w' appears more than once in the header");
  // Equal after JSON unescaping.
  image = makeImage(
      R"({"ab": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
          "ab": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
      8);
  EXPECT_NE(errorOf(image).find("tensor name 'ab' appears more than once"),
            std::string::npos)
      << errorOf(image);
  // A nested key of the same name is no duplicate.
  image = makeImage(
      R"({"__metadata__": {"w": "x"},
          "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})",
      4);
  EXPECT_EQ(errorOf(image), "<no error>");
}

TEST(Safetensors, RejectsGapBetweenTensors) {
  std::string image = makeImage(
      R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
          "y": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}})",
      12);
  EXPECT_EQ(errorOf(image), "w.safetensors: bytes [4, 8) of the data section belong "
                            "to no tensor (a gap after tensor 'x')");
}

TEST(Safetensors, RejectsGapBeforeTheFirstTensor) {
  std::string image = makeImage(
      R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", 8);
  EXPECT_EQ(errorOf(image), "w.safetensors: bytes [0, 4) of the data section belong "
                            "to no tensor (a gap before tensor 'x')");
}

TEST(Safetensors, RejectsBytesAfterTheLastTensor) {
  // The reference: the data section's length must equal the end of the last
  // tensor.
  std::string image = makeImage(
      R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", 6);
  EXPECT_EQ(errorOf(image), "w.safetensors: bytes [4, 6) of the data section belong "
                            "to no tensor (after the last tensor's data)");
  EXPECT_NE(errorOf(makeImage(R"({})", 3)).find("bytes [0, 3) of the data section"),
            std::string::npos);
  EXPECT_EQ(errorOf(makeImage(R"({})", 0)), "<no error>");
}

TEST(Safetensors, RejectsFloatDimensionsAndOffsets) {
  for (const char *shape : {"[80.0]", "[8e1]", "[1.5]", "[9.223372036854775807e18]"}) {
    std::string image = makeImage(std::string(R"({"w": {"dtype": "U8", "shape": )") +
                                      shape + R"(, "data_offsets": [0, 80]}})",
                                  80);
    EXPECT_EQ(errorOf(image), "w.safetensors: tensor 'w': shape entries must be "
                              "non-negative integers (not floats)")
        << shape;
  }
  for (const char *offsets : {"[0.0, 4]", "[0, 4.0]", "[0, 4e0]"}) {
    std::string image = makeImage(
        std::string(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": )") + offsets +
            "}}",
        4);
    EXPECT_NE(errorOf(image).find("tensor 'w': 'data_offsets' must be two non-negative "
                                  "integers (not floats)"),
              std::string::npos)
        << offsets << ": " << errorOf(image);
  }
}

TEST(Safetensors, RejectsIntegersPastInt64) {
  // 2^63 as an integer literal: no int64_t holds it.
  std::string image = makeImage(
      R"({"w": {"dtype": "U8", "shape": [9223372036854775808, 0], "data_offsets": [0, 0]}})",
      0);
  EXPECT_EQ(errorOf(image), "w.safetensors: tensor 'w': shape is too large");
  image = makeImage(
      R"({"w": {"dtype": "U8", "shape": [0], "data_offsets": [0, 18446744073709551615]}})", 0);
  EXPECT_NE(errorOf(image).find("point past the end of the data section"), std::string::npos)
      << errorOf(image);
}

TEST(Safetensors, RejectsMetadataThatIsNotStrings) {
  EXPECT_EQ(errorOf(makeImage(R"({"__metadata__": {"format": 1}})", 0)),
            "w.safetensors: '__metadata__' must be an object of strings");
  EXPECT_EQ(errorOf(makeImage(R"({"__metadata__": "pt"})", 0)),
            "w.safetensors: '__metadata__' must be an object of strings");
}

TEST(Safetensors, RejectsTooManyTensorsBeforeParsing) {
  // 200,000 zero-size tensors: the count is capped before llvm::json builds a
  // tree (1.2 M of them in 100 MB took 31 s and 5.9 GiB).
  std::string header = "{";
  for (int i = 0; i < 200'000; ++i)
    header += (i ? ",\"t" : "\"t") + std::to_string(i) +
              R"(":{"dtype":"F32","shape":[0],"data_offsets":[0,0]})";
  header += "}";
  EXPECT_EQ(errorOf(makeImage(header, 0)),
            "w.safetensors: header holds more than 100000 tensors; refusing it");
  // At the cap it parses.
  header = "{";
  for (int i = 0; i < 100'000; ++i)
    header += (i ? ",\"t" : "\"t") + std::to_string(i) +
              R"(":{"dtype":"F32","shape":[0],"data_offsets":[0,0]})";
  header += R"(,"__metadata__":{}})";
  llvm::Expected<SafetensorsFile> file = parse(makeImage(header, 0));
  ASSERT_TRUE(bool(file)) << llvm::toString(file.takeError());
  EXPECT_EQ(file->tensors.size(), 100'000u);
}

TEST(SafetensorsIndex, ParsesTheWeightMap) {
  llvm::Expected<ShardIndex> index = parseShardIndex(
      R"({"metadata": {}, "weight_map": {"y": "b.safetensors", "x": "a.safetensors",
                                         "z": "b.safetensors"}})",
      "i.json");
  ASSERT_TRUE(bool(index)) << llvm::toString(index.takeError());
  EXPECT_EQ(index->weightMap.size(), 3u);
  EXPECT_EQ(index->shards, (std::vector<std::string>{"a.safetensors", "b.safetensors"}));
}

TEST(SafetensorsIndex, ShardsArePlainFileNames) {
  for (const char *name : {"..", ".", "", "d/a.safetensors", "..\\\\a"}) {
    std::string text = std::string(R"({"weight_map": {"x": ")") + name + "\"}}";
    llvm::Expected<ShardIndex> index = parseShardIndex(text, "i.json");
    ASSERT_FALSE(bool(index)) << name;
    EXPECT_NE(llvm::toString(index.takeError()).find("must be a plain file name"),
              std::string::npos)
        << name;
  }
}

class SafetensorsFiles : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("falcon-st", directory));
  }
  void TearDown() override { llvm::sys::fs::remove_directories(directory); }
  std::string write(llvm::StringRef name, const std::string &bytes) {
    llvm::SmallString<128> path(directory);
    llvm::sys::path::append(path, name);
    std::error_code ec;
    llvm::raw_fd_ostream os(path, ec);
    EXPECT_FALSE(ec);
    os << bytes;
    return path.str().str();
  }
  llvm::SmallString<128> directory;
};

TEST_F(SafetensorsFiles, TruncatedFileOnDisk) {
  std::string image = makeImage(
      R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", 16);
  std::string path = write("t.safetensors", image.substr(0, image.size() - 5));
  llvm::Expected<SafetensorsFile> file = readSafetensorsHeader(path);
  ASSERT_FALSE(bool(file));
  std::string error = llvm::toString(file.takeError());
  EXPECT_NE(error.find(path + ": tensor 'w': data offsets [0, 16) point past"),
            std::string::npos)
      << error;
}

TEST_F(SafetensorsFiles, MappedBytesAndAFileThatChanged) {
  std::string image = makeImage(
      R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", 16);
  std::string path = write("m.safetensors", image);
  llvm::Expected<SafetensorsFile> file = readSafetensorsHeader(path);
  ASSERT_TRUE(bool(file)) << llvm::toString(file.takeError());
  ASSERT_EQ(file->tensors.size(), 1u);
  const SafetensorsTensor &tensor = file->tensors[0];
  MappedTensorFiles files;
  llvm::Expected<llvm::ArrayRef<uint8_t>> bytes = files.bytes(tensor);
  ASSERT_TRUE(bool(bytes)) << llvm::toString(bytes.takeError());
  EXPECT_EQ(bytes->size(), 16u);
  EXPECT_EQ((*bytes)[0], 1);
  // Shortened after its header was read: a fresh mapping sees it.
  write("m.safetensors", image.substr(0, image.size() - 4));
  MappedTensorFiles again;
  llvm::Expected<llvm::ArrayRef<uint8_t>> cut = again.bytes(tensor);
  ASSERT_FALSE(bool(cut));
  EXPECT_EQ(llvm::toString(cut.takeError()),
            path + ": changed while compiling (now " + std::to_string(image.size() - 4) +
                " bytes; tensor 'w' ends at byte " + std::to_string(tensor.end) + ")");
  llvm::sys::fs::remove(path);
  MappedTensorFiles gone;
  llvm::Expected<llvm::ArrayRef<uint8_t>> missing = gone.bytes(tensor);
  ASSERT_FALSE(bool(missing));
  EXPECT_EQ(llvm::toString(missing.takeError()),
            path + ": cannot read: No such file or directory");
}

TEST_F(SafetensorsFiles, ShardedIndex) {
  write("a.safetensors",
        makeImage(R"({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 8));
  write("b.safetensors",
        makeImage(R"({"y": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}})", 4));
  std::string index = write("model.safetensors.index.json",
                            R"({"metadata": {}, "weight_map": {"x": "a.safetensors",
                                "y": "b.safetensors"}})");
  llvm::Expected<TensorIndex> tensors = readShardedCheckpoint(index);
  ASSERT_TRUE(bool(tensors)) << llvm::toString(tensors.takeError());
  EXPECT_EQ(tensors->files.size(), 2u);
  EXPECT_EQ(tensors->tensors.lookup("y").dtype, SafetensorsDType::F16);
}

TEST_F(SafetensorsFiles, ShardedIndexLies) {
  write("a.safetensors",
        makeImage(R"({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 8));
  std::string index = write("model.safetensors.index.json",
                            R"({"weight_map": {"x": "a.safetensors", "z": "a.safetensors"}})");
  llvm::Expected<TensorIndex> tensors = readShardedCheckpoint(index);
  ASSERT_FALSE(bool(tensors));
  EXPECT_NE(llvm::toString(tensors.takeError())
                .find("weight_map places 'z' in a.safetensors, which does not hold it"),
            std::string::npos);
}

TEST_F(SafetensorsFiles, MissingShard) {
  std::string index = write("model.safetensors.index.json",
                            R"({"weight_map": {"x": "gone.safetensors"}})");
  llvm::Expected<TensorIndex> tensors = readShardedCheckpoint(index);
  ASSERT_FALSE(bool(tensors));
  EXPECT_NE(llvm::toString(tensors.takeError()).find("gone.safetensors: cannot read"),
            std::string::npos);
}

} // namespace
