//===- WeightTransform.cpp - checkpoint tensors to kernel bytes -----------===//

#include "falcon/Support/WeightTransform.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/CheckedArithmetic.h"
#include "llvm/Support/MathExtras.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>

using namespace falcon;

WeightTransformStep
WeightTransformStep::permute(llvm::ArrayRef<int64_t> permutation) {
  WeightTransformStep step{Kind::Permute};
  step.permutation.assign(permutation.begin(), permutation.end());
  return step;
}

WeightTransformStep WeightTransformStep::slice(int64_t dim, int64_t begin,
                                               int64_t size) {
  WeightTransformStep step{Kind::Slice};
  step.dim = dim;
  step.begin = begin;
  step.size = size;
  return step;
}

WeightTransformStep
WeightTransformStep::gather(int64_t dim, llvm::ArrayRef<int64_t> indices) {
  WeightTransformStep step{Kind::Gather};
  step.dim = dim;
  step.indices.assign(indices.begin(), indices.end());
  return step;
}

namespace {
/// One dimension of the result, as a function of one source dimension: the
/// steps compose into this, so the copy needs no intermediate tensors.
struct ResultDim {
  int64_t size = 0;
  unsigned sourceDim = 0;
  /// Source index of result index i: `table[i]` when gathered, else
  /// `offset + i`.
  bool gathered = false;
  int64_t offset = 0;
  std::vector<int64_t> table;

  int64_t sourceIndex(int64_t index) const {
    return gathered ? table[size_t(index)] : offset + index;
  }
};

llvm::StringRef stepKindName(WeightTransformStep::Kind kind) {
  switch (kind) {
  case WeightTransformStep::Kind::Permute:
    return "permute";
  case WeightTransformStep::Kind::Slice:
    return "slice";
  case WeightTransformStep::Kind::Gather:
    return "gather";
  }
  llvm_unreachable("unknown weight transform step");
}

llvm::Error transformError(const WeightTransform &transform,
                           const llvm::Twine &message) {
  return llvm::createStringError("weight '" + transform.name + "': " + message);
}

llvm::Error stepError(const WeightTransform &transform, size_t stepIndex,
                      const llvm::Twine &message) {
  return transformError(transform,
                        "step " + llvm::Twine(stepIndex) + " (" +
                            stepKindName(transform.steps[stepIndex].kind) +
                            "): " + message);
}

/// The product of `sizes` times `elementBytes`, or an error if a size is
/// negative or the product does not fit in 64 bits.
llvm::Expected<uint64_t> checkedBytes(const WeightTransform &transform,
                                      llvm::ArrayRef<int64_t> sizes,
                                      llvm::StringRef what) {
  if (transform.elementBytes == 0)
    return transformError(transform, "element byte width must be positive");
  uint64_t bytes = transform.elementBytes;
  for (int64_t size : sizes) {
    if (size < 0)
      return transformError(transform, what + " shape has a negative size (" +
                                           llvm::Twine(size) + ")");
    std::optional<uint64_t> product =
        llvm::checkedMulUnsigned<uint64_t>(bytes, uint64_t(size));
    if (!product)
      return transformError(transform,
                            what + " size overflows 64 bits of bytes");
    bytes = *product;
  }
  return bytes;
}

/// Composes the steps into one ResultDim per result dimension, checking each
/// step against the shape before it.
llvm::Expected<std::vector<ResultDim>>
composeSteps(const WeightTransform &transform) {
  if (llvm::Expected<uint64_t> bytes =
          checkedBytes(transform, transform.sourceShape, "source");
      !bytes)
    return bytes.takeError();
  std::vector<ResultDim> dims(transform.sourceShape.size());
  for (size_t index = 0; index < dims.size(); ++index) {
    dims[index].size = transform.sourceShape[index];
    dims[index].sourceDim = unsigned(index);
  }
  for (size_t stepIndex = 0; stepIndex < transform.steps.size(); ++stepIndex) {
    const WeightTransformStep &step = transform.steps[stepIndex];
    int64_t rank = int64_t(dims.size());
    if (step.kind == WeightTransformStep::Kind::Permute) {
      if (int64_t(step.permutation.size()) != rank)
        return stepError(transform, stepIndex,
                         "permutation of " +
                             llvm::Twine(step.permutation.size()) +
                             " dimensions applied to a rank-" +
                             llvm::Twine(rank) + " tensor");
      std::vector<bool> seen(dims.size(), false);
      std::vector<ResultDim> permuted;
      permuted.reserve(dims.size());
      for (int64_t from : step.permutation) {
        if (from < 0 || from >= rank || seen[size_t(from)])
          return stepError(transform, stepIndex,
                           "permutation entry " + llvm::Twine(from) +
                               " is out of range or repeated (rank " +
                               llvm::Twine(rank) + ")");
        seen[size_t(from)] = true;
        permuted.push_back(std::move(dims[size_t(from)]));
      }
      dims = std::move(permuted);
      continue;
    }
    if (step.dim < 0 || step.dim >= rank)
      return stepError(transform, stepIndex,
                       "dimension " + llvm::Twine(step.dim) +
                           " is out of range for a rank-" + llvm::Twine(rank) +
                           " tensor");
    ResultDim &dim = dims[size_t(step.dim)];
    if (step.kind == WeightTransformStep::Kind::Slice) {
      if (step.begin < 0 || step.size < 0 || step.begin > dim.size ||
          step.size > dim.size - step.begin)
        return stepError(transform, stepIndex,
                         "[" + llvm::Twine(step.begin) + ", +" +
                             llvm::Twine(step.size) + ") of dimension " +
                             llvm::Twine(step.dim) + " exceeds its size " +
                             llvm::Twine(dim.size));
      if (dim.gathered)
        dim.table =
            std::vector<int64_t>(dim.table.begin() + step.begin,
                                 dim.table.begin() + step.begin + step.size);
      else
        dim.offset += step.begin;
      dim.size = step.size;
      continue;
    }
    std::vector<int64_t> table;
    table.reserve(step.indices.size());
    for (int64_t index : step.indices) {
      if (index < 0 || index >= dim.size)
        return stepError(transform, stepIndex,
                         "index " + llvm::Twine(index) + " of dimension " +
                             llvm::Twine(step.dim) + " is out of range [0, " +
                             llvm::Twine(dim.size) + ")");
      table.push_back(dim.sourceIndex(index));
    }
    dim.size = int64_t(table.size());
    dim.table = std::move(table);
    dim.gathered = true;
  }
  llvm::SmallVector<int64_t, 4> shape;
  for (const ResultDim &dim : dims)
    shape.push_back(dim.size);
  if (llvm::Expected<uint64_t> bytes = checkedBytes(transform, shape, "result");
      !bytes)
    return bytes.takeError();
  return dims;
}

/// Copies one element of `width` bytes; the common widths as fixed-size
/// copies, which compile to a single load and store.
inline void copyElement(uint8_t *to, const uint8_t *from, unsigned width) {
  switch (width) {
  case 1:
    *to = *from;
    return;
  case 2:
    std::memcpy(to, from, 2);
    return;
  case 4:
    std::memcpy(to, from, 4);
    return;
  case 8:
    std::memcpy(to, from, 8);
    return;
  default:
    std::memcpy(to, from, width);
  }
}
} // namespace

llvm::Expected<uint64_t>
falcon::getSourceBytes(const WeightTransform &transform) {
  return checkedBytes(transform, transform.sourceShape, "source");
}

llvm::Expected<llvm::SmallVector<int64_t, 4>>
falcon::getResultShape(const WeightTransform &transform) {
  llvm::Expected<std::vector<ResultDim>> dims = composeSteps(transform);
  if (!dims)
    return dims.takeError();
  llvm::SmallVector<int64_t, 4> shape;
  for (const ResultDim &dim : *dims)
    shape.push_back(dim.size);
  return shape;
}

llvm::Expected<uint64_t>
falcon::getResultBytes(const WeightTransform &transform) {
  llvm::Expected<llvm::SmallVector<int64_t, 4>> shape =
      getResultShape(transform);
  if (!shape)
    return shape.takeError();
  return checkedBytes(transform, *shape, "result");
}

llvm::Error falcon::applyWeightTransform(
    const WeightTransform &transform, llvm::ArrayRef<uint8_t> source,
    uint64_t resultOffset, llvm::MutableArrayRef<uint8_t> destination) {
  llvm::Expected<std::vector<ResultDim>> composed = composeSteps(transform);
  if (!composed)
    return composed.takeError();
  std::vector<ResultDim> dims = std::move(*composed);
  uint64_t sourceBytes = *getSourceBytes(transform);
  if (source.size() != sourceBytes)
    return transformError(
        transform, "source holds " + llvm::Twine(source.size()) +
                       " bytes, its shape needs " + llvm::Twine(sourceBytes));
  llvm::SmallVector<int64_t, 4> shape;
  for (const ResultDim &dim : dims)
    shape.push_back(dim.size);
  uint64_t resultBytes = *checkedBytes(transform, shape, "result");
  const unsigned width = transform.elementBytes;
  if (resultOffset % width != 0 || destination.size() % width != 0 ||
      resultOffset > resultBytes ||
      destination.size() > resultBytes - resultOffset)
    return transformError(transform,
                          "bytes [" + llvm::Twine(resultOffset) + ", +" +
                              llvm::Twine(destination.size()) +
                              ") are not whole elements of " +
                              llvm::Twine(width) + " bytes within the " +
                              llvm::Twine(resultBytes) + "-byte result");
  uint64_t remaining = destination.size() / width;
  if (remaining == 0)
    return llvm::Error::success();

  // Source strides in elements (row-major); the source size was checked, so
  // they fit.
  llvm::SmallVector<int64_t, 4> sourceStrides(transform.sourceShape.size(), 1);
  for (size_t dim = sourceStrides.size(); dim > 1; --dim)
    sourceStrides[dim - 2] =
        sourceStrides[dim - 1] * transform.sourceShape[dim - 1];
  llvm::SmallVector<int64_t, 4> strides;
  for (const ResultDim &dim : dims)
    strides.push_back(sourceStrides[dim.sourceDim]);
  // A scalar copies like a vector of one element.
  if (dims.empty()) {
    dims.emplace_back();
    dims.back().size = 1;
    strides.push_back(0);
  }

  // The result multi-index of the first element to write.
  size_t rank = dims.size();
  llvm::SmallVector<int64_t, 4> position(rank, 0);
  uint64_t linear = resultOffset / width;
  for (size_t dim = rank; dim-- > 0;) {
    position[dim] = int64_t(linear % uint64_t(dims[dim].size));
    linear /= uint64_t(dims[dim].size);
  }

  const ResultDim &inner = dims.back();
  const int64_t innerStride = strides.back();
  const bool innerContiguous = !inner.gathered && innerStride == 1;
  uint8_t *out = destination.data();
  while (remaining > 0) {
    int64_t base = 0;
    for (size_t dim = 0; dim + 1 < rank; ++dim)
      base += strides[dim] * dims[dim].sourceIndex(position[dim]);
    int64_t run =
        std::min<int64_t>(inner.size - position.back(),
                          int64_t(std::min<uint64_t>(remaining, INT64_MAX)));
    if (innerContiguous) {
      size_t bytes = size_t(run) * width;
      std::memcpy(out,
                  source.data() +
                      size_t(base + inner.offset + position.back()) * width,
                  bytes);
      out += bytes;
    } else {
      for (int64_t index = position.back(); index < position.back() + run;
           ++index, out += width)
        copyElement(out,
                    source.data() +
                        size_t(base + innerStride * inner.sourceIndex(index)) *
                            width,
                    width);
    }
    remaining -= uint64_t(run);
    // Next row: the odometer carries from the innermost dimension out.
    position.back() += run;
    for (size_t dim = rank; dim-- > 1 && position[dim] == dims[dim].size;) {
      position[dim] = 0;
      ++position[dim - 1];
    }
  }
  return llvm::Error::success();
}

llvm::Expected<WeightFileLayout>
falcon::layoutWeightFiles(llvm::ArrayRef<WeightPlacementRequest> requests,
                          unsigned numRanks, uint64_t alignment) {
  if (!llvm::isPowerOf2_64(alignment))
    return llvm::createStringError("weight file alignment " +
                                   llvm::Twine(alignment) +
                                   " is not a power of two");
  WeightFileLayout layout;
  layout.fileBytes.assign(numRanks, 0);
  for (const WeightPlacementRequest &request : requests) {
    auto fail = [&](const llvm::Twine &message) {
      return llvm::createStringError("weight '" + request.name +
                                     "': " + message);
    };
    if (request.rank >= numRanks)
      return fail("rank " + llvm::Twine(request.rank) + " is out of range (" +
                  llvm::Twine(numRanks) + " ranks)");
    if (request.copies == 0)
      return fail("needs at least one copy");
    std::optional<uint64_t> padded =
        llvm::checkedAddUnsigned<uint64_t>(request.bytes, alignment - 1);
    if (!padded)
      return fail(llvm::Twine(request.bytes) +
                  " bytes overflow 64 bits when aligned");
    WeightPlacement placement;
    placement.rank = request.rank;
    placement.bytes = request.bytes;
    placement.copies = request.copies;
    placement.stride = *padded & ~(alignment - 1);
    uint64_t &cursor = layout.fileBytes[request.rank];
    placement.offset = cursor;
    std::optional<uint64_t> span =
        llvm::checkedMulUnsigned<uint64_t>(placement.stride, request.copies);
    std::optional<uint64_t> end =
        span ? llvm::checkedAddUnsigned<uint64_t>(cursor, *span) : std::nullopt;
    if (!end)
      return fail(llvm::Twine(request.copies) + " copies of " +
                  llvm::Twine(request.bytes) + " bytes at offset " +
                  llvm::Twine(cursor) + " overflow 64 bits");
    cursor = *end;
    layout.placements.push_back(placement);
  }
  return layout;
}

std::string falcon::checkWeightQuantization(const WeightQuantization &quantization) {
  if (quantization.bits != 8 && quantization.bits != 4)
    return "quantization bits must be 8 or 4, found " + std::to_string(quantization.bits);
  if (quantization.groupSize != 32 && quantization.groupSize != 64 &&
      quantization.groupSize != 128)
    return "the quantization group size must be 32, 64 or 128, found " +
           std::to_string(quantization.groupSize);
  return "";
}

namespace {
/// Where a row's codes, scales and zero points lie in a quantized weight:
/// per row the codes packed 8 / bits to a byte, the f16 scales, the zero
/// points packed like the codes (asymmetric only).
struct QuantizedRowLayout {
  uint64_t perByte, groups, valueBytes, rowBytes;

  QuantizedRowLayout(int64_t inputs, const falcon::WeightQuantization &quantization)
      : perByte(8 / quantization.bits),
        groups(llvm::divideCeil(uint64_t(inputs), uint64_t(quantization.groupSize))),
        valueBytes(llvm::divideCeil(uint64_t(inputs), perByte)),
        rowBytes(valueBytes + 2 * groups +
                 (quantization.symmetric ? 0 : llvm::divideCeil(groups, perByte))) {}
};
} // namespace

llvm::Expected<uint64_t>
falcon::getQuantizedWeightBytes(llvm::StringRef name, int64_t outputs, int64_t inputs,
                                const WeightQuantization &quantization) {
  auto fail = [&](const llvm::Twine &what) {
    return llvm::createStringError("weight '" + name + "': " + what);
  };
  if (std::string problem = checkWeightQuantization(quantization); !problem.empty())
    return fail(problem);
  if (outputs < 0 || inputs < 0)
    return fail("negative shape [" + llvm::Twine(outputs) + ", " + llvm::Twine(inputs) + "]");
  std::optional<uint64_t> bytes = llvm::checkedMulUnsigned<uint64_t>(
      QuantizedRowLayout(inputs, quantization).rowBytes, uint64_t(outputs));
  if (!bytes)
    return fail("the quantized size overflows 64 bits");
  return *bytes;
}

uint16_t falcon::roundToHalf(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  uint16_t sign = uint16_t((bits >> 16) & 0x8000);
  uint32_t exponent = (bits >> 23) & 0xff;
  uint32_t mantissa = bits & 0x7fffff;
  if (exponent == 0xff) // infinity, NaN (quiet)
    return uint16_t(sign | 0x7c00 | (mantissa ? 0x200 : 0));
  // Rounds `magnitude` (an integer count of 2^-shift half units) right by
  // `shift` bits, ties to even.
  auto roundShift = [](uint32_t magnitude, unsigned shift) {
    uint32_t kept = magnitude >> shift;
    uint32_t rest = magnitude & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rest > half || (rest == half && (kept & 1)))
      ++kept;
    return kept;
  };
  int unbiased = int(exponent) - 127;
  if (unbiased >= 16) // beyond the largest finite half
    return uint16_t(sign | 0x7c00);
  if (unbiased >= -14) {
    // Normal: 10 of the 23 mantissa bits; a carry may reach the exponent
    // (and infinity), which the bit layout handles.
    uint32_t half = (uint32_t(unbiased + 15) << 10) + roundShift(mantissa, 13);
    return uint16_t(sign | std::min<uint32_t>(half, 0x7c00));
  }
  if (unbiased < -25) // below half the smallest subnormal
    return sign;
  // Subnormal: the full significand, in units of 2^-24.
  uint32_t significand = mantissa | 0x800000;
  return uint16_t(sign | roundShift(significand, unsigned(-unbiased - 1)));
}

float falcon::halfToFloat(uint16_t bits) {
  uint32_t sign = uint32_t(bits & 0x8000) << 16;
  uint32_t exponent = (bits >> 10) & 0x1f;
  uint32_t mantissa = bits & 0x3ff;
  float value;
  if (exponent == 0x1f) {
    uint32_t word = sign | 0x7f800000 | (mantissa << 13);
    std::memcpy(&value, &word, 4);
    return value;
  }
  if (exponent == 0)
    value = std::ldexp(float(mantissa), -24);
  else
    value = std::ldexp(float(mantissa | 0x400), int(exponent) - 25);
  return sign ? -value : value;
}

namespace {
/// Checks the sizes of the two sides of a (de)quantization: `valueCount`
/// floats and `byteCount` bytes for an [outputs, inputs] weight.
llvm::Error checkQuantizedBuffers(llvm::StringRef name, int64_t outputs, int64_t inputs,
                                  const falcon::WeightQuantization &quantization,
                                  size_t valueCount, size_t byteCount, bool quantizing) {
  llvm::Expected<uint64_t> bytes =
      falcon::getQuantizedWeightBytes(name, outputs, inputs, quantization);
  if (!bytes)
    return bytes.takeError();
  if (valueCount == uint64_t(outputs) * uint64_t(inputs) && byteCount == *bytes)
    return llvm::Error::success();
  std::string values = std::to_string(valueCount) + " values",
              packed = std::to_string(byteCount) + " bytes";
  std::string needValues = std::to_string(outputs * inputs) + " values",
              needBytes = std::to_string(*bytes) + " bytes";
  return llvm::createStringError(
      "weight '" + name + "': " +
      (quantizing ? "quantizing " + values + " into " + packed
                  : "dequantizing " + packed + " into " + values) +
      "; [" + llvm::Twine(outputs) + ", " + llvm::Twine(inputs) + "] needs " +
      (quantizing ? needValues + " and " + needBytes : needBytes + " and " + needValues));
}

/// Writes the `bits`-wide `code` as element `index` of a packed array.
void putCode(uint8_t *packed, uint64_t index, unsigned bits, int32_t code) {
  if (bits == 8) {
    packed[index] = uint8_t(code);
    return;
  }
  unsigned shift = 4 * unsigned(index & 1);
  packed[index / 2] = uint8_t((packed[index / 2] & ~(0xf << shift)) | ((code & 0xf) << shift));
}

/// Reads element `index` of a packed array, sign-extended when `isSigned`.
int32_t getCode(const uint8_t *packed, uint64_t index, unsigned bits, bool isSigned) {
  int32_t code = bits == 8 ? packed[index] : (packed[index / 2] >> (4 * (index & 1))) & 0xf;
  int32_t limit = 1 << (bits - 1);
  return isSigned && code >= limit ? code - 2 * limit : code;
}
} // namespace

llvm::Error falcon::quantizeWeight(llvm::StringRef name, llvm::ArrayRef<float> values,
                                   int64_t outputs, int64_t inputs,
                                   const WeightQuantization &quantization,
                                   llvm::MutableArrayRef<uint8_t> destination) {
  if (llvm::Error error = checkQuantizedBuffers(name, outputs, inputs, quantization,
                                                values.size(), destination.size(),
                                                /*quantizing=*/true))
    return error;
  QuantizedRowLayout layout(inputs, quantization);
  unsigned bits = quantization.bits;
  int32_t levels = (1 << bits) - 1; // asymmetric codes 0..levels
  int32_t limit = (1 << (bits - 1)) - 1; // symmetric codes -limit..limit
  std::fill(destination.begin(), destination.end(), 0);
  for (int64_t row = 0; row < outputs; ++row) {
    const float *x = values.data() + row * inputs;
    uint8_t *codes = destination.data() + uint64_t(row) * layout.rowBytes;
    uint8_t *scales = codes + layout.valueBytes;
    uint8_t *zeros = scales + 2 * layout.groups;
    for (uint64_t group = 0; group < layout.groups; ++group) {
      int64_t begin = int64_t(group) * quantization.groupSize;
      int64_t end = std::min<int64_t>(begin + quantization.groupSize, inputs);
      float low = 0, high = 0;
      for (int64_t column = begin; column < end; ++column) {
        if (!std::isfinite(x[column]))
          return llvm::createStringError("weight '" + name + "': the value at [" +
                                         llvm::Twine(row) + ", " + llvm::Twine(column) +
                                         "] is not finite; it cannot be quantized");
        low = std::min(low, x[column]);
        high = std::max(high, x[column]);
      }
      float range = quantization.symmetric ? std::max(-low, high) / float(limit)
                                           : (high - low) / float(levels);
      uint16_t scaleBits = roundToHalf(range);
      std::memcpy(scales + 2 * group, &scaleBits, 2);
      float scale = halfToFloat(scaleBits);
      if (!std::isfinite(scale))
        return llvm::createStringError(
            "weight '" + name + "': the values of row " + llvm::Twine(row) + ", inputs " +
            llvm::Twine(begin) + " to " + llvm::Twine(end - 1) +
            " span more than an f16 scale can hold");
      // A scale that rounds to 0 keeps every code at the zero point.
      float inverse = scale > 0 ? 1.0f / scale : 0.0f;
      int32_t zero = 0;
      if (!quantization.symmetric) {
        zero = int32_t(std::clamp(std::nearbyint(-low * inverse), 0.0f, float(levels)));
        putCode(zeros, group, bits, zero);
      }
      for (int64_t column = begin; column < end; ++column) {
        float code = std::nearbyint(x[column] * inverse) + float(zero);
        code = quantization.symmetric ? std::clamp(code, float(-limit), float(limit))
                                      : std::clamp(code, 0.0f, float(levels));
        putCode(codes, uint64_t(column), bits, int32_t(code));
      }
    }
  }
  return llvm::Error::success();
}

llvm::Error falcon::dequantizeWeight(llvm::StringRef name, llvm::ArrayRef<uint8_t> source,
                                     int64_t outputs, int64_t inputs,
                                     const WeightQuantization &quantization,
                                     llvm::MutableArrayRef<float> values) {
  if (llvm::Error error = checkQuantizedBuffers(name, outputs, inputs, quantization,
                                                values.size(), source.size(),
                                                /*quantizing=*/false))
    return error;
  QuantizedRowLayout layout(inputs, quantization);
  for (int64_t row = 0; row < outputs; ++row) {
    const uint8_t *codes = source.data() + uint64_t(row) * layout.rowBytes;
    const uint8_t *scales = codes + layout.valueBytes;
    const uint8_t *zeros = scales + 2 * layout.groups;
    for (int64_t column = 0; column < inputs; ++column) {
      uint64_t group = uint64_t(column / quantization.groupSize);
      uint16_t scaleBits;
      std::memcpy(&scaleBits, scales + 2 * group, 2);
      int32_t zero =
          quantization.symmetric ? 0 : getCode(zeros, group, quantization.bits, false);
      int32_t code = getCode(codes, uint64_t(column), quantization.bits, quantization.symmetric);
      values[uint64_t(row * inputs + column)] = float(code - zero) * halfToFloat(scaleBits);
    }
  }
  return llvm::Error::success();
}
