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
  EXPECT_NE(errorOf(image).find("points past the end of the file"), std::string::npos);
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
