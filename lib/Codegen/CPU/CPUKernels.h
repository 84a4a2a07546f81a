//===- CPUKernels.h - shared pieces of the CPU projection kernels -*- C++ -*-===//
//
// Private to lib/Codegen/CPU: what falcon-cpu-tile-projections' decode paths
// (the f32 split-K loops of CPUTiling.cpp and the integer dot products of
// CPUInt8Decode.cpp) share.
//
//===----------------------------------------------------------------------===//

#ifndef FALCON_LIB_CODEGEN_CPU_CPUKERNELS_H
#define FALCON_LIB_CODEGEN_CPU_CPUKERNELS_H

#include "falcon/Codegen/CPU/Passes.h"

namespace mlir::falcon {

/// y[b, s, n] = init[b, s, n] + sum_c partial[c, b, s, n]: the threads'
/// partial sums of a split-K projection added up.
Value combinePartialSums(OpBuilder &builder, Location loc, Value partial, Value init);

/// The decode (few rows) of projection `op`, whose weight is dequantized in
/// its body from the codes, scales and zero points that falcon-quantize-
/// weights made (`encoding`, inputs [x, codes, scales, zero points?]), as
/// integer dot products: each activation row quantized to int8 in blocks,
/// `chunks` threads each summing its contiguous block of weight rows with
/// vpdpbusd. Returns the projection's result, or failure (nothing created)
/// when the shapes do not allow it: the caller then tiles `op` as f32.
FailureOr<Value> emitInt8Decode(RewriterBase &rewriter, linalg::GenericOp op,
                                WeightEncodingAttr encoding, int64_t chunks);

} // namespace mlir::falcon

#endif // FALCON_LIB_CODEGEN_CPU_CPUKERNELS_H
