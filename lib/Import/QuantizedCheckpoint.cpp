//===- QuantizedCheckpoint.cpp - GPTQ and AWQ projections -----------------===//
//
// The packings (as AutoGPTQ/optimum and AutoAWQ write them, and transformers
// reads them), for b bits, p = 32 / b values per int32, value v in bits
// [b * t, b * t + b) of its word:
//
//   GPTQ qweight [in / p, out]: input i of output o is word [i / p, o],
//        t = i % p;  qzeros [groups, out / p]: output o of group g is word
//        [g, o / p], t = o % p, stored minus 1 for checkpoint_format "gptq";
//        g_idx [in]: the group of input i (i / group_size without act-order).
//   AWQ  qweight [in, out / 8]: output o = 8 j + order[t] of input i is word
//        [i, j], nibble t, order = 0, 2, 4, 6, 1, 3, 5, 7; qzeros [groups,
//        out / 8] likewise.
//   Both: scales [groups, out] f16; value = (code - zero) * scale.
//
//===----------------------------------------------------------------------===//

#include "falcon/Import/QuantizedCheckpoint.h"
#include "falcon/Support/WeightTransform.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MathExtras.h"

#include <algorithm>
#include <cstring>

using namespace mlir;
using namespace mlir::falcon;

namespace {
struct StoredTensor {
  const char *suffix;
  SafetensorsDType dtype;
  llvm::SmallVector<int64_t, 2> shape;
};

std::string formatShape(llvm::ArrayRef<int64_t> shape) {
  return "[" + llvm::join(llvm::map_range(shape, [](int64_t size) { return std::to_string(size); }),
                          ", ") +
         "]";
}

/// Groups of group_size inputs, the last one possibly shorter (AutoGPTQ's
/// ceil: falcon-7b's 4544 inputs are 35 groups of 128 and one of 64).
int64_t getGroupCount(const CheckpointQuantization &quantization, int64_t inputs) {
  return llvm::divideCeil(inputs, quantization.groupSize);
}

/// The tensors a projection of [outputs, inputs] is stored as.
std::vector<StoredTensor> getStoredTensors(const CheckpointQuantization &quantization,
                                           int64_t outputs, int64_t inputs) {
  int64_t perWord = 32 / quantization.bits, groups = getGroupCount(quantization, inputs);
  using DType = SafetensorsDType;
  if (quantization.method == CheckpointQuantization::Method::GPTQ)
    return {{"qweight", DType::I32, {inputs / perWord, outputs}},
            {"qzeros", DType::I32, {groups, outputs / perWord}},
            {"scales", DType::F16, {groups, outputs}},
            {"g_idx", DType::I32, {inputs}}};
  return {{"qweight", DType::I32, {inputs, outputs / perWord}},
          {"qzeros", DType::I32, {groups, outputs / perWord}},
          {"scales", DType::F16, {groups, outputs}}};
}

std::string getStem(llvm::StringRef weightName) {
  return weightName.drop_back(llvm::StringRef(".weight").size()).str();
}

llvm::Error checkDivisible(const CheckpointQuantization &quantization, llvm::StringRef weightName,
                           int64_t outputs, int64_t inputs) {
  int64_t perWord = 32 / quantization.bits;
  if (inputs % perWord != 0 || outputs % perWord != 0)
    return llvm::createStringError(llvm::formatv(
        "'{0}' [{1}, {2}] cannot be stored quantized with {3} values per int32", weightName,
        outputs, inputs, perWord));
  return llvm::Error::success();
}

uint32_t getWord(llvm::ArrayRef<uint8_t> bytes, int64_t index) {
  uint32_t word;
  std::memcpy(&word, bytes.data() + 4 * index, 4);
  return word;
}
} // namespace

bool mlir::falcon::isQuantizedCheckpointWeight(const FalconConfig &config,
                                               const WeightSpec &spec) {
  return config.quantization && spec.projection;
}

bool mlir::falcon::isQuantizedCheckpointWeight(const FalconConfig &config,
                                               const TensorIndex &index,
                                               llvm::StringRef weightName) {
  return config.quantization && weightName.ends_with(".weight") &&
         !index.tensors.count(weightName) && index.tensors.count(getStem(weightName) + ".qweight");
}

llvm::Error mlir::falcon::checkQuantizedCheckpointWeight(
    const TensorIndex &index, const CheckpointQuantization &quantization,
    llvm::StringRef weightName, int64_t outputs, int64_t inputs) {
  if (llvm::Error error = checkDivisible(quantization, weightName, outputs, inputs))
    return llvm::createStringError(index.source + ": " + llvm::toString(std::move(error)));
  std::string stem = getStem(weightName);
  for (const StoredTensor &stored : getStoredTensors(quantization, outputs, inputs)) {
    std::string name = stem + "." + stored.suffix;
    auto found = index.tensors.find(name);
    if (found == index.tensors.end())
      return llvm::createStringError(llvm::formatv(
          "{0}: quantized checkpoint is missing tensor '{1}' (expected {2} {3})", index.source,
          name, stringifyDType(stored.dtype), formatShape(stored.shape)));
    const SafetensorsTensor &tensor = found->second;
    if (tensor.dtype != stored.dtype || !llvm::equal(tensor.shape, stored.shape))
      return llvm::createStringError(llvm::formatv(
          "{0}: tensor '{1}' is {2} {3}, expected {4} {5} for a {6}-bit, group {7} '{8}' of "
          "shape [{9}, {10}]",
          tensor.file, name, stringifyDType(tensor.dtype), formatShape(tensor.shape),
          stringifyDType(stored.dtype), formatShape(stored.shape), quantization.bits,
          quantization.groupSize, weightName, outputs, inputs));
  }
  return llvm::Error::success();
}

llvm::Expected<std::vector<uint32_t>> mlir::falcon::decodeQuantizedCheckpointWeight(
    const TensorIndex &index, const CheckpointQuantization &quantization,
    llvm::StringRef weightName, int64_t outputs, int64_t inputs, TensorReader read) {
  if (llvm::Error error =
          checkQuantizedCheckpointWeight(index, quantization, weightName, outputs, inputs))
    return std::move(error);
  std::string stem = getStem(weightName);
  auto readPart = [&](llvm::StringRef suffix) {
    return read(index.tensors.find(stem + "." + suffix.str())->second);
  };
  llvm::Expected<llvm::ArrayRef<uint8_t>> qweight = readPart("qweight");
  if (!qweight)
    return qweight.takeError();
  llvm::Expected<llvm::ArrayRef<uint8_t>> qzeros = readPart("qzeros");
  if (!qzeros)
    return qzeros.takeError();
  llvm::Expected<llvm::ArrayRef<uint8_t>> scales = readPart("scales");
  if (!scales)
    return scales.takeError();
  bool gptq = quantization.method == CheckpointQuantization::Method::GPTQ;
  llvm::Expected<llvm::ArrayRef<uint8_t>> gIdx = llvm::ArrayRef<uint8_t>();
  if (gptq)
    gIdx = readPart("g_idx");
  if (!gIdx)
    return gIdx.takeError();

  unsigned bits = quantization.bits;
  int64_t perWord = 32 / bits, groups = getGroupCount(quantization, inputs);
  uint32_t mask = (1u << bits) - 1;
  // The group of each input.
  std::vector<int64_t> groupOf(static_cast<size_t>(inputs));
  for (int64_t input = 0; input < inputs; ++input) {
    groupOf[size_t(input)] = input / quantization.groupSize;
    if (!gptq)
      continue;
    int32_t group = int32_t(getWord(*gIdx, input));
    if (group < 0 || group >= groups)
      return llvm::createStringError(llvm::formatv("tensor '{0}.g_idx': input {1} is in group "
                                                   "{2}, outside the {3} groups",
                                                   stem, input, group, groups));
    groupOf[size_t(input)] = group;
  }
  // AWQ's nibble t holds output 8 j + (0, 2, 4, 6, 1, 3, 5, 7)[t]: output
  // 8 j + w is in nibble awqSlot[w].
  static constexpr int64_t awqSlot[8] = {0, 4, 1, 5, 2, 6, 3, 7};
  auto unpackOutput = [&](llvm::ArrayRef<uint8_t> words, int64_t row, int64_t output) {
    int64_t column = output / perWord, within = output % perWord;
    int64_t slot = gptq ? within : awqSlot[within];
    return (getWord(words, row * (outputs / perWord) + column) >> (bits * slot)) & mask;
  };
  std::vector<uint32_t> elements(static_cast<size_t>(outputs * inputs));
  for (int64_t input = 0; input < inputs; ++input) {
    int64_t group = groupOf[size_t(input)];
    for (int64_t output = 0; output < outputs; ++output) {
      uint32_t code = gptq ? (getWord(*qweight, (input / perWord) * outputs + output) >>
                              (bits * (input % perWord))) &
                                 mask
                           : unpackOutput(*qweight, input, output);
      // checkpoint_format "gptq": a stored 15 is a zero point of 16, as
      // exllama and transformers read it (the zero points are f16 here).
      uint32_t zero = unpackOutput(*qzeros, group, output) +
                      uint32_t(gptq ? quantization.zeroPointOffset : 0);
      uint16_t scale;
      std::memcpy(&scale, scales->data() + 2 * (group * outputs + output), 2);
      elements[size_t(output * inputs + input)] =
          ::falcon::packQuantizedElement(uint8_t(code), uint8_t(zero), scale);
    }
  }
  return elements;
}

llvm::Expected<std::vector<int32_t>> mlir::falcon::decodeQuantizedCheckpointInputOrder(
    const TensorIndex &index, const CheckpointQuantization &quantization,
    llvm::StringRef weightName, int64_t outputs, int64_t inputs, TensorReader read) {
  if (quantization.method != CheckpointQuantization::Method::GPTQ)
    return llvm::createStringError("'" + weightName + "': only GPTQ has an input order");
  if (llvm::Error error =
          checkQuantizedCheckpointWeight(index, quantization, weightName, outputs, inputs))
    return std::move(error);
  std::string stem = getStem(weightName);
  llvm::Expected<llvm::ArrayRef<uint8_t>> gIdx =
      read(index.tensors.find(stem + ".g_idx")->second);
  if (!gIdx)
    return gIdx.takeError();
  int64_t groups = getGroupCount(quantization, inputs);
  // Counting sort by group: stable, and each group's size is checked.
  std::vector<int64_t> start(size_t(groups + 1), 0);
  for (int64_t input = 0; input < inputs; ++input) {
    int32_t group = int32_t(getWord(*gIdx, input));
    if (group < 0 || group >= groups)
      return llvm::createStringError(llvm::formatv("tensor '{0}.g_idx': input {1} is in group "
                                                   "{2}, outside the {3} groups",
                                                   stem, input, group, groups));
    ++start[size_t(group) + 1];
  }
  for (int64_t group = 0; group < groups; ++group) {
    int64_t expected = std::min(quantization.groupSize, inputs - group * quantization.groupSize);
    if (start[size_t(group) + 1] != expected)
      return llvm::createStringError(llvm::formatv(
          "tensor '{0}.g_idx': group {1} holds {2} inputs, expected {3}", stem, group,
          start[size_t(group) + 1], expected));
    start[size_t(group) + 1] += start[size_t(group)];
  }
  std::vector<int32_t> order(static_cast<size_t>(inputs));
  for (int64_t input = 0; input < inputs; ++input)
    order[size_t(start[size_t(getWord(*gIdx, input))]++)] = int32_t(input);
  return order;
}
