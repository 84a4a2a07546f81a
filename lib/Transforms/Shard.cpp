//===- Shard.cpp - one rank's program of a tensor x pipeline plan ---------===//
//
// falcon-shard rewrites the imported module (one @decoder_layer, @forward
// looping over the layers) into the program of one rank. Projections are
// recognised by their place in the layer (the one feeding falcon.qkv_split,
// the one reading the attention's context, the two around falcon.gelu), not
// by weight names. Weights are sliced through their params' typed
// #falcon.weight_encoding, so the artifact writer packs each rank's own
// bytes with the weight-transform library.
//
//===----------------------------------------------------------------------===//

#include "falcon/Transforms/ParallelPlan.h"
#include "falcon/Transforms/Passes.h"

#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/IR/SymbolTable.h"

#define DEBUG_TYPE "falcon-shard"

namespace mlir::falcon {
#define GEN_PASS_DEF_FALCONSHARD
#include "falcon/Transforms/Passes.h.inc"
} // namespace mlir::falcon

using namespace mlir;
using namespace mlir::falcon;

namespace {

constexpr llvm::StringLiteral kLayerFunction = "decoder_layer";
constexpr llvm::StringLiteral kForwardFunction = "forward";

RankedTensorType withDim(Type type, int64_t dim, int64_t size) {
  auto tensor = cast<RankedTensorType>(type);
  SmallVector<int64_t> shape(tensor.getShape());
  shape[dim] = size;
  return RankedTensorType::get(shape, tensor.getElementType());
}

/// A weight's new encoding and type.
struct WeightShard {
  WeightEncodingAttr encoding;
  RankedTensorType type;
};

WeightShard sliceWeight(Value weight, int64_t dim, int64_t begin, int64_t size) {
  MLIRContext *context = weight.getContext();
  auto encoding = WeightEncodingAttr::get(context, {dim, begin, size}, {}, {},
                                          Quantization::None, 0, 1, true,
                                          QuantizedPart::Codes);
  return {encoding, withDim(weight.getType(), dim, size)};
}

WeightShard gatherWeight(Value weight, int64_t dim, ArrayRef<int64_t> rows) {
  MLIRContext *context = weight.getContext();
  SmallVector<int64_t> gather = {dim};
  gather.append(rows.begin(), rows.end());
  auto encoding =
      WeightEncodingAttr::get(context, {}, gather, {}, Quantization::None, 0, 1, true,
                                          QuantizedPart::Codes);
  return {encoding, withDim(weight.getType(), dim, int64_t(rows.size()))};
}

/// Gives a weight parameter its shard.
void applyShard(ParamOp param, const WeightShard &shard) {
  param.setEncodingAttr(shard.encoding);
  param.getResult().setType(shard.type);
}

/// The op of type OpTy among `value`'s users, if it has exactly one user.
template <typename OpTy>
OpTy getOnlyUser(Value value) {
  if (!value.hasOneUse())
    return nullptr;
  return dyn_cast<OpTy>(*value.getUsers().begin());
}

struct FalconShardPass : public mlir::falcon::impl::FalconShardBase<FalconShardPass> {
  using FalconShardBase::FalconShardBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto config = module->getAttrOfType<ModelConfigAttr>(FalconDialect::kModelConfigAttrName);
    if (!config) {
      module.emitError("falcon-shard: expects a '#falcon.model_config' on the module");
      return signalPassFailure();
    }
    llvm::Expected<ParallelPlan> computed =
        computeParallelPlan(PlanModel::fromConfig(config), tp, pp);
    if (!computed) {
      module.emitError() << "falcon-shard: " << llvm::toString(computed.takeError());
      return signalPassFailure();
    }
    plan = std::move(*computed);
    if (rank < 0 || rank >= plan.getWorldSize()) {
      module.emitError() << "falcon-shard: rank " << int64_t(rank) << " is outside the plan's "
                         << plan.getWorldSize() << " ranks (tp " << int64_t(tp) << " x pp "
                         << int64_t(pp) << ")";
      return signalPassFailure();
    }
    if (plan.getWorldSize() == 1)
      return;
    slot = plan.slotOf(rank);
    stage = plan.stageOf(rank);
    headDim = config.getHeadDim();
    numLayers = config.getNumHiddenLayers();
    SymbolTable symbols(module);
    auto layer = symbols.lookup<func::FuncOp>(kLayerFunction);
    auto forward = symbols.lookup<func::FuncOp>(kForwardFunction);
    if (!layer || !forward) {
      module.emitError("falcon-shard: expects the importer's @decoder_layer and @forward");
      return signalPassFailure();
    }
    if (tp > 1 && failed(shardLayer(layer)))
      return signalPassFailure();
    // The plan's device grid (upstream's shard dialect): the all-reduces
    // lower to shard.all_reduce over its tensor-parallel axis.
    if (!symbols.lookup(FalconDialect::kPlanGridName)) {
      OpBuilder builder = OpBuilder::atBlockBegin(module.getBody());
      symbols.insert(shard::GridOp::create(builder, module.getLoc(), FalconDialect::kPlanGridName,
                                           ArrayRef<int64_t>{pp, tp}));
    }
    if (failed(shardForward(forward, layer)))
      return signalPassFailure();
    module->setAttr(FalconDialect::kRankPlanAttrName,
                    RankPlanAttr::get(&getContext(), tp, pp, rank, stage.firstLayer,
                                      stage.numLayers, slot.firstHead, slot.numHeads,
                                      slot.firstKVHead, slot.numKVHeads, slot.kvReplicated,
                                      slot.ffnOffset, slot.ffnSize, slot.vocabOffset,
                                      slot.vocabSize));
  }

  /// Records the new encoding of a layer function's weight argument.
  LogicalResult shardArgument(Value weight, WeightShard shard) {
    auto argument = dyn_cast<BlockArgument>(weight);
    if (!argument)
      return emitError(weight.getLoc(), "falcon-shard: expects layer weights to be "
                                        "arguments of @decoder_layer");
    argumentShards[argument.getArgNumber()] = shard;
    argument.setType(shard.type);
    return success();
  }

  /// A projection's input columns sliced (row-parallel): its bias moves to
  /// the all-reduce. Returns the new projection.
  FailureOr<LinearOp> makeRowParallel(LinearOp linear, int64_t begin, int64_t size,
                                      SmallVectorImpl<Value> &biases) {
    if (failed(shardArgument(linear.getWeight(),
                             sliceWeight(linear.getWeight(), 1, begin, size))))
      return failure();
    if (Value bias = linear.getBias())
      biases.push_back(bias);
    OpBuilder builder(linear);
    auto rowParallel = LinearOp::create(builder, linear.getLoc(), linear.getType(),
                                        linear.getInput(), linear.getWeight(), Value());
    linear.replaceAllUsesWith(rowParallel.getResult());
    linear.erase();
    return rowParallel;
  }

  LogicalResult shardLayer(func::FuncOp layer) {
    QKVSplitOp split;
    AttentionOp attention;
    GeluOp gelu;
    int found = 0;
    layer.walk([&](Operation *op) {
      if (auto op2 = dyn_cast<QKVSplitOp>(op))
        split = op2, ++found;
      else if (auto op2 = dyn_cast<AttentionOp>(op))
        attention = op2, ++found;
      else if (auto op2 = dyn_cast<GeluOp>(op))
        gelu = op2, ++found;
    });
    if (found != 3 || !split || !attention || !gelu)
      return layer.emitError("falcon-shard: expects one qkv_split, one attention and one "
                             "gelu in @decoder_layer");
    auto qkv = split.getFused().getDefiningOp<LinearOp>();
    auto dense = getOnlyUser<LinearOp>(attention.getResult());
    auto up = gelu.getInput().getDefiningOp<LinearOp>();
    auto down = getOnlyUser<LinearOp>(gelu.getResult());
    if (!qkv || !dense || !up || !down)
      return layer.emitError("falcon-shard: expects the projections around qkv_split, "
                             "attention and gelu to be falcon.linear");

    // Column-parallel: the fused QKV rows of the slot's heads.
    int64_t rows = int64_t(slot.qkvRows.size());
    if (failed(shardArgument(qkv.getWeight(), gatherWeight(qkv.getWeight(), 0, slot.qkvRows))))
      return failure();
    if (Value bias = qkv.getBias())
      if (failed(shardArgument(bias, gatherWeight(bias, 0, slot.qkvRows))))
        return failure();
    qkv.getResult().setType(withDim(qkv.getType(), 2, rows));
    split.setNumHeads(slot.numHeads);
    split.setNumKvHeads(slot.numKVHeads);
    split.getQuery().setType(withDim(split.getQuery().getType(), 2, slot.numHeads));
    split.getKey().setType(withDim(split.getKey().getType(), 2, slot.numKVHeads));
    split.getValue().setType(withDim(split.getValue().getType(), 2, slot.numKVHeads));
    for (Value heads : {split.getQuery(), split.getKey()})
      for (Operation *user : heads.getUsers())
        if (auto rotary = dyn_cast<RotaryOp>(user))
          rotary.getResult().setType(cast<RankedTensorType>(heads.getType()));

    // Attention over the slot's heads and its KV heads' cache.
    for (Value cache : {attention.getKeyCache(), attention.getValueCache()}) {
      if (!isa<BlockArgument>(cache))
        return attention.emitOpError("falcon-shard: expects the caches to be arguments");
      cache.setType(withDim(cache.getType(), 1, slot.numKVHeads));
    }
    attention.getNewKeyCache().setType(attention.getKeyCache().getType());
    attention.getNewValueCache().setType(attention.getValueCache().getType());
    attention.getResult().setType(
        withDim(attention.getResult().getType(), 2, slot.numHeads * headDim));
    if (Value bias = attention.getBias()) {
      if (!isa<BlockArgument>(bias))
        return attention.emitOpError("falcon-shard: expects the ALiBi bias to be an argument");
      bias.setType(withDim(bias.getType(), 0, slot.numHeads));
    }

    // MLP: up column-parallel, down row-parallel.
    if (failed(shardArgument(up.getWeight(),
                             sliceWeight(up.getWeight(), 0, slot.ffnOffset, slot.ffnSize))))
      return failure();
    if (Value bias = up.getBias())
      if (failed(shardArgument(bias, sliceWeight(bias, 0, slot.ffnOffset, slot.ffnSize))))
        return failure();
    up.getResult().setType(withDim(up.getType(), 2, slot.ffnSize));
    gelu.getResult().setType(up.getType());

    SmallVector<Value> denseBiases, downBiases;
    FailureOr<LinearOp> denseRow =
        makeRowParallel(dense, slot.firstHead * headDim, slot.numHeads * headDim, denseBiases);
    if (failed(denseRow))
      return failure();
    FailureOr<LinearOp> downRow =
        makeRowParallel(down, slot.ffnOffset, slot.ffnSize, downBiases);
    if (failed(downRow))
      return failure();

    // One all-reduce where the two partials meet (a parallel block), else
    // one after each.
    auto reduceAfter = [&](Value partial, ArrayRef<Value> biases) {
      OpBuilder builder(partial.getContext());
      builder.setInsertionPointAfterValue(partial);
      auto reduce = AllReduceOp::create(builder, partial.getLoc(), partial.getType(),
                                        partial, biases, builder.getI64IntegerAttr(tp));
      partial.replaceAllUsesExcept(reduce.getResult(), reduce);
    };
    Value attentionOut = denseRow->getResult(), mlpOut = downRow->getResult();
    auto meet = getOnlyUser<AddOp>(mlpOut);
    if (meet && getOnlyUser<AddOp>(attentionOut) == meet) {
      SmallVector<Value> biases(downBiases);
      biases.append(denseBiases);
      reduceAfter(meet.getResult(), biases);
    } else {
      reduceAfter(attentionOut, denseBiases);
      reduceAfter(mlpOut, downBiases);
    }

    // The signature follows the new argument and result types.
    auto ret = cast<func::ReturnOp>(layer.getBody().front().getTerminator());
    layer.setType(FunctionType::get(&getContext(),
                                    layer.getBody().front().getArgumentTypes(),
                                    ret.getOperandTypes()));
    return success();
  }

  LogicalResult shardForward(func::FuncOp forward, func::FuncOp layer) {
    MLIRContext *context = &getContext();
    Block &body = forward.getBody().front();
    func::CallOp call;
    scf::ForOp loop;
    EmbeddingOp embedding;
    LMHeadOp head;
    AlibiOp alibi;
    forward.walk([&](Operation *op) {
      if (auto op2 = dyn_cast<func::CallOp>(op); op2 && op2.getCallee() == kLayerFunction)
        call = op2;
      else if (auto op2 = dyn_cast<scf::ForOp>(op))
        loop = op2;
      else if (auto op2 = dyn_cast<EmbeddingOp>(op))
        embedding = op2;
      else if (auto op2 = dyn_cast<LMHeadOp>(op))
        head = op2;
      else if (auto op2 = dyn_cast<AlibiOp>(op))
        alibi = op2;
    });
    if (!call || !loop || !embedding || !head || call->getParentOp() != loop)
      return forward.emitError("falcon-shard: expects @forward to embed, loop over "
                               "@decoder_layer and end in falcon.lm_head");

    // The layer's sharded weights: their params get the encoding.
    for (auto [index, shard] : argumentShards) {
      auto param = call.getOperand(index).getDefiningOp<ParamOp>();
      if (!param)
        return call.emitOpError("falcon-shard: expects a falcon.param for argument ")
               << index;
      applyShard(param, shard);
    }

    // The KV caches: the stage's layers, the slot's KV heads.
    auto cacheType = [&](Type type) {
      return withDim(withDim(type, 0, stage.numLayers), 2, slot.numKVHeads);
    };
    for (BlockArgument argument : body.getArguments())
      if (auto type = dyn_cast<RankedTensorType>(argument.getType()); type && type.getRank() == 5)
        argument.setType(cacheType(type));
    for (auto [init, iterArg, result] :
         llvm::zip(loop.getInitArgs(), loop.getRegionIterArgs(), loop.getResults())) {
      iterArg.setType(init.getType());
      result.setType(init.getType());
    }
    loop.walk([&](Operation *op) {
      auto fixSizes = [&](auto sliceOp) {
        SmallVector<int64_t> sizes(sliceOp.getStaticSizes());
        if (sizes.size() == 5 && !ShapedType::isDynamic(sizes[2]))
          sizes[2] = slot.numKVHeads;
        sliceOp.setStaticSizes(sizes);
      };
      if (auto extract = dyn_cast<tensor::ExtractSliceOp>(op)) {
        fixSizes(extract);
        extract.getResult().setType(
            withDim(extract.getResult().getType(), 1, slot.numKVHeads));
      } else if (auto insert = dyn_cast<tensor::InsertSliceOp>(op)) {
        fixSizes(insert);
        insert.getResult().setType(insert.getDest().getType());
      }
    });
    // ALiBi slopes of the slot's heads.
    if (alibi) {
      alibi.setFirstHead(slot.firstHead);
      alibi.getResult().setType(withDim(alibi.getType(), 0, slot.numHeads));
    }
    for (auto [operand, type] : llvm::zip(call.getOperands(), layer.getArgumentTypes()))
      if (operand.getType() != type)
        return call.emitOpError("falcon-shard: an operand's type does not follow the "
                                "sharded layer: ")
               << operand.getType() << " vs " << type;
    for (auto [result, type] : llvm::zip(call.getResults(), layer.getResultTypes()))
      result.setType(type);

    // The stage's layers.
    OpBuilder builder(loop);
    loop.getUpperBoundMutable().assign(
        arith::ConstantIndexOp::create(builder, loop.getLoc(), stage.numLayers));

    // The first stage embeds (vocab-parallel), the others receive hidden
    // states.
    Value ids = body.getArgument(0);
    auto embeddingTable = embedding.getTable().getDefiningOp<ParamOp>();
    auto headWeight = head.getWeight().getDefiningOp<ParamOp>();
    if (!embeddingTable || !headWeight)
      return forward.emitError("falcon-shard: expects the embedding table and LM head "
                               "weight to be falcon.param");
    auto vocabShard = [&](ParamOp param) {
      applyShard(param, sliceWeight(param, 0, slot.vocabOffset, slot.vocabSize));
    };
    if (stage.firstLayer == 0) {
      if (tp > 1) {
        vocabShard(embeddingTable);
        embedding.setVocabOffset(slot.vocabOffset);
        builder.setInsertionPointAfter(embedding);
        auto reduce = AllReduceOp::create(builder, embedding.getLoc(), embedding.getType(),
                                          embedding.getResult(), ValueRange{},
                                          builder.getI64IntegerAttr(tp));
        embedding.getResult().replaceAllUsesExcept(reduce.getResult(), reduce);
      }
    } else {
      auto hiddenType = cast<RankedTensorType>(embedding.getType());
      if (failed(forward.insertArgument(
              0, hiddenType,
              DictionaryAttr::get(context,
                                  {NamedAttribute(FalconDialect::kArgNameAttrName,
                                                  StringAttr::get(context, "hidden_in"))}),
              forward.getLoc())))
        return forward.emitError("cannot add the hidden-state argument of a later stage");
      Value hidden = body.getArgument(0);
      embedding.getResult().replaceAllUsesWith(hidden);
      embedding.erase();
      // The token ids' only other reader is the sequence length (dim 1).
      ids = body.getArgument(1);
      for (OpOperand &use : llvm::make_early_inc_range(ids.getUses())) {
        if (!isa<tensor::DimOp>(use.getOwner()))
          return use.getOwner()->emitOpError(
              "falcon-shard: a later stage has no token ids to read");
        use.set(hidden);
      }
      if (failed(forward.eraseArgument(1)))
        return failure();
    }

    // The last stage's LM head computes its slice of the vocabulary; the
    // others hand their hidden states on.
    auto ret = cast<func::ReturnOp>(body.getTerminator());
    if (stage.firstLayer + stage.numLayers == numLayers) {
      if (tp > 1) {
        if (headWeight != embeddingTable || stage.firstLayer != 0)
          vocabShard(headWeight);
        head.getResult().setType(withDim(head.getType(), 2, slot.vocabSize));
      }
    } else {
      ret->setOperand(0, loop.getResult(0));
      // The head and what only it read (the final LayerNorm, the gather of
      // the logit positions).
      Operation *unused = head;
      while (unused && unused->use_empty()) {
        Operation *input = unused->getOperand(0).getDefiningOp();
        unused->erase();
        unused = input;
      }
    }
    // Parameters nothing reads any more (the table of a later stage, the
    // final LayerNorm of an earlier one).
    forward.walk([](ParamOp param) {
      if (param.use_empty())
        param.erase();
    });
    forward.setType(FunctionType::get(context, body.getArgumentTypes(), ret.getOperandTypes()));
    return success();
  }

  ParallelPlan plan;
  SlotShard slot;
  StageShard stage;
  int64_t headDim = 0, numLayers = 0;
  llvm::DenseMap<unsigned, WeightShard> argumentShards;
};

} // namespace
