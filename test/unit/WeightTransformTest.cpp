//===- WeightTransformTest.cpp - checkpoint tensors to kernel bytes -------===//
//
// Every source element holds its own row-major index, so the expected result
// of each transform is written out directly from the index arithmetic.
//
//===----------------------------------------------------------------------===//

#include "falcon/Support/WeightTransform.h"

#include "gtest/gtest.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

using namespace falcon;
using Step = WeightTransformStep;

namespace {

/// A tensor of `shape` whose elements (of type T) are their linear index.
template <typename T>
std::vector<uint8_t> iotaBytes(llvm::ArrayRef<int64_t> shape) {
  int64_t count = 1;
  for (int64_t size : shape)
    count *= size;
  std::vector<uint8_t> bytes(size_t(count) * sizeof(T));
  for (int64_t index = 0; index < count; ++index) {
    T value = T(index);
    std::memcpy(&bytes[size_t(index) * sizeof(T)], &value, sizeof(T));
  }
  return bytes;
}

WeightTransform makeTransform(unsigned elementBytes,
                              llvm::ArrayRef<int64_t> shape,
                              std::vector<Step> steps) {
  WeightTransform transform;
  transform.name = "w";
  transform.elementBytes = elementBytes;
  transform.sourceShape.assign(shape.begin(), shape.end());
  transform.steps = std::move(steps);
  return transform;
}

/// Applies `transform` to an iota source of T and returns the result as
/// values.
template <typename T>
std::vector<T> applyToIota(const WeightTransform &transform) {
  std::vector<uint8_t> source = iotaBytes<T>(transform.sourceShape);
  llvm::Expected<uint64_t> bytes = getResultBytes(transform);
  EXPECT_TRUE(bool(bytes)) << llvm::toString(bytes.takeError());
  if (!bytes)
    return {};
  std::vector<uint8_t> result(*bytes, 0xee);
  llvm::Error error = applyWeightTransform(transform, source, 0, result);
  EXPECT_FALSE(bool(error)) << llvm::toString(std::move(error));
  std::vector<T> values(result.size() / sizeof(T));
  std::memcpy(values.data(), result.data(), result.size());
  return values;
}

llvm::SmallVector<int64_t, 4> shapeOf(const WeightTransform &transform) {
  llvm::Expected<llvm::SmallVector<int64_t, 4>> shape =
      getResultShape(transform);
  EXPECT_TRUE(bool(shape)) << llvm::toString(shape.takeError());
  return shape ? *shape : llvm::SmallVector<int64_t, 4>{};
}

template <typename T> std::string errorOf(llvm::Expected<T> value) {
  if (value)
    return "<no error>";
  return llvm::toString(value.takeError());
}

std::string errorOf(llvm::Error error) {
  return error ? llvm::toString(std::move(error)) : "<no error>";
}

using Shape = llvm::SmallVector<int64_t, 4>;

TEST(WeightTransform, NoStepsCopiesTheTensor) {
  WeightTransform transform = makeTransform(4, {3, 5}, {});
  EXPECT_EQ(shapeOf(transform), (Shape{3, 5}));
  EXPECT_EQ(*getSourceBytes(transform), 60u);
  EXPECT_EQ(*getResultBytes(transform), 60u);
  std::vector<uint32_t> values = applyToIota<uint32_t>(transform);
  for (uint32_t index = 0; index < 15; ++index)
    EXPECT_EQ(values[index], index);
}

TEST(WeightTransform, Transpose2DWidth4) {
  WeightTransform transform = makeTransform(4, {3, 5}, {Step::permute({1, 0})});
  EXPECT_EQ(shapeOf(transform), (Shape{5, 3}));
  std::vector<uint32_t> values = applyToIota<uint32_t>(transform);
  for (int64_t column = 0; column < 5; ++column)
    for (int64_t row = 0; row < 3; ++row)
      EXPECT_EQ(values[column * 3 + row], row * 5 + column);
}

TEST(WeightTransform, Transpose2DWidth2) {
  WeightTransform transform = makeTransform(2, {4, 7}, {Step::permute({1, 0})});
  EXPECT_EQ(*getResultBytes(transform), 56u);
  std::vector<uint16_t> values = applyToIota<uint16_t>(transform);
  for (int64_t column = 0; column < 7; ++column)
    for (int64_t row = 0; row < 4; ++row)
      EXPECT_EQ(values[column * 4 + row], row * 7 + column);
}

TEST(WeightTransform, Transpose3D) {
  // Result dims: (source 2, source 0, source 1).
  WeightTransform transform =
      makeTransform(2, {2, 3, 4}, {Step::permute({2, 0, 1})});
  EXPECT_EQ(shapeOf(transform), (Shape{4, 2, 3}));
  std::vector<uint16_t> values = applyToIota<uint16_t>(transform);
  for (int64_t a = 0; a < 4; ++a)
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t c = 0; c < 3; ++c)
        EXPECT_EQ(values[(a * 2 + b) * 3 + c], (b * 3 + c) * 4 + a);
}

TEST(WeightTransform, SliceEachDimension) {
  const Shape source = {4, 5, 6};
  for (int64_t dim = 0; dim < 3; ++dim) {
    WeightTransform transform =
        makeTransform(4, source, {Step::slice(dim, 1, 2)});
    Shape expected = source;
    expected[dim] = 2;
    EXPECT_EQ(shapeOf(transform), expected);
    std::vector<uint32_t> values = applyToIota<uint32_t>(transform);
    size_t at = 0;
    for (int64_t i = 0; i < expected[0]; ++i)
      for (int64_t j = 0; j < expected[1]; ++j)
        for (int64_t k = 0; k < expected[2]; ++k) {
          int64_t index[3] = {i, j, k};
          index[dim] += 1;
          EXPECT_EQ(values[at++], (index[0] * 5 + index[1]) * 6 + index[2])
              << "slice of dimension " << dim;
        }
  }
}

TEST(WeightTransform, EmptySliceHasNoBytes) {
  WeightTransform transform = makeTransform(4, {4, 5}, {Step::slice(1, 5, 0)});
  EXPECT_EQ(shapeOf(transform), (Shape{4, 0}));
  EXPECT_EQ(*getResultBytes(transform), 0u);
  std::vector<uint8_t> source = iotaBytes<uint32_t>({4, 5});
  EXPECT_EQ(errorOf(applyWeightTransform(transform, source, 0, {})),
            "<no error>");
}

TEST(WeightTransform, GatherUnevenShards) {
  // 7 heads of 3 rows over two ranks: 4 and 3 heads (like falcon-7b's 71
  // query heads, which no rank count but 71 divides).
  const Shape source = {7 * 3, 2};
  std::vector<int64_t> rank0, rank1;
  for (int64_t head = 0; head < 7; ++head)
    for (int64_t row = 0; row < 3; ++row)
      (head < 4 ? rank0 : rank1).push_back(head * 3 + row);
  for (const std::vector<int64_t> *indices : {&rank0, &rank1}) {
    WeightTransform transform =
        makeTransform(2, source, {Step::gather(0, *indices)});
    EXPECT_EQ(shapeOf(transform), (Shape{int64_t(indices->size()), 2}));
    std::vector<uint16_t> values = applyToIota<uint16_t>(transform);
    for (size_t row = 0; row < indices->size(); ++row)
      for (int64_t column = 0; column < 2; ++column)
        EXPECT_EQ(values[row * 2 + column], (*indices)[row] * 2 + column);
  }
}

TEST(WeightTransform, GatherColumnsInAnyOrderWithRepeats) {
  WeightTransform transform =
      makeTransform(4, {3, 5}, {Step::gather(1, {4, 0, 4, 2})});
  EXPECT_EQ(shapeOf(transform), (Shape{3, 4}));
  std::vector<uint32_t> values = applyToIota<uint32_t>(transform);
  const int64_t columns[] = {4, 0, 4, 2};
  for (int64_t row = 0; row < 3; ++row)
    for (int64_t at = 0; at < 4; ++at)
      EXPECT_EQ(values[row * 4 + at], row * 5 + columns[at]);
}

TEST(WeightTransform, SliceTransposeGather) {
  // Rows 1..4 of a [6, 4] matrix, transposed to [4 columns, 4 rows], then
  // rows 3 and 0 of that (source rows 4 and 1).
  WeightTransform transform = makeTransform(
      4, {6, 4},
      {Step::slice(0, 1, 4), Step::permute({1, 0}), Step::gather(1, {3, 0})});
  EXPECT_EQ(shapeOf(transform), (Shape{4, 2}));
  std::vector<uint32_t> values = applyToIota<uint32_t>(transform);
  const int64_t sourceRows[] = {4, 1};
  for (int64_t column = 0; column < 4; ++column)
    for (int64_t at = 0; at < 2; ++at)
      EXPECT_EQ(values[column * 2 + at], sourceRows[at] * 4 + column);
}

TEST(WeightTransform, GatherOfGatherAndSliceOfGather) {
  // Rows {5, 3, 1, 0} of [6, 2], then rows {2, 0} of that ({1, 5}), then
  // the second row only ({5}).
  WeightTransform transform =
      makeTransform(2, {6, 2},
                    {Step::gather(0, {5, 3, 1, 0}), Step::gather(0, {2, 0}),
                     Step::slice(0, 1, 1)});
  EXPECT_EQ(shapeOf(transform), (Shape{1, 2}));
  EXPECT_EQ(applyToIota<uint16_t>(transform), (std::vector<uint16_t>{10, 11}));
  // A slice, then a gather of it: indices count from the slice's start.
  WeightTransform sliced =
      makeTransform(2, {6, 2}, {Step::slice(0, 2, 3), Step::gather(0, {2, 0})});
  EXPECT_EQ(applyToIota<uint16_t>(sliced), (std::vector<uint16_t>{8, 9, 4, 5}));
}

TEST(WeightTransform, ScalarAndOddWidth) {
  WeightTransform scalar = makeTransform(4, {}, {Step::permute({})});
  EXPECT_EQ(shapeOf(scalar), Shape{});
  EXPECT_EQ(applyToIota<uint32_t>(scalar), (std::vector<uint32_t>{0}));
  // 3-byte elements take the generic copy.
  WeightTransform odd = makeTransform(3, {2, 2}, {Step::permute({1, 0})});
  std::vector<uint8_t> source = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  std::vector<uint8_t> result(12);
  EXPECT_EQ(errorOf(applyWeightTransform(odd, source, 0, result)),
            "<no error>");
  EXPECT_EQ(result,
            (std::vector<uint8_t>{1, 2, 3, 7, 8, 9, 4, 5, 6, 10, 11, 12}));
}

TEST(WeightTransform, ChunkedWritesMatchOneWrite) {
  WeightTransform transform =
      makeTransform(2, {5, 6, 7},
                    {Step::permute({2, 0, 1}), Step::gather(1, {4, 1, 3}),
                     Step::slice(2, 1, 4)});
  std::vector<uint8_t> source = iotaBytes<uint16_t>(transform.sourceShape);
  uint64_t bytes = *getResultBytes(transform);
  ASSERT_EQ(bytes, 7u * 3 * 4 * 2);
  std::vector<uint8_t> whole(bytes);
  ASSERT_EQ(errorOf(applyWeightTransform(transform, source, 0, whole)),
            "<no error>");
  // Chunks that start and end mid-row.
  for (uint64_t chunk : {2u, 6u, 10u, 22u}) {
    std::vector<uint8_t> pieces(bytes, 0xee);
    for (uint64_t at = 0; at < bytes; at += chunk) {
      uint64_t length = std::min(chunk, bytes - at);
      ASSERT_EQ(errorOf(applyWeightTransform(
                    transform, source, at,
                    llvm::MutableArrayRef<uint8_t>(&pieces[at], length))),
                "<no error>");
    }
    EXPECT_EQ(pieces, whole) << "chunks of " << chunk << " bytes";
  }
}

TEST(WeightTransform, RejectsOutOfRangeSteps) {
  EXPECT_EQ(
      errorOf(getResultShape(makeTransform(4, {4, 5}, {Step::slice(1, 3, 3)}))),
      "weight 'w': step 0 (slice): [3, +3) of dimension 1 exceeds its "
      "size 5");
  EXPECT_EQ(errorOf(getResultShape(
                makeTransform(4, {4, 5}, {Step::slice(0, -1, 2)}))),
            "weight 'w': step 0 (slice): [-1, +2) of dimension 0 exceeds its "
            "size 4");
  EXPECT_EQ(errorOf(getResultShape(makeTransform(
                4, {4, 5}, {Step::slice(0, 0, 2), Step::gather(0, {0, 2})}))),
            "weight 'w': step 1 (gather): index 2 of dimension 0 is out of "
            "range [0, 2)");
  EXPECT_EQ(errorOf(getResultShape(
                makeTransform(4, {4, 5}, {Step::gather(1, {-1})}))),
            "weight 'w': step 0 (gather): index -1 of dimension 1 is out of "
            "range [0, 5)");
  EXPECT_EQ(
      errorOf(getResultShape(makeTransform(4, {4, 5}, {Step::slice(2, 0, 1)}))),
      "weight 'w': step 0 (slice): dimension 2 is out of range for a "
      "rank-2 tensor");
}

TEST(WeightTransform, RejectsRankMismatchAndBadPermutations) {
  EXPECT_EQ(errorOf(getResultShape(
                makeTransform(4, {4, 5}, {Step::permute({2, 0, 1})}))),
            "weight 'w': step 0 (permute): permutation of 3 dimensions "
            "applied to a rank-2 tensor");
  EXPECT_EQ(errorOf(getResultShape(
                makeTransform(4, {4, 5, 6}, {Step::permute({0, 0, 1})}))),
            "weight 'w': step 0 (permute): permutation entry 0 is out of "
            "range or repeated (rank 3)");
  EXPECT_EQ(errorOf(getResultShape(
                makeTransform(4, {4, 5}, {Step::permute({0, 2})}))),
            "weight 'w': step 0 (permute): permutation entry 2 is out of "
            "range or repeated (rank 2)");
}

TEST(WeightTransform, RejectsLyingShapes) {
  const int64_t huge = int64_t(1) << 40;
  EXPECT_EQ(errorOf(getSourceBytes(makeTransform(4, {huge, huge}, {}))),
            "weight 'w': source size overflows 64 bits of bytes");
  EXPECT_EQ(errorOf(getResultShape(
                makeTransform(4, {std::numeric_limits<int64_t>::max()}, {}))),
            "weight 'w': source size overflows 64 bits of bytes");
  EXPECT_EQ(errorOf(getSourceBytes(makeTransform(4, {3, -2}, {}))),
            "weight 'w': source shape has a negative size (-2)");
  EXPECT_EQ(errorOf(getSourceBytes(makeTransform(0, {3}, {}))),
            "weight 'w': element byte width must be positive");
  // Repeated gather indices can grow a tensor past 64 bits.
  std::vector<int64_t> many(1 << 16, 0);
  EXPECT_EQ(errorOf(getResultBytes(
                makeTransform(4, {1, int64_t(1) << 31, int64_t(1) << 15, 0},
                              {Step::slice(3, 0, 0)}))),
            "<no error>");
  EXPECT_EQ(errorOf(getResultBytes(
                makeTransform(1, {1, int64_t(1) << 31, int64_t(1) << 30},
                              {Step::gather(0, many)}))),
            "weight 'w': result size overflows 64 bits of bytes");
}

TEST(WeightTransform, RejectsBadBuffers) {
  WeightTransform transform = makeTransform(4, {3, 5}, {Step::permute({1, 0})});
  std::vector<uint8_t> source = iotaBytes<uint32_t>({3, 5});
  std::vector<uint8_t> result(60);
  EXPECT_EQ(errorOf(applyWeightTransform(
                transform, llvm::ArrayRef(source).drop_back(4), 0, result)),
            "weight 'w': source holds 56 bytes, its shape needs 60");
  EXPECT_EQ(
      errorOf(applyWeightTransform(
          transform, source, 2, llvm::MutableArrayRef(result).take_front(4))),
      "weight 'w': bytes [2, +4) are not whole elements of 4 bytes "
      "within the 60-byte result");
  EXPECT_EQ(errorOf(applyWeightTransform(transform, source, 8, result)),
            "weight 'w': bytes [8, +60) are not whole elements of 4 bytes "
            "within the 60-byte result");
  EXPECT_EQ(errorOf(applyWeightTransform(transform, source, 64, {})),
            "weight 'w': bytes [64, +0) are not whole elements of 4 bytes "
            "within the 60-byte result");
}

TEST(WeightFileLayout, PlacesTensorsPerRankAligned) {
  std::vector<WeightPlacementRequest> requests = {
      {"h.{}.qkv", /*rank=*/0, /*bytes=*/100, /*copies=*/3},
      {"embed", /*rank=*/1, /*bytes=*/64, /*copies=*/1},
      {"ln_f", /*rank=*/0, /*bytes=*/1, /*copies=*/1},
      {"h.{}.dense", /*rank=*/1, /*bytes=*/65, /*copies=*/2}};
  llvm::Expected<WeightFileLayout> layout = layoutWeightFiles(requests, 3);
  ASSERT_TRUE(bool(layout)) << llvm::toString(layout.takeError());
  ASSERT_EQ(layout->placements.size(), 4u);
  const WeightPlacement &qkv = layout->placements[0];
  EXPECT_EQ(qkv.offset, 0u);
  EXPECT_EQ(qkv.stride, 128u);
  EXPECT_EQ(qkv.copyOffset(2), 256u);
  EXPECT_EQ(layout->placements[1].offset, 0u);
  EXPECT_EQ(layout->placements[1].stride, 64u);
  EXPECT_EQ(layout->placements[2].offset, 384u);
  EXPECT_EQ(layout->placements[2].stride, 64u);
  EXPECT_EQ(layout->placements[3].offset, 64u);
  EXPECT_EQ(layout->placements[3].copyOffset(1), 192u);
  EXPECT_EQ(layout->fileBytes, (std::vector<uint64_t>{448, 320, 0}));

  llvm::Expected<WeightFileLayout> pages =
      layoutWeightFiles(requests, 2, /*alignment=*/4096);
  ASSERT_TRUE(bool(pages)) << llvm::toString(pages.takeError());
  EXPECT_EQ(pages->placements[2].offset, 3u * 4096);
  EXPECT_EQ(pages->fileBytes, (std::vector<uint64_t>{4 * 4096, 3 * 4096}));
}

TEST(WeightFileLayout, RejectsBadRequests) {
  EXPECT_EQ(errorOf(layoutWeightFiles({{"a", 2, 8, 1}}, 2)),
            "weight 'a': rank 2 is out of range (2 ranks)");
  EXPECT_EQ(errorOf(layoutWeightFiles({{"a", 0, 8, 0}}, 1)),
            "weight 'a': needs at least one copy");
  EXPECT_EQ(errorOf(layoutWeightFiles({{"a", 0, 8, 1}}, 1, 48)),
            "weight file alignment 48 is not a power of two");
  EXPECT_EQ(errorOf(layoutWeightFiles({{"a", 0, 8, 1}}, 1, 0)),
            "weight file alignment 0 is not a power of two");
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  EXPECT_EQ(errorOf(layoutWeightFiles({{"a", 0, max - 10, 1}}, 1)),
            "weight 'a': 18446744073709551605 bytes overflow 64 bits when "
            "aligned");
  EXPECT_EQ(errorOf(layoutWeightFiles({{"a", 0, 64, max / 32}}, 1)),
            "weight 'a': 576460752303423487 copies of 64 bytes at offset 0 "
            "overflow 64 bits");
  EXPECT_EQ(errorOf(layoutWeightFiles(
                {{"a", 0, max / 2, 1}, {"b", 0, max / 2, 1}}, 1)),
            "weight 'b': 1 copies of 9223372036854775807 bytes at offset "
            "9223372036854775808 overflow 64 bits");
}

TEST(WeightFileLayout, WritesRankFilesWithTransforms) {
  // A [4, 6] matrix column-split over two ranks (transposed for the kernel)
  // and a per-layer [3] vector on rank 1: the bytes land at the placements'
  // offsets with zero padding in between.
  std::vector<WeightTransform> transforms = {
      makeTransform(4, {4, 6}, {Step::slice(1, 0, 3), Step::permute({1, 0})}),
      makeTransform(4, {4, 6}, {Step::slice(1, 3, 3), Step::permute({1, 0})}),
      makeTransform(2, {3}, {})};
  std::vector<WeightPlacementRequest> requests;
  const unsigned ranks[] = {0, 1, 1};
  const uint64_t copies[] = {1, 1, 2};
  for (size_t index = 0; index < transforms.size(); ++index)
    requests.push_back({"t" + std::to_string(index), ranks[index],
                        *getResultBytes(transforms[index]), copies[index]});
  llvm::Expected<WeightFileLayout> layout = layoutWeightFiles(requests, 2);
  ASSERT_TRUE(bool(layout)) << llvm::toString(layout.takeError());
  std::vector<std::vector<uint8_t>> files;
  for (uint64_t bytes : layout->fileBytes)
    files.emplace_back(bytes, 0);
  for (size_t index = 0; index < transforms.size(); ++index) {
    const WeightPlacement &placement = layout->placements[index];
    std::vector<uint8_t> source =
        transforms[index].elementBytes == 4
            ? iotaBytes<uint32_t>(transforms[index].sourceShape)
            : iotaBytes<uint16_t>(transforms[index].sourceShape);
    for (uint64_t copy = 0; copy < placement.copies; ++copy)
      ASSERT_EQ(errorOf(applyWeightTransform(
                    transforms[index], source, 0,
                    llvm::MutableArrayRef<uint8_t>(
                        &files[placement.rank][placement.copyOffset(copy)],
                        placement.bytes))),
                "<no error>");
  }
  EXPECT_EQ(layout->fileBytes, (std::vector<uint64_t>{64, 192}));
  auto word = [&](unsigned rank, uint64_t offset) {
    uint32_t value;
    std::memcpy(&value, &files[rank][offset], 4);
    return value;
  };
  // Rank r's matrix: column 3 * r + c of source row `row` at [c][row].
  for (uint32_t column = 0; column < 3; ++column)
    for (uint32_t row = 0; row < 4; ++row) {
      EXPECT_EQ(word(0, (column * 4 + row) * 4), row * 6 + column);
      EXPECT_EQ(word(1, (column * 4 + row) * 4), row * 6 + 3 + column);
    }
  EXPECT_EQ(files[0][48], 0);
  for (uint64_t layerOffset : {64u, 128u}) {
    EXPECT_EQ(files[1][layerOffset + 2], 1);
    EXPECT_EQ(files[1][layerOffset + 4], 2);
    EXPECT_EQ(files[1][layerOffset + 6], 0);
  }
}

TEST(WeightQuantizationSize, CodesScalesAndZeroPointsPerPart) {
  auto bytes = [](int64_t inputs, int64_t outputs, WeightQuantization quantization,
                  uint64_t alignment = 1) {
    llvm::Expected<uint64_t> result =
        getQuantizedWeightBytes("w", inputs, outputs, quantization, alignment);
    EXPECT_TRUE(bool(result)) << llvm::toString(result.takeError());
    return result ? *result : 0;
  };
  // int8 g128, 256 inputs, 3 outputs: 256 x 3 codes + 2 x 3 scales of 2 bytes.
  EXPECT_EQ(bytes(256, 3, {8, 128, true}), 256u * 3 + 2 * 3 * 2);
  // int4 g32: 128 x 2 bytes of codes, 8 x 2 scales.
  EXPECT_EQ(bytes(256, 2, {4, 32, true}), 128u * 2 + 8 * 2 * 2);
  // A group that does not divide the inputs is halved: falcon-7b's 4544
  // inputs are 71 groups of 64.
  EXPECT_EQ(bytes(4544, 1, {4, 128, true}), 2272u + 71 * 2);
  // Asymmetric: f16 zero points beside the scales.
  EXPECT_EQ(bytes(256, 1, {4, 128, false}), 128u + 2 * 2 + 2 * 2);
  // Each part rounded up to the file alignment.
  EXPECT_EQ(bytes(256, 1, {4, 128, false}, 64), 128u + 64 + 64);
  EXPECT_EQ(llvm::cantFail(getEffectiveGroupSize("w", 4544, 128)), 64);
  EXPECT_EQ(llvm::cantFail(getEffectiveGroupSize("w", 96, 64)), 32);
  EXPECT_EQ(llvm::cantFail(getEffectiveGroupSize("w", 256, 128)), 128);
}

TEST(WeightQuantizationSize, Int8LMHeadInTheLayersGroups) {
  // int4 g32 layers: the head int8 in groups of 32, the layers' symmetry.
  EXPECT_EQ(getInt8LMHeadBytes("lm_head.weight", 256, 3, {4, 32, true}),
            std::optional<uint64_t>(256u * 3 + 8 * 3 * 2));
  EXPECT_EQ(getInt8LMHeadBytes("lm_head.weight", 256, 3, {4, 32, false}, 64),
            std::optional<uint64_t>(768u + 64 + 64));
  // No group divides 36 inputs: the head stays as stored.
  EXPECT_EQ(getInt8LMHeadBytes("lm_head.weight", 36, 3, {4, 32, true}), std::nullopt);
}

TEST(WeightQuantizationSize, BadSchemesAndShapesNameTheWeight) {
  EXPECT_EQ(checkWeightQuantization({8, 128, true}), "");
  EXPECT_EQ(checkWeightQuantization({3, 128, true}), "quantization bits must be 8 or 4, found 3");
  EXPECT_EQ(checkWeightQuantization({4, 48, true}),
            "the quantization group size must be 32, 64 or 128, found 48");
  EXPECT_EQ(errorOf(getQuantizedWeightBytes("blk.w", 256, 2, {4, 16, true})),
            "weight 'blk.w': the quantization group size must be 32, 64 or 128, found 16");
  EXPECT_EQ(errorOf(getQuantizedWeightBytes("blk.w", 36, 2, {4, 32, true})),
            "weight 'blk.w': no quantization group of 8 to 32 inputs divides its 36 inputs");
  EXPECT_EQ(errorOf(getQuantizedWeightBytes("blk.w", 256, -1, {8, 128, true})),
            "weight 'blk.w': cannot quantize a [256, -1] weight");
  EXPECT_EQ(errorOf(getQuantizedWeightBytes("blk.w", int64_t(1) << 40, int64_t(1) << 62,
                                            {8, 128, true})),
            "weight 'blk.w': the quantized size overflows 64 bits");
  EXPECT_EQ(errorOf(getQuantizedPartShape("blk.w", 256, 2, {8, 128, true},
                                          QuantizedPart::ZeroPoints)),
            "weight 'blk.w': a symmetric quantization has no zero points");
}

TEST(WeightQuantization, HalfRoundingIsIEEE) {
  EXPECT_EQ(roundToHalf(1.0f), 0x3c00);
  EXPECT_EQ(roundToHalf(-2.0f), 0xc000);
  EXPECT_EQ(roundToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(roundToHalf(65519.0f), 0x7bff);   // below the halfway point to 65536
  EXPECT_EQ(roundToHalf(65520.0f), 0x7c00);   // the tie goes to even: infinity
  EXPECT_EQ(roundToHalf(1e10f), 0x7c00);
  EXPECT_EQ(roundToHalf(1.0f + 1.0f / 2048), 0x3c00); // tie, to even (down)
  EXPECT_EQ(roundToHalf(1.0f + 3.0f / 2048), 0x3c02); // tie, to even (up)
  EXPECT_EQ(roundToHalf(0x1p-14f), 0x0400);   // smallest normal
  EXPECT_EQ(roundToHalf(0x1p-24f), 0x0001);   // smallest subnormal
  EXPECT_EQ(roundToHalf(0x1p-25f), 0x0000);   // half of it: a tie, to even
  EXPECT_EQ(roundToHalf(0x1.8p-25f), 0x0001);
  EXPECT_EQ(roundToHalf(0x1.ffep-15f), 0x0400); // a subnormal that rounds up to normal
  EXPECT_EQ(roundToHalf(-0.0f), 0x8000);
  EXPECT_EQ(roundToHalf(1e-30f), 0x0000);
  EXPECT_EQ(roundToHalf(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(roundToHalf(std::numeric_limits<float>::quiet_NaN()) & 0x7e00, 0x7e00);
  // Every half value survives the round trip.
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    if ((bits & 0x7c00) == 0x7c00 && (bits & 0x3ff))
      continue; // NaNs
    ASSERT_EQ(roundToHalf(halfToFloat(uint16_t(bits))), bits) << bits;
  }
  EXPECT_EQ(halfToFloat(0x0001), 0x1p-24f);
  EXPECT_EQ(halfToFloat(0x3555), 0x1.554p-2f);
}

/// Quantizes and dequantizes `values` ([inputs, outputs]).
std::vector<float> roundTrip(const std::vector<float> &values, int64_t inputs, int64_t outputs,
                             WeightQuantization quantization,
                             QuantizedWeight *parts = nullptr) {
  llvm::Expected<QuantizedWeight> quantized =
      quantizeWeight("w", values, inputs, outputs, quantization);
  EXPECT_TRUE(bool(quantized)) << llvm::toString(quantized.takeError());
  if (!quantized)
    return {};
  std::vector<float> result(values.size());
  EXPECT_EQ(errorOf(dequantizeWeight("w", *quantized, inputs, outputs, quantization, result)),
            "<no error>");
  if (parts)
    *parts = *quantized;
  return result;
}

TEST(WeightQuantization, RoundTripIsWithinHalfAStep) {
  std::mt19937 random(7);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  int64_t inputs = 256, outputs = 5;
  std::vector<float> values(size_t(outputs * inputs));
  for (float &value : values)
    value = normal(random);
  values[3] = 0.9f; // an outlier widens its group
  for (WeightQuantization quantization :
       {WeightQuantization{8, 128, true}, WeightQuantization{4, 128, true},
        WeightQuantization{4, 32, true}, WeightQuantization{8, 64, false},
        WeightQuantization{4, 32, false}}) {
    SCOPED_TRACE(testing::Message() << "int" << quantization.bits << " g"
                                    << quantization.groupSize
                                    << (quantization.symmetric ? "" : " asymmetric"));
    std::vector<float> result = roundTrip(values, inputs, outputs, quantization);
    ASSERT_EQ(result.size(), values.size());
    int32_t steps = quantization.symmetric ? (1 << (quantization.bits - 1)) - 1
                                           : (1 << quantization.bits) - 1;
    double worst = 0;
    for (int64_t output = 0; output < outputs; ++output)
      for (int64_t begin = 0; begin < inputs; begin += quantization.groupSize) {
        int64_t end = begin + quantization.groupSize;
        float low = 0, high = 0;
        for (int64_t input = begin; input < end; ++input) {
          low = std::min(low, values[size_t(input * outputs + output)]);
          high = std::max(high, values[size_t(input * outputs + output)]);
        }
        float range = quantization.symmetric ? std::max(-low, high) : high - low;
        // Half a step, with slack for the f16 scale's rounding (2^-11
        // relative, times the largest code) and for the zero point's.
        double bound = range / steps * (0.5 + steps * 0x1p-11) * (quantization.symmetric ? 1 : 2);
        for (int64_t input = begin; input < end; ++input) {
          size_t index = size_t(input * outputs + output);
          double error = std::abs(double(result[index]) - values[index]);
          worst = std::max(worst, error / range);
          ASSERT_LE(error, bound) << "input " << input << " output " << output;
        }
      }
    // The error really is a fraction of a step, not zero.
    EXPECT_GT(worst, 0.0);
  }
}

TEST(WeightQuantization, CodesScalesAndZeroPointsAreWhereTheLayoutSaysTheyAre) {
  // Output 0 gets inputs 0.7, -0.3, 0.0, -0.7 ... (max |x| = 0.7: scale
  // 0.1, codes 7, -3, 0, -7); output 1 all zero. [inputs, outputs] = [8, 2],
  // one group of 8: int4 codes of inputs 2i and 2i + 1 share byte row i.
  std::vector<float> values(16, 0.0f);
  float column[8] = {0.7f, -0.3f, 0.0f, -0.7f, 0.1f, 0.2f, 0.3f, 0.4f};
  for (int input = 0; input < 8; ++input)
    values[size_t(input * 2)] = column[input];
  QuantizedWeight parts;
  std::vector<float> result = roundTrip(values, 8, 2, {4, 8, true}, &parts);
  ASSERT_EQ(parts.codes.size(), 4u * 2);
  EXPECT_EQ(parts.codes[0], 0xd7); // 7 | (-3 & 0xf) << 4
  EXPECT_EQ(parts.codes[2], 0x90); // 0 | (-7 & 0xf) << 4
  EXPECT_EQ(parts.codes[1], 0x00); // output 1
  ASSERT_EQ(parts.scales.size(), 2u);
  EXPECT_EQ(parts.scales[0], roundToHalf(0.7f / 7));
  EXPECT_EQ(parts.scales[1], 0);
  EXPECT_TRUE(parts.zeroPoints.empty());
  float step = halfToFloat(parts.scales[0]);
  EXPECT_EQ(result[0], 7 * step);
  EXPECT_EQ(result[2], -3 * step);
  EXPECT_EQ(result[6], -7 * step);
  // Asymmetric int8, all positive: the range is [0, 2.55], scale 0.01, zero
  // point 0; codes and zero point are stored minus 128.
  result = roundTrip({2.55f, 1.0f}, 2, 1, {8, 2, false}, &parts);
  ASSERT_EQ(parts.codes.size(), 2u);
  EXPECT_EQ(int8_t(parts.codes[0]), 255 - 128);
  EXPECT_EQ(int8_t(parts.codes[1]), 100 - 128);
  ASSERT_EQ(parts.zeroPoints.size(), 1u);
  EXPECT_EQ(halfToFloat(parts.zeroPoints[0]), -128.0f);
  EXPECT_NEAR(result[0], 2.55f, 0.005f);
  // All zero: scale 0, every value back to 0.
  result = roundTrip({0.0f, 0.0f, 0.0f, 0.0f}, 4, 1, {4, 4, false}, &parts);
  EXPECT_EQ(result, (std::vector<float>{0.0f, 0.0f, 0.0f, 0.0f}));
}

TEST(WeightQuantization, BadValuesAndSizesAreErrors) {
  EXPECT_EQ(errorOf(quantizeWeight("blk.w", {1.0f, NAN, 0.0f, 1.0f}, 4, 1, {4, 4, true})),
            "weight 'blk.w': the value at input 1, output 0 is not finite; it cannot be "
            "quantized");
  EXPECT_EQ(errorOf(quantizeWeight("blk.w", {1e9f, 0.0f, 0.0f, 0.0f}, 4, 1, {4, 4, true})),
            "weight 'blk.w': the values of output 0, inputs 0 to 3 span more than an f16 scale "
            "can hold");
  EXPECT_EQ(errorOf(quantizeWeight("blk.w", {1.0f, 2.0f}, 4, 1, {4, 4, true})),
            "weight 'blk.w': 2 values for an [4, 1] weight");
  EXPECT_EQ(errorOf(quantizeWeight("blk.w", {1.0f, 2.0f, 3.0f}, 3, 1, {4, 2, true})),
            "weight 'blk.w': quantization groups of 2 do not divide its 3 inputs");
  std::vector<float> values(4);
  QuantizedWeight parts;
  parts.codes.resize(1);
  EXPECT_EQ(errorOf(dequantizeWeight("blk.w", parts, 4, 1, {4, 4, true}, values)),
            "weight 'blk.w': its quantized parts do not have the sizes of an [4, 1] weight");
}

TEST(WeightQuantization, TransformQuantizesTheStepsResult) {
  // A [outputs, inputs] = [2, 8] bf16 checkpoint tensor, transposed to
  // [inputs, outputs] and quantized int8 g4: each part equals quantizeWeight
  // of the transposed values.
  std::vector<float> checkpoint(16);
  for (int i = 0; i < 16; ++i)
    checkpoint[size_t(i)] = float(i - 7) * 0.25f; // exact in bf16
  std::vector<uint8_t> source(32);
  for (int i = 0; i < 16; ++i) {
    uint32_t word;
    std::memcpy(&word, &checkpoint[size_t(i)], 4);
    uint16_t high = uint16_t(word >> 16);
    std::memcpy(&source[size_t(2 * i)], &high, 2);
  }
  std::vector<float> transposed(16);
  for (int output = 0; output < 2; ++output)
    for (int input = 0; input < 8; ++input)
      transposed[size_t(input * 2 + output)] = checkpoint[size_t(output * 8 + input)];
  WeightQuantization quantization{8, 4, false};
  QuantizedWeight expected = llvm::cantFail(quantizeWeight("w", transposed, 8, 2, quantization));
  WeightTransform transform;
  transform.name = "w";
  transform.elementBytes = 2;
  transform.sourceShape = {2, 8};
  transform.steps = {WeightTransformStep::permute({1, 0})};
  transform.quantize = WeightTransform::Quantize{quantization, QuantizedPart::Codes,
                                                 WeightTransform::Quantize::Float::BF16};
  EXPECT_EQ(llvm::cantFail(getResultShape(transform)), (llvm::SmallVector<int64_t, 4>{8, 2}));
  std::vector<uint8_t> codes(llvm::cantFail(getResultBytes(transform)));
  ASSERT_EQ(codes.size(), 16u);
  EXPECT_EQ(errorOf(applyWeightTransform(transform, source, 0, codes)), "<no error>");
  EXPECT_EQ(codes, expected.codes);
  transform.quantize->part = QuantizedPart::ZeroPoints;
  std::vector<uint8_t> zeros(llvm::cantFail(getResultBytes(transform)));
  ASSERT_EQ(zeros.size(), 2u * 2 * 2);
  EXPECT_EQ(errorOf(applyWeightTransform(transform, source, 0, zeros)), "<no error>");
  EXPECT_EQ(std::memcmp(zeros.data(), expected.zeroPoints.data(), zeros.size()), 0);
  // Widths that do not match the source's are an error.
  transform.elementBytes = 4;
  transform.quantize->sourceFloat = WeightTransform::Quantize::Float::F16;
  EXPECT_NE(errorOf(applyWeightTransform(transform, source, 0, zeros)), "<no error>");
}

TEST(WeightQuantization, ImportedElementsRegroupWithoutRequantizing) {
  // An [outputs, inputs] = [2, 8] int4 weight another tool quantized, groups
  // of 4: output o, input i has code (3 i + o) % 16, zero point 8 + g + o and
  // scale 0.5 (g 0) or 0.25 (g 1).
  auto element = [](int output, int input) {
    int group = input / 4;
    return packQuantizedElement(uint8_t((3 * input + output) % 16), uint8_t(8 + group + output),
                                roundToHalf(group == 0 ? 0.5f : 0.25f));
  };
  std::vector<uint32_t> stored(16);
  for (int output = 0; output < 2; ++output)
    for (int input = 0; input < 8; ++input)
      stored[size_t(output * 8 + input)] = element(output, input);
  std::vector<uint8_t> source(stored.size() * 4);
  std::memcpy(source.data(), stored.data(), source.size());
  // The same steps as a float weight: [in, out], then a part.
  WeightQuantization quantization{4, 4, false};
  WeightTransform transform;
  transform.name = "w";
  transform.elementBytes = 4;
  transform.sourceShape = {2, 8};
  transform.steps = {WeightTransformStep::permute({1, 0})};
  transform.quantize = WeightTransform::Quantize{quantization, QuantizedPart::Codes,
                                                 WeightTransform::Quantize::Float::Quantized};
  QuantizedWeight parts;
  for (QuantizedPart part : getQuantizedParts(quantization)) {
    transform.quantize->part = part;
    std::vector<uint8_t> bytes(llvm::cantFail(getResultBytes(transform)));
    ASSERT_EQ(errorOf(applyWeightTransform(transform, source, 0, bytes)), "<no error>");
    if (part == QuantizedPart::Codes) {
      parts.codes = bytes;
      continue;
    }
    std::vector<uint16_t> &halves = part == QuantizedPart::Scales ? parts.scales : parts.zeroPoints;
    halves.resize(bytes.size() / 2);
    std::memcpy(halves.data(), bytes.data(), bytes.size());
  }
  // Exactly the stored values: (code - zero) * scale.
  std::vector<float> values(16);
  ASSERT_EQ(errorOf(dequantizeWeight("w", parts, 8, 2, quantization, values)), "<no error>");
  for (int output = 0; output < 2; ++output)
    for (int input = 0; input < 8; ++input) {
      int group = input / 4;
      float expected = float((3 * input + output) % 16 - (8 + group + output)) *
                       (group == 0 ? 0.5f : 0.25f);
      EXPECT_EQ(values[size_t(input * 2 + output)], expected) << output << ", " << input;
    }
  // A group whose inputs do not share a scale (a shard cutting a group, or
  // act-order) and a code past the bits are errors naming the weight.
  std::vector<uint32_t> transposed(16);
  for (int output = 0; output < 2; ++output)
    for (int input = 0; input < 8; ++input)
      transposed[size_t(input * 2 + output)] = stored[size_t(output * 8 + input)];
  transposed[2 * 2 + 1] = packQuantizedElement(1, 9, roundToHalf(0.125f));
  EXPECT_EQ(errorOf(regroupQuantizedWeight("w", transposed, 8, 2, quantization)),
            "weight 'w': inputs 0 to 3 of output 1 do not share one scale and zero point "
            "(groups of 4 consecutive inputs are what the kernels read)");
  transposed[2 * 2 + 1] = packQuantizedElement(16, 9, roundToHalf(0.5f));
  EXPECT_EQ(errorOf(regroupQuantizedWeight("w", transposed, 8, 2, quantization)),
            "weight 'w': code 16 at input 2, output 1 does not fit 4 bits");
}

} // namespace
