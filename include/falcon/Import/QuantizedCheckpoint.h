//===- QuantizedCheckpoint.h - GPTQ and AWQ projections ---------*- C++ -*-===//
//
// A checkpoint quantized by another tool (config.json `quantization_config`)
// stores each decoder-layer projection `P.weight` as `P.qweight`, `P.qzeros`,
// `P.scales` (and GPTQ's `P.g_idx`). This reads them by the formats'
// published packing into the weight-transform library's already-quantized
// elements ([out, in], as a float weight is stored), which the artifact
// writer shards, permutes and regroups into the kernels' int8/int4 parts:
// the codes, scales and zero points are the checkpoint's, never re-quantized.
//
//===----------------------------------------------------------------------===//
#ifndef FALCON_IMPORT_QUANTIZEDCHECKPOINT_H
#define FALCON_IMPORT_QUANTIZEDCHECKPOINT_H

#include "falcon/Import/FalconConfig.h"
#include "falcon/Import/Safetensors.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <vector>

namespace mlir::falcon {

/// True when weight `spec` is stored quantized: the config has a
/// quantization_config and `spec` is a decoder-layer projection's.
bool isQuantizedCheckpointWeight(const FalconConfig &config, const WeightSpec &spec);
/// True when the tensor of weight `weightName` (one layer's) is stored
/// quantized: a quantization_config and a `....qweight` in place of it.
bool isQuantizedCheckpointWeight(const FalconConfig &config, const TensorIndex &index,
                                 llvm::StringRef weightName);

/// Checks that the tensors standing for projection `weightName` (shape
/// [outputs, inputs]) are present with the format's dtypes and shapes.
llvm::Error checkQuantizedCheckpointWeight(const TensorIndex &index,
                                           const CheckpointQuantization &quantization,
                                           llvm::StringRef weightName, int64_t outputs,
                                           int64_t inputs);

/// The bytes of a stored tensor (exactly end - begin of them).
using TensorReader =
    llvm::function_ref<llvm::Expected<llvm::ArrayRef<uint8_t>>(const SafetensorsTensor &)>;

/// Projection `weightName` as [outputs, inputs] packQuantizedElement()s.
/// Values the packing cannot hold (a g_idx out of range, a zero point past
/// the bits) are errors naming the tensor.
llvm::Expected<std::vector<uint32_t>>
decodeQuantizedCheckpointWeight(const TensorIndex &index,
                                const CheckpointQuantization &quantization,
                                llvm::StringRef weightName, int64_t outputs, int64_t inputs,
                                TensorReader read);

/// GPTQ act-order: the inputs of projection `weightName` sorted by their
/// g_idx group (stably), the order in which the kernels' parts hold them so
/// that each group is `groupSize` consecutive inputs (the last group of
/// inputs that groupSize does not divide: the rest). A group that does not
/// hold exactly so many inputs is an error naming the tensor.
llvm::Expected<std::vector<int32_t>>
decodeQuantizedCheckpointInputOrder(const TensorIndex &index,
                                    const CheckpointQuantization &quantization,
                                    llvm::StringRef weightName, int64_t outputs, int64_t inputs,
                                    TensorReader read);

} // namespace mlir::falcon

#endif // FALCON_IMPORT_QUANTIZEDCHECKPOINT_H
