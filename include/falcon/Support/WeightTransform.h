//===- WeightTransform.h - checkpoint tensors to kernel bytes ---*- C++ -*-===//
//
// How a checkpoint tensor (row-major, as safetensors stores it) becomes the
// bytes a compiled kernel reads: an ordered list of steps (permutation,
// contiguous slice, row gather), where the packed weight files place the
// results (64-byte aligned, one file per rank, per-layer copies at
// offset + layer * stride), and the copy itself. The compiler uses it for the
// offsets it compiles in and for the files it writes; it is plain C++ and
// LLVM Support (no MLIR) so that the runtime can use it too.
//
// Shapes and byte counts come from files that may lie: every product and sum
// is overflow-checked and every index range-checked, and a problem is an
// llvm::Error naming the tensor, the step and what was wrong.
//
//===----------------------------------------------------------------------===//
#ifndef FALCON_SUPPORT_WEIGHTTRANSFORM_H
#define FALCON_SUPPORT_WEIGHTTRANSFORM_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace falcon {

/// One step of a WeightTransform, applied to the shape the previous steps
/// produced.
struct WeightTransformStep {
  enum class Kind {
    /// Result dimension i is input dimension `permutation[i]` (a transpose
    /// of any rank).
    Permute,
    /// Indices [begin, begin + size) of dimension `dim`.
    Slice,
    /// Indices `indices` of dimension `dim`, in that order (repeats allowed):
    /// an uneven tensor-parallel shard, e.g. falcon-7b's 71 query heads'
    /// rows split over ranks.
    Gather,
  };
  Kind kind;
  llvm::SmallVector<int64_t, 4> permutation;
  int64_t dim = 0;
  int64_t begin = 0;
  int64_t size = 0;
  std::vector<int64_t> indices;

  static WeightTransformStep permute(llvm::ArrayRef<int64_t> permutation);
  static WeightTransformStep slice(int64_t dim, int64_t begin, int64_t size);
  static WeightTransformStep gather(int64_t dim,
                                    llvm::ArrayRef<int64_t> indices);
};

/// Weight-only quantization of a projection weight, in the layout the
/// generated kernels read: the weight as [inputs, outputs] (inputs: the
/// reduction dimension), rounded to nearest in groups of `groupSize`
/// consecutive inputs of one output, `bits` wide (8 or 4), with one f16 scale
/// per group and, unless `symmetric`, one f16 zero point per group.
struct WeightQuantization {
  unsigned bits = 8;
  int64_t groupSize = 128;
  bool symmetric = true;
};

/// One-line error, or the empty string, for a quantization: bits 8 or 4, a
/// group size of 32, 64 or 128.
std::string checkWeightQuantization(const WeightQuantization &quantization);

/// The group size a weight of `inputs` inputs is quantized with: the
/// requested one, halved until it divides `inputs` (falcon-7b's 4544 inputs
/// take 64 for 128), so that every group is whole. An error names `name`
/// when no group of at least 8 inputs divides them.
llvm::Expected<int64_t> getEffectiveGroupSize(llvm::StringRef name, int64_t inputs,
                                              int64_t groupSize);

/// The tensors a quantized weight is stored as. A value is
/// (code - zero point) * scale, with zero point 0 when symmetric.
enum class QuantizedPart {
  /// [inputs * bits / 8, outputs] signed bytes: one int8 code, or two int4
  /// codes (inputs 2i in the low nibble, 2i + 1 in the high one), two's
  /// complement. Asymmetric codes are stored minus 2^(bits-1), their zero
  /// points likewise, so that every code is signed.
  Codes,
  /// [inputs / groupSize, outputs] f16.
  Scales,
  /// [inputs / groupSize, outputs] f16 (asymmetric only).
  ZeroPoints,
};

/// The shape of `part` of an [inputs, outputs] weight quantized as
/// `quantization`, whose group size must divide `inputs`. Errors (a bad
/// scheme or shape, a zero-point part of a symmetric scheme) name `name`.
llvm::Expected<llvm::SmallVector<int64_t, 2>>
getQuantizedPartShape(llvm::StringRef name, int64_t inputs, int64_t outputs,
                      const WeightQuantization &quantization, QuantizedPart part);
/// The bytes of one element of `part` (1 for codes, 2 for f16).
unsigned getQuantizedPartElementBytes(QuantizedPart part);
/// The parts a scheme stores: codes and scales, and zero points unless
/// symmetric.
llvm::SmallVector<QuantizedPart, 3>
getQuantizedParts(const WeightQuantization &quantization);

/// The bytes of an [inputs, outputs] weight quantized as `quantization`
/// (with its effective group size): its parts, each rounded up to
/// `alignment` as a weight file places it. Overflow is an error naming
/// `name`.
llvm::Expected<uint64_t>
getQuantizedWeightBytes(llvm::StringRef name, int64_t inputs, int64_t outputs,
                        const WeightQuantization &quantization, uint64_t alignment = 1);

/// The bytes of an LM head quantized to int8 in the layers' groups and
/// symmetry (`layers`, --quantize-lm-head), as getQuantizedWeightBytes; none
/// where that cannot be (the head then stays as stored).
std::optional<uint64_t> getInt8LMHeadBytes(llvm::StringRef name, int64_t inputs,
                                           int64_t outputs, const WeightQuantization &layers,
                                           uint64_t alignment = 1);

/// `value` rounded to the nearest IEEE binary16 (ties to even; beyond the
/// largest half, infinity), as its bits.
uint16_t roundToHalf(float value);
/// The value of the IEEE binary16 `bits`.
float halfToFloat(uint16_t bits);

/// The parts of a quantized weight, as QuantizedPart lays them out.
struct QuantizedWeight {
  std::vector<uint8_t> codes;
  std::vector<uint16_t> scales;
  std::vector<uint16_t> zeroPoints;
};

/// Quantizes an [inputs, outputs] weight (row-major f32 `values`; the group
/// size must divide `inputs`) by round to nearest. Each group's range
/// includes 0 (as GPTQ's does):
///   symmetric:  scale = max|x| / (2^(bits-1) - 1), code = round(x / scale);
///   asymmetric: scale = (max - min) / (2^bits - 1), zero = round(-min /
///               scale), code = round(x / scale) + zero in [0, 2^bits - 1];
/// with `scale` the f16-rounded one that is stored, x / scale computed as
/// x * (1 / scale) in f32, ties to even. A non-finite value is an error
/// naming the weight and its place.
llvm::Expected<QuantizedWeight> quantizeWeight(llvm::StringRef name,
                                               llvm::ArrayRef<float> values, int64_t inputs,
                                               int64_t outputs,
                                               const WeightQuantization &quantization);

/// The values `weight` stands for: (code - zero point) * scale.
llvm::Error dequantizeWeight(llvm::StringRef name, const QuantizedWeight &weight,
                             int64_t inputs, int64_t outputs,
                             const WeightQuantization &quantization,
                             llvm::MutableArrayRef<float> values);

/// One element of an already quantized weight as a 4-byte value: its
/// unsigned `code` (0 .. 2^bits - 1) and `zeroPoint` (0 .. 2^bits; the value is
/// (code - zeroPoint) * scale) and its f16 `scale`. A tensor of these takes
/// the same steps (shard, permutation) as a float weight, so that a
/// tensor-parallel rank's slice of a GPTQ weight is cut as a float one is.
inline uint32_t packQuantizedElement(uint8_t code, uint8_t zeroPoint, uint16_t scale) {
  return uint32_t(code) | uint32_t(zeroPoint) << 8 | uint32_t(scale) << 16;
}

/// The parts of an [inputs, outputs] weight given as packQuantizedElement()s
/// (asymmetric: codes and zero points stored minus 2^(bits-1)). Every group
/// of `groupSize` consecutive inputs of an output must share one scale and
/// zero point; otherwise (groups that a shard or GPTQ's act-order split) an
/// error names the weight, the output and the inputs. Codes beyond `bits`
/// are an error too.
llvm::Expected<QuantizedWeight> regroupQuantizedWeight(llvm::StringRef name,
                                                       llvm::ArrayRef<uint32_t> elements,
                                                       int64_t inputs, int64_t outputs,
                                                       const WeightQuantization &quantization);

/// A checkpoint tensor and the steps that turn it into what a kernel reads.
struct WeightTransform {
  /// The tensor's name, for error messages.
  std::string name;
  /// Bytes per element (4 for f32, 2 for bf16/f16, 1 for i8).
  unsigned elementBytes = 0;
  /// The checkpoint tensor's shape (row-major).
  llvm::SmallVector<int64_t, 4> sourceShape;
  std::vector<WeightTransformStep> steps;
  /// Set for a quantized weight: after the steps, the [inputs, outputs]
  /// tensor they produce (elements f32, bf16 or f16 as `sourceFloat` says)
  /// is quantized, and the result is `part` of it.
  struct Quantize {
    WeightQuantization quantization;
    QuantizedPart part = QuantizedPart::Codes;
    /// The source's elements: floats to quantize, or `Quantized`: the
    /// 4-byte packQuantizedElement()s of a weight another tool quantized
    /// (GPTQ, AWQ), regrouped into the parts without re-quantizing.
    enum class Float { F32, BF16, F16, Quantized } sourceFloat = Float::F32;
  };
  std::optional<Quantize> quantize;
};

/// The floats `raw` holds (f32, bf16 or f16 as `kind` says; not Quantized),
/// as f32.
std::vector<float> widenToFloat(llvm::ArrayRef<uint8_t> raw,
                                WeightTransform::Quantize::Float kind);

/// The bytes of the checkpoint tensor (elementBytes * its element count).
llvm::Expected<uint64_t> getSourceBytes(const WeightTransform &transform);
/// The shape after all steps.
llvm::Expected<llvm::SmallVector<int64_t, 4>>
getResultShape(const WeightTransform &transform);
/// The bytes of the result (of the quantized part, for a quantized weight).
llvm::Expected<uint64_t> getResultBytes(const WeightTransform &transform);

/// Writes bytes [resultOffset, resultOffset + destination.size()) of the
/// transformed tensor into `destination`, reading `source`, the checkpoint
/// tensor's bytes (exactly getSourceBytes of them, e.g. a region of a mapped
/// safetensors file). A large tensor can so be written in file-sized chunks
/// without holding the whole result; the range must lie within the result
/// and start and end on element boundaries. A quantized weight is quantized
/// whole at each call: write it in one.
llvm::Error applyWeightTransform(const WeightTransform &transform,
                                 llvm::ArrayRef<uint8_t> source,
                                 uint64_t resultOffset,
                                 llvm::MutableArrayRef<uint8_t> destination);

/// Alignment of every tensor (and of every per-layer copy) in a weight file.
inline constexpr uint64_t kWeightFileAlignment = 64;

/// A tensor to place in a rank's weight file.
struct WeightPlacementRequest {
  /// For error messages.
  std::string name;
  /// The file (one per rank) it goes to.
  unsigned rank = 0;
  /// Bytes of one copy (getResultBytes of its transform).
  uint64_t bytes = 0;
  /// Per-layer weights have one copy per layer, otherwise 1.
  uint64_t copies = 1;
};

/// Where one request landed.
struct WeightPlacement {
  unsigned rank = 0;
  /// Byte offset of copy 0.
  uint64_t offset = 0;
  /// Distance between consecutive copies (bytes rounded up to the alignment).
  uint64_t stride = 0;
  uint64_t bytes = 0;
  uint64_t copies = 1;

  /// Byte offset of copy `copy` (< copies; no overflow: checked when placed).
  uint64_t copyOffset(uint64_t copy) const { return offset + copy * stride; }
};

struct WeightFileLayout {
  /// One per request, in request order.
  std::vector<WeightPlacement> placements;
  /// Size of each rank's file (a multiple of the alignment).
  std::vector<uint64_t> fileBytes;
};

/// Places `requests` in `numRanks` files: each file holds its rank's
/// requests in request order, every copy starting at a multiple of
/// `alignment` (a power of two) and zero padding in between.
llvm::Expected<WeightFileLayout>
layoutWeightFiles(llvm::ArrayRef<WeightPlacementRequest> requests,
                  unsigned numRanks, uint64_t alignment = kWeightFileAlignment);

} // namespace falcon

#endif // FALCON_SUPPORT_WEIGHTTRANSFORM_H
