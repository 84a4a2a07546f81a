//===- FalconOps.cpp - falcon dialect operations --------------------------===//
//
// Verifiers. Messages follow the project style: lower case, no final period,
// naming what was expected and what was found.
//
//===----------------------------------------------------------------------===//

#include "Falcon/IR/FalconOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;
using namespace mlir::falcon;

int64_t mlir::falcon::getFusedQKVWidth(QKVLayout layout, int64_t numHeads,
                                       int64_t numKVHeads, int64_t headDim) {
  switch (layout) {
  case QKVLayout::PerHead:
    return 3 * numHeads * headDim;
  case QKVLayout::MultiQuery:
    return (numHeads + 2) * headDim;
  case QKVLayout::Grouped:
    return (numHeads + 2 * numKVHeads) * headDim;
  }
  llvm_unreachable("unknown QKV layout");
}

std::vector<int64_t> mlir::falcon::getFusedQKVRows(QKVLayout layout, int64_t numHeads,
                                                   int64_t numKVHeads, int64_t headDim,
                                                   ArrayRef<int64_t> queryHeads) {
  std::vector<int64_t> rows;
  auto appendHead = [&](int64_t firstRow) {
    for (int64_t row = 0; row < headDim; ++row)
      rows.push_back(firstRow + row);
  };
  switch (layout) {
  case QKVLayout::PerHead: // [H, 3, d]: head h owns q, k, v
    for (int64_t head : queryHeads)
      for (int64_t part = 0; part < 3; ++part)
        appendHead((head * 3 + part) * headDim);
    break;
  case QKVLayout::MultiQuery: // [H + 2, d]: the queries, then k, then v
    for (int64_t head : queryHeads)
      appendHead(head * headDim);
    appendHead(numHeads * headDim);
    appendHead((numHeads + 1) * headDim);
    break;
  case QKVLayout::Grouped: { // [K, H/K + 2, d]: per group its queries, k, v
    int64_t perGroup = numHeads / numKVHeads;
    int64_t groupRows = (perGroup + 2) * headDim;
    for (size_t at = 0; at < queryHeads.size();) {
      int64_t group = queryHeads[at] / perGroup;
      for (; at < queryHeads.size() && queryHeads[at] / perGroup == group; ++at)
        appendHead(group * groupRows + (queryHeads[at] - group * perGroup) * headDim);
      appendHead(group * groupRows + perGroup * headDim);
      appendHead(group * groupRows + (perGroup + 1) * headDim);
    }
    break;
  }
  }
  return rows;
}

/// Checks that a static dimension has the expected size; dynamic sizes are
/// checked at run time.
static LogicalResult expectDim(Operation *op, const Twine &what,
                               int64_t expected, int64_t found) {
  if (ShapedType::isDynamic(expected) || ShapedType::isDynamic(found) ||
      expected == found)
    return success();
  return op->emitOpError() << "expects " << what << " to be " << expected
                           << ", found " << found;
}

static int64_t dim(Value value, unsigned index) {
  return cast<ShapedType>(value.getType()).getDimSize(index);
}
static int64_t lastDim(Value value) {
  auto type = cast<ShapedType>(value.getType());
  return type.getDimSize(type.getRank() - 1);
}

/// Feature dimensions (all but batch, sequence and cache length) are static
/// and positive: the lowering sizes loops, constants and tiles by them.
static LogicalResult expectFeatureDims(Operation *op, Value value,
                                       StringRef name,
                                       ArrayRef<unsigned> dims) {
  for (unsigned index : dims) {
    int64_t size = dim(value, index);
    if (ShapedType::isDynamic(size))
      return op->emitOpError() << "expects a static " << name << " dimension "
                               << index << ", found ?";
    if (size <= 0)
      return op->emitOpError() << "expects a positive " << name
                               << " dimension " << index << ", found " << size;
  }
  return success();
}

/// Checks that `result` keeps the leading [batch, seq] dimensions of `input`.
static LogicalResult expectSameBatchSeq(Operation *op, Value input,
                                        Value result, StringRef inputName) {
  for (unsigned i = 0; i < 2; ++i)
    if (failed(expectDim(op,
                         Twine("result dimension ") + Twine(i) + " (from " +
                             inputName + ")",
                         dim(input, i), dim(result, i))))
      return failure();
  return success();
}

/// Every projection (falcon.linear, falcon.lm_head): input [B, S, in],
/// weight [out, in], optional bias [out],
/// result [B, S, out].
static LogicalResult verifyProjection(ProjectionOpInterface projection) {
  Operation *op = projection.getOperation();
  Value input = projection.getInput(), weight = projection.getWeightMutable().get();
  Value bias = projection.getProjectionBias(), result = op->getResult(0);
  constexpr unsigned inDim = 1, outDim = 0;
  if (failed(expectFeatureDims(op, weight, "weight", {0, 1})))
    return failure();
  if (cast<ShapedType>(result.getType()).getElementType() !=
      cast<ShapedType>(input.getType()).getElementType())
    return op->emitOpError() << "expects the result element type to match the "
                                "input's, found "
                             << cast<ShapedType>(result.getType()).getElementType()
                             << " and "
                             << cast<ShapedType>(input.getType()).getElementType();
  if (failed(expectDim(op,
                       Twine("weight in_features (dimension ") + Twine(inDim) + ")",
                       lastDim(input), dim(weight, inDim))) ||
      failed(expectDim(op, "result features", dim(weight, outDim),
                       lastDim(result))) ||
      failed(expectSameBatchSeq(op, input, result, "input")))
    return failure();
  if (bias)
    return expectDim(op, "bias size", dim(weight, outDim), dim(bias, 0));
  return success();
}

LogicalResult ParamOp::verify() {
  StringRef name = getName();
  if (name.empty())
    return emitOpError("expects a non-empty parameter name");
  size_t placeholders = name.count("{}");
  if (getLayer() && placeholders != 1)
    return emitOpError() << "expects a name with exactly one '{}' layer "
                            "placeholder when a layer index is given, found \""
                         << name << "\"";
  if (WeightEncodingAttr encoding = getEncodingAttr()) {
    int64_t rank = cast<ShapedType>(getType()).getRank();
    // An input order is a vector of the (permuted) weight's inputs.
    if (encoding.getPart() == QuantizedPart::InputOrder)
      rank = 2;
    if (!encoding.getPermutation().empty() &&
        int64_t(encoding.getPermutation().size()) != rank)
      return emitOpError() << "expects an encoding permutation of the result's rank (" << rank
                           << "), found " << encoding.getPermutation().size() << " dimensions";
  }
  if (!getLayer() && placeholders != 0)
    return emitOpError() << "expects a layer index operand for the templated "
                            "name \""
                         << name << "\"";
  return success();
}

LogicalResult EmbeddingOp::verify() {
  if (failed(expectFeatureDims(*this, getTable(), "table", {0, 1})))
    return failure();
  if (failed(expectSameBatchSeq(*this, getIds(), getResult(), "ids")))
    return failure();
  if (int64_t offset = getVocabOffsetAttr().getInt(); offset < 0)
    return emitOpError() << "expects a non-negative vocab_offset, found " << offset;
  return expectDim(*this, "result features (the table's dimension 1)",
                   dim(getTable(), 1), lastDim(getResult()));
}

LogicalResult GatherPositionsOp::verify() {
  if (failed(expectSameBatchSeq(*this, getPositions(), getResult(), "positions")) ||
      failed(expectDim(*this, "result dimension 0 (from input)", dim(getInput(), 0),
                       dim(getResult(), 0))) ||
      failed(expectDim(*this, "result features (from input)", lastDim(getInput()),
                       lastDim(getResult()))))
    return failure();
  if (cast<ShapedType>(getInput().getType()).getElementType() !=
      cast<ShapedType>(getResult().getType()).getElementType())
    return emitOpError() << "expects the result's element type to be the input's";
  return success();
}

LogicalResult AllReduceOp::verify() {
  if (int64_t groupSize = getGroupSizeAttr().getInt(); groupSize < 1)
    return emitOpError() << "expects a positive group_size, found " << groupSize;
  int64_t features = lastDim(getInput());
  for (Value bias : getBiases())
    if (failed(expectDim(*this, "bias size", features, dim(bias, 0))))
      return failure();
  return success();
}

LogicalResult LayerNormOp::verify() {
  if (getEpsilon().convertToDouble() <= 0.0)
    return emitOpError() << "expects a positive epsilon, found "
                         << getEpsilon().convertToDouble();
  int64_t features = lastDim(getInput());
  if (failed(expectFeatureDims(*this, getInput(), "input", {2})) ||
      failed(expectDim(*this, "weight size", features, dim(getWeight(), 0))))
    return failure();
  return expectDim(*this, "bias size", features, dim(getBias(), 0));
}

Value LinearOp::getProjectionBias() { return getBias(); }

LogicalResult LinearOp::verify() {
  return verifyProjection(cast<ProjectionOpInterface>(getOperation()));
}

LogicalResult LMHeadOp::verify() {
  return verifyProjection(cast<ProjectionOpInterface>(getOperation()));
}

LogicalResult QKVSplitOp::verify() {
  int64_t numHeads = getNumHeads(), numKVHeads = getNumKvHeads();
  if (numHeads <= 0 || numKVHeads <= 0)
    return emitOpError() << "expects positive num_heads and num_kv_heads, "
                            "found "
                         << numHeads << " and " << numKVHeads;
  QKVLayout layout = getLayout();
  StringRef layoutName = stringifyQKVLayout(layout);
  if (layout == QKVLayout::PerHead && numKVHeads != numHeads)
    return emitOpError() << "expects num_kv_heads (" << numKVHeads
                         << ") to equal num_heads (" << numHeads
                         << ") for the per_head layout";
  if (layout == QKVLayout::MultiQuery && numKVHeads != 1)
    return emitOpError() << "expects num_kv_heads to be 1 for the multi_query "
                            "layout, found "
                         << numKVHeads;
  if (numHeads % numKVHeads != 0)
    return emitOpError() << "expects num_heads (" << numHeads
                         << ") to be a multiple of num_kv_heads (" << numKVHeads
                         << ")";
  int64_t headDim = lastDim(getQuery());
  if (ShapedType::isDynamic(headDim))
    return emitOpError("expects a static head dimension");
  if (failed(expectFeatureDims(*this, getFused(), "fused", {2})) ||
      failed(expectFeatureDims(*this, getQuery(), "query", {3})))
    return failure();
  if (failed(expectDim(*this, "query heads (dimension 2)", numHeads,
                       dim(getQuery(), 2))) ||
      failed(expectDim(*this, "key heads (dimension 2)", numKVHeads,
                       dim(getKey(), 2))) ||
      failed(expectDim(*this, "value heads (dimension 2)", numKVHeads,
                       dim(getValue(), 2))) ||
      failed(expectDim(*this, "key head size", headDim, lastDim(getKey()))) ||
      failed(expectDim(*this, "value head size", headDim,
                       lastDim(getValue()))))
    return failure();
  for (Value result : getResults())
    if (failed(expectSameBatchSeq(*this, getFused(), result, "fused")))
      return failure();
  int64_t width = getFusedQKVWidth(layout, numHeads, numKVHeads, headDim);
  return expectDim(*this,
                   Twine("fused width for the ") + layoutName + " layout with " +
                       Twine(numHeads) + " heads, " + Twine(numKVHeads) +
                       " kv heads and head size " + Twine(headDim),
                   width, lastDim(getFused()));
}

LogicalResult RotaryOp::verify() {
  if (failed(expectFeatureDims(*this, getInput(), "input", {2, 3})))
    return failure();
  int64_t headDim = lastDim(getInput());
  if (headDim % 2 != 0)
    return emitOpError() << "expects an even head size, found " << headDim;
  if (getTheta().convertToDouble() <= 0.0)
    return emitOpError() << "expects a positive theta, found "
                         << getTheta().convertToDouble();
  if (getFactor().convertToDouble() <= 0.0)
    return emitOpError() << "expects a positive scaling factor, found "
                         << getFactor().convertToDouble();
  return expectSameBatchSeq(*this, getPositions(), getInput(), "positions");
}

LogicalResult AlibiOp::verify() {
  if (getNumHeads() <= 0)
    return emitOpError() << "expects a positive num_heads, found "
                         << getNumHeads();
  int64_t rows = dim(getResult(), 0);
  int64_t firstHead = getFirstHeadAttr().getInt(), numHeads = getNumHeadsAttr().getInt();
  if (firstHead < 0 || ShapedType::isDynamic(rows) || firstHead + rows > numHeads)
    return emitOpError() << "expects heads [first_head, first_head + rows) "
                            "within num_heads ("
                         << numHeads << "), found first_head " << firstHead << " and "
                         << rows << " rows";
  return success();
}

LogicalResult AttentionOp::verify() {
  int64_t numHeads = dim(getQuery(), 2), numKVHeads = dim(getKey(), 2);
  int64_t headDim = lastDim(getQuery());
  if (ShapedType::isDynamic(numHeads) || ShapedType::isDynamic(numKVHeads) ||
      ShapedType::isDynamic(headDim))
    return emitOpError("expects static head counts and head size");
  if (failed(expectFeatureDims(*this, getQuery(), "query", {2, 3})) ||
      failed(expectFeatureDims(*this, getKey(), "key", {2, 3})))
    return failure();
  if (numHeads % numKVHeads != 0)
    return emitOpError() << "expects num_heads (" << numHeads
                         << ") to be a multiple of num_kv_heads (" << numKVHeads
                         << ")";
  if (failed(expectDim(*this, "value heads", numKVHeads, dim(getValue(), 2))) ||
      failed(expectDim(*this, "key cache heads (dimension 1)", numKVHeads,
                       dim(getKeyCache(), 1))) ||
      failed(expectDim(*this, "value cache heads (dimension 1)", numKVHeads,
                       dim(getValueCache(), 1))))
    return failure();
  for (auto [name, value] :
       {std::pair<StringRef, Value>{"key", getKey()},
        {"value", getValue()},
        {"key cache", getKeyCache()},
        {"value cache", getValueCache()}})
    if (failed(expectDim(*this, Twine(name) + " head size", headDim,
                         lastDim(value))))
      return failure();
  for (Value operand : {getKey(), getValue()})
    if (failed(expectSameBatchSeq(*this, getQuery(), operand, "query")))
      return failure();
  if (failed(expectDim(*this, "past_lens size (the batch)", dim(getQuery(), 0),
                       dim(getPastLens(), 0))))
    return failure();
  if (failed(expectDim(*this, "result features (num_heads * head size)",
                       numHeads * headDim, lastDim(getResult()))) ||
      failed(expectSameBatchSeq(*this, getQuery(), getResult(), "query")))
    return failure();
  if (Value bias = getBias())
    return expectDim(*this, "bias dimension 0 (num_heads)", numHeads,
                     dim(bias, 0));
  return success();
}

#include "Falcon/FalconInterfaces.cpp.inc"

#define GET_OP_CLASSES
#include "Falcon/FalconOps.cpp.inc"

//===----------------------------------------------------------------------===//
// PrecisionOpInterface: the ops whose sums accumulate in f32
//===----------------------------------------------------------------------===//

Type LayerNormOp::getAccumulateElementType() { return Float32Type::get(getContext()); }
Type LinearOp::getAccumulateElementType() { return Float32Type::get(getContext()); }
Type AddOp::getAccumulateElementType() { return Float32Type::get(getContext()); }
Type LMHeadOp::getAccumulateElementType() { return Float32Type::get(getContext()); }
Type AttentionOp::getAccumulateElementType() { return Float32Type::get(getContext()); }
