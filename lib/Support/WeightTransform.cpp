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
  if (!transform.quantize)
    return shape;
  if (shape.size() != 2)
    return transformError(transform, "only a 2-D [inputs, outputs] tensor can be quantized, "
                                     "found rank " + llvm::Twine(shape.size()));
  llvm::Expected<llvm::SmallVector<int64_t, 2>> part =
      getQuantizedPartShape(transform.name, shape[0], shape[1],
                            transform.quantize->quantization, transform.quantize->part);
  if (!part)
    return part.takeError();
  return llvm::SmallVector<int64_t, 4>(part->begin(), part->end());
}

llvm::Expected<uint64_t>
falcon::getResultBytes(const WeightTransform &transform) {
  llvm::Expected<llvm::SmallVector<int64_t, 4>> shape =
      getResultShape(transform);
  if (!shape)
    return shape.takeError();
  if (!transform.quantize)
    return checkedBytes(transform, *shape, "result");
  // A part's sizes are those of a checked tensor or smaller.
  return uint64_t((*shape)[0]) * uint64_t((*shape)[1]) *
         getQuantizedPartElementBytes(transform.quantize->part);
}

namespace {
/// applyWeightTransform of a quantized weight: the steps' result, widened
/// to f32, quantized whole; then the requested bytes of the part.
llvm::Error applyQuantize(const WeightTransform &transform, llvm::ArrayRef<uint8_t> source,
                          uint64_t resultOffset, llvm::MutableArrayRef<uint8_t> destination) {
  const WeightTransform::Quantize &quantize = *transform.quantize;
  using Float = WeightTransform::Quantize::Float;
  unsigned sourceWidth =
      quantize.sourceFloat == Float::F32 || quantize.sourceFloat == Float::Quantized ? 4 : 2;
  if (transform.elementBytes != sourceWidth)
    return transformError(transform, "quantizes " + llvm::Twine(sourceWidth) +
                                         "-byte floats but its elements are " +
                                         llvm::Twine(transform.elementBytes) + " bytes");
  llvm::Expected<uint64_t> partBytes = getResultBytes(transform);
  if (!partBytes)
    return partBytes.takeError();
  unsigned width = getQuantizedPartElementBytes(quantize.part);
  if (resultOffset % width != 0 || destination.size() % width != 0 ||
      resultOffset > *partBytes || destination.size() > *partBytes - resultOffset)
    return transformError(transform, "bytes [" + llvm::Twine(resultOffset) + ", +" +
                                         llvm::Twine(destination.size()) +
                                         ") are not whole elements within the " +
                                         llvm::Twine(*partBytes) + "-byte result");
  WeightTransform plain = transform;
  plain.quantize.reset();
  llvm::SmallVector<int64_t, 4> shape = llvm::cantFail(getResultShape(plain));
  std::vector<uint8_t> raw(size_t(llvm::cantFail(getResultBytes(plain))));
  if (llvm::Error error = applyWeightTransform(plain, source, 0, raw))
    return error;
  llvm::Expected<QuantizedWeight> quantized = llvm::createStringError("unreachable");
  if (quantize.sourceFloat == Float::Quantized) {
    std::vector<uint32_t> elements(raw.size() / 4);
    std::memcpy(elements.data(), raw.data(), raw.size());
    llvm::consumeError(quantized.takeError());
    quantized = regroupQuantizedWeight(transform.name, elements, shape[0], shape[1],
                                       quantize.quantization);
  }
  std::vector<float> values;
  if (quantize.sourceFloat != Float::Quantized)
    values = widenToFloat(raw, quantize.sourceFloat);
  if (quantize.sourceFloat != Float::Quantized) {
    llvm::consumeError(quantized.takeError());
    quantized = quantizeWeight(transform.name, values, shape[0], shape[1], quantize.quantization);
  }
  if (!quantized)
    return quantized.takeError();
  const uint8_t *bytes =
      quantize.part == QuantizedPart::Codes
          ? quantized->codes.data()
          : reinterpret_cast<const uint8_t *>(quantize.part == QuantizedPart::Scales
                                                  ? quantized->scales.data()
                                                  : quantized->zeroPoints.data());
  std::memcpy(destination.data(), bytes + resultOffset, destination.size());
  return llvm::Error::success();
}
} // namespace

llvm::Error falcon::applyWeightTransform(
    const WeightTransform &transform, llvm::ArrayRef<uint8_t> source,
    uint64_t resultOffset, llvm::MutableArrayRef<uint8_t> destination) {
  if (transform.quantize)
    return applyQuantize(transform, source, resultOffset, destination);
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

llvm::Expected<int64_t> falcon::getEffectiveGroupSize(llvm::StringRef name, int64_t inputs,
                                                      int64_t groupSize) {
  int64_t group = groupSize;
  while (group >= 8 && inputs % group != 0)
    group /= 2;
  if (group < 8 || inputs <= 0)
    return llvm::createStringError("weight '" + name + "': no quantization group of 8 to " +
                                   llvm::Twine(groupSize) + " inputs divides its " +
                                   llvm::Twine(inputs) + " inputs");
  return group;
}

llvm::SmallVector<QuantizedPart, 3>
falcon::getQuantizedParts(const WeightQuantization &quantization) {
  if (quantization.symmetric)
    return {QuantizedPart::Codes, QuantizedPart::Scales};
  return {QuantizedPart::Codes, QuantizedPart::Scales, QuantizedPart::ZeroPoints};
}

unsigned falcon::getQuantizedPartElementBytes(QuantizedPart part) {
  return part == QuantizedPart::Codes ? 1 : 2;
}

llvm::Expected<llvm::SmallVector<int64_t, 2>>
falcon::getQuantizedPartShape(llvm::StringRef name, int64_t inputs, int64_t outputs,
                              const WeightQuantization &quantization, QuantizedPart part) {
  auto fail = [&](const llvm::Twine &what) {
    return llvm::createStringError("weight '" + name + "': " + what);
  };
  if (quantization.bits != 8 && quantization.bits != 4)
    return fail("quantization bits must be 8 or 4, found " + llvm::Twine(quantization.bits));
  if (inputs <= 0 || outputs <= 0)
    return fail("cannot quantize a [" + llvm::Twine(inputs) + ", " + llvm::Twine(outputs) +
                "] weight");
  if (quantization.groupSize < 2 || quantization.groupSize % 2 != 0 ||
      inputs % quantization.groupSize != 0)
    return fail("quantization groups of " + llvm::Twine(quantization.groupSize) +
                " do not divide its " + llvm::Twine(inputs) + " inputs");
  if (part == QuantizedPart::ZeroPoints && quantization.symmetric)
    return fail("a symmetric quantization has no zero points");
  if (part == QuantizedPart::Codes)
    return llvm::SmallVector<int64_t, 2>{inputs * quantization.bits / 8, outputs};
  return llvm::SmallVector<int64_t, 2>{inputs / quantization.groupSize, outputs};
}

llvm::Expected<uint64_t>
falcon::getQuantizedWeightBytes(llvm::StringRef name, int64_t inputs, int64_t outputs,
                                const WeightQuantization &quantization, uint64_t alignment) {
  if (std::string problem = checkWeightQuantization(quantization); !problem.empty())
    return llvm::createStringError("weight '" + name + "': " + problem);
  WeightQuantization effective = quantization;
  llvm::Expected<int64_t> group = getEffectiveGroupSize(name, inputs, quantization.groupSize);
  if (!group)
    return group.takeError();
  effective.groupSize = *group;
  uint64_t total = 0;
  for (QuantizedPart part : getQuantizedParts(effective)) {
    llvm::Expected<llvm::SmallVector<int64_t, 2>> shape =
        getQuantizedPartShape(name, inputs, outputs, effective, part);
    if (!shape)
      return shape.takeError();
    std::optional<uint64_t> elements =
        llvm::checkedMulUnsigned<uint64_t>(uint64_t((*shape)[0]), uint64_t((*shape)[1]));
    std::optional<uint64_t> bytes =
        elements ? llvm::checkedMulUnsigned<uint64_t>(*elements,
                                                      getQuantizedPartElementBytes(part))
                 : std::nullopt;
    std::optional<uint64_t> sum =
        bytes ? llvm::checkedAddUnsigned<uint64_t>(total, llvm::alignTo(*bytes, alignment))
              : std::nullopt;
    if (!sum)
      return llvm::createStringError("weight '" + name +
                                     "': the quantized size overflows 64 bits");
    total = *sum;
  }
  return total;
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

std::vector<float> falcon::widenToFloat(llvm::ArrayRef<uint8_t> raw,
                                       WeightTransform::Quantize::Float kind) {
  using Float = WeightTransform::Quantize::Float;
  assert(kind != Float::Quantized && "quantized elements are not floats");
  unsigned width = kind == Float::F32 ? 4 : 2;
  std::vector<float> values(raw.size() / width);
  for (size_t i = 0; i < values.size(); ++i) {
    if (kind == Float::F32) {
      std::memcpy(&values[i], &raw[4 * i], 4);
      continue;
    }
    uint16_t half;
    std::memcpy(&half, &raw[2 * i], 2);
    if (kind == Float::F16) {
      values[i] = halfToFloat(half);
      continue;
    }
    uint32_t word = uint32_t(half) << 16;
    std::memcpy(&values[i], &word, 4);
  }
  return values;
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
/// Checks a (de)quantization's shape and `valueCount` floats.
llvm::Error checkQuantizedShape(llvm::StringRef name, int64_t inputs, int64_t outputs,
                                const falcon::WeightQuantization &quantization,
                                size_t valueCount) {
  llvm::Expected<llvm::SmallVector<int64_t, 2>> shape = falcon::getQuantizedPartShape(
      name, inputs, outputs, quantization, falcon::QuantizedPart::Codes);
  if (!shape)
    return shape.takeError();
  if (valueCount != uint64_t(inputs) * uint64_t(outputs))
    return llvm::createStringError("weight '" + name + "': " + llvm::Twine(valueCount) +
                                   " values for an [" + llvm::Twine(inputs) + ", " +
                                   llvm::Twine(outputs) + "] weight");
  return llvm::Error::success();
}

/// Writes the signed `bits`-wide `code` of input `input`, output `output`.
void putCode(std::vector<uint8_t> &codes, int64_t input, int64_t output, int64_t outputs,
             unsigned bits, int32_t code) {
  if (bits == 8) {
    codes[size_t(input * outputs + output)] = uint8_t(int8_t(code));
    return;
  }
  uint8_t &byte = codes[size_t((input / 2) * outputs + output)];
  unsigned shift = 4 * unsigned(input & 1);
  byte = uint8_t((byte & ~(0xf << shift)) | ((code & 0xf) << shift));
}

/// The signed code of input `input`, output `output`.
int32_t getCode(const std::vector<uint8_t> &codes, int64_t input, int64_t output,
                int64_t outputs, unsigned bits) {
  if (bits == 8)
    return int8_t(codes[size_t(input * outputs + output)]);
  int32_t code = (codes[size_t((input / 2) * outputs + output)] >> (4 * (input & 1))) & 0xf;
  return code >= 8 ? code - 16 : code;
}
} // namespace

llvm::Expected<QuantizedWeight>
falcon::quantizeWeight(llvm::StringRef name, llvm::ArrayRef<float> values, int64_t inputs,
                       int64_t outputs, const WeightQuantization &quantization) {
  if (llvm::Error error = checkQuantizedShape(name, inputs, outputs, quantization, values.size()))
    return std::move(error);
  unsigned bits = quantization.bits;
  int64_t group = quantization.groupSize, groups = inputs / group;
  int32_t levels = (1 << bits) - 1;      // asymmetric codes 0..levels
  int32_t limit = (1 << (bits - 1)) - 1; // symmetric codes -limit..limit
  int32_t offset = 1 << (bits - 1);      // asymmetric codes are stored minus this
  QuantizedWeight result;
  result.codes.assign(size_t(inputs * bits / 8 * outputs), 0);
  result.scales.assign(size_t(groups * outputs), 0);
  if (!quantization.symmetric)
    result.zeroPoints.assign(size_t(groups * outputs), 0);
  // Group by group, row by row (the values are [inputs, outputs]).
  size_t columns = static_cast<size_t>(outputs);
  std::vector<float> low(columns), high(columns), inverse(columns);
  std::vector<int32_t> zero(columns, 0);
  for (int64_t g = 0; g < groups; ++g) {
    std::fill(low.begin(), low.end(), 0.0f);
    std::fill(high.begin(), high.end(), 0.0f);
    for (int64_t input = g * group; input < (g + 1) * group; ++input) {
      for (int64_t output = 0; output < outputs; ++output) {
        float x = values[size_t(input * outputs + output)];
        if (!std::isfinite(x))
          return llvm::createStringError("weight '" + name + "': the value at input " +
                                         llvm::Twine(input) + ", output " + llvm::Twine(output) +
                                         " is not finite; it cannot be quantized");
        low[size_t(output)] = std::min(low[size_t(output)], x);
        high[size_t(output)] = std::max(high[size_t(output)], x);
      }
    }
    for (int64_t output = 0; output < outputs; ++output) {
      float range = quantization.symmetric
                        ? std::max(high[size_t(output)], -low[size_t(output)]) / float(limit)
                        : (high[size_t(output)] - low[size_t(output)]) / float(levels);
      uint16_t scaleBits = roundToHalf(range);
      float scale = halfToFloat(scaleBits);
      if (!std::isfinite(scale))
        return llvm::createStringError("weight '" + name + "': the values of output " +
                                       llvm::Twine(output) + ", inputs " +
                                       llvm::Twine(g * group) + " to " +
                                       llvm::Twine((g + 1) * group - 1) +
                                       " span more than an f16 scale can hold");
      result.scales[size_t(g * outputs + output)] = scaleBits;
      // A scale that rounds to 0 keeps every code at the zero point.
      inverse[size_t(output)] = scale > 0 ? 1.0f / scale : 0.0f;
      if (!quantization.symmetric) {
        zero[size_t(output)] = int32_t(std::clamp(
            std::nearbyint(-low[size_t(output)] * inverse[size_t(output)]), 0.0f, float(levels)));
        result.zeroPoints[size_t(g * outputs + output)] =
            roundToHalf(float(zero[size_t(output)] - offset));
      }
    }
    for (int64_t input = g * group; input < (g + 1) * group; ++input) {
      for (int64_t output = 0; output < outputs; ++output) {
        float code =
            std::nearbyint(values[size_t(input * outputs + output)] * inverse[size_t(output)]);
        code = quantization.symmetric
                   ? std::clamp(code, float(-limit), float(limit))
                   : std::clamp(code + float(zero[size_t(output)]), 0.0f, float(levels)) -
                         float(offset);
        putCode(result.codes, input, output, outputs, bits, int32_t(code));
      }
    }
  }
  return result;
}

llvm::Expected<QuantizedWeight>
falcon::regroupQuantizedWeight(llvm::StringRef name, llvm::ArrayRef<uint32_t> elements,
                               int64_t inputs, int64_t outputs,
                               const WeightQuantization &quantization) {
  if (llvm::Error error =
          checkQuantizedShape(name, inputs, outputs, quantization, elements.size()))
    return std::move(error);
  if (quantization.symmetric)
    return llvm::createStringError("weight '" + name + "': an imported quantized weight "
                                   "keeps its zero points (an asymmetric scheme)");
  unsigned bits = quantization.bits;
  int64_t group = quantization.groupSize, groups = inputs / group;
  uint32_t levels = (1u << bits) - 1;
  int32_t offset = 1 << (bits - 1);
  QuantizedWeight result;
  result.codes.assign(size_t(inputs * bits / 8 * outputs), 0);
  result.scales.assign(size_t(groups * outputs), 0);
  result.zeroPoints.assign(size_t(groups * outputs), 0);
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t output = 0; output < outputs; ++output) {
      uint32_t first = elements[size_t(g * group * outputs + output)];
      if (!std::isfinite(halfToFloat(uint16_t(first >> 16))))
        return llvm::createStringError("weight '" + name + "': the scale of output " +
                                       llvm::Twine(output) + ", group " + llvm::Twine(g) +
                                       " is not finite");
      for (int64_t input = g * group; input < (g + 1) * group; ++input) {
        uint32_t element = elements[size_t(input * outputs + output)];
        if ((element >> 8) != (first >> 8))
          return llvm::createStringError(
              "weight '" + name + "': inputs " + llvm::Twine(g * group) + " to " +
              llvm::Twine((g + 1) * group - 1) + " of output " + llvm::Twine(output) +
              " do not share one scale and zero point (groups of " + llvm::Twine(group) +
              " consecutive inputs are what the kernels read)");
        uint32_t code = element & 0xff;
        if (code > levels)
          return llvm::createStringError("weight '" + name + "': code " + llvm::Twine(code) +
                                         " at input " + llvm::Twine(input) + ", output " +
                                         llvm::Twine(output) + " does not fit " +
                                         llvm::Twine(bits) + " bits");
        putCode(result.codes, input, output, outputs, bits, int32_t(code) - offset);
      }
      // Up to 2^bits: GPTQ's "gptq" format reads a stored 15 as 16.
      uint32_t zero = (first >> 8) & 0xff;
      if (zero > levels + 1)
        return llvm::createStringError("weight '" + name + "': zero point " + llvm::Twine(zero) +
                                       " of output " + llvm::Twine(output) + ", group " +
                                       llvm::Twine(g) + " does not fit " + llvm::Twine(bits) +
                                       " bits");
      result.zeroPoints[size_t(g * outputs + output)] = roundToHalf(float(int32_t(zero) - offset));
      result.scales[size_t(g * outputs + output)] = uint16_t(first >> 16);
    }
  }
  return result;
}

llvm::Error falcon::dequantizeWeight(llvm::StringRef name, const QuantizedWeight &weight,
                                     int64_t inputs, int64_t outputs,
                                     const WeightQuantization &quantization,
                                     llvm::MutableArrayRef<float> values) {
  if (llvm::Error error = checkQuantizedShape(name, inputs, outputs, quantization, values.size()))
    return error;
  int64_t groups = inputs / quantization.groupSize;
  if (weight.codes.size() != uint64_t(inputs * quantization.bits / 8 * outputs) ||
      weight.scales.size() != uint64_t(groups * outputs) ||
      weight.zeroPoints.size() != (quantization.symmetric ? 0 : uint64_t(groups * outputs)))
    return llvm::createStringError("weight '" + name + "': its quantized parts do not have "
                                   "the sizes of an [" + llvm::Twine(inputs) + ", " +
                                   llvm::Twine(outputs) + "] weight");
  for (int64_t input = 0; input < inputs; ++input) {
    int64_t g = input / quantization.groupSize;
    for (int64_t output = 0; output < outputs; ++output) {
      size_t at = size_t(g * outputs + output);
      float zero = quantization.symmetric ? 0.0f : halfToFloat(weight.zeroPoints[at]);
      float code = float(getCode(weight.codes, input, output, outputs, quantization.bits));
      values[size_t(input * outputs + output)] = (code - zero) * halfToFloat(weight.scales[at]);
    }
  }
  return llvm::Error::success();
}

std::optional<uint64_t> falcon::getInt8LMHeadBytes(llvm::StringRef name, int64_t inputs,
                                                   int64_t outputs,
                                                   const WeightQuantization &layers,
                                                   uint64_t alignment) {
  WeightQuantization int8 = layers;
  int8.bits = 8;
  llvm::Expected<uint64_t> bytes =
      getQuantizedWeightBytes(name, inputs, outputs, int8, alignment);
  if (!bytes) {
    llvm::consumeError(bytes.takeError());
    return std::nullopt;
  }
  return *bytes;
}
