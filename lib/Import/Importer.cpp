//===- Importer.cpp - Hugging Face checkpoint to falcon IR ----------------===//
//
// Weights stay on disk: the IR refers to them by name through falcon.param.
// All decoder layers of a Falcon model have one shape, so the module holds one
// layer function and a loop over the layers; its size does not depend on the
// layer count.
//
//===----------------------------------------------------------------------===//

#include "falcon/Import/Importer.h"
#include "falcon/Import/QuantizedCheckpoint.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"

using namespace mlir;
using namespace mlir::falcon;
using llvm::StringRef;

static std::string formatShape(llvm::ArrayRef<int64_t> shape) {
  return "[" + llvm::join(llvm::map_range(shape, [](int64_t size) {
                            return std::to_string(size);
                          }),
                          ", ") +
         "]";
}

/// Checks that every tensor the config implies is present with its shape and
/// a float dtype the compiler reads.
static llvm::Error checkTensors(const Checkpoint &checkpoint) {
  const FalconConfig &config = checkpoint.config;
  const TensorIndex &index = *checkpoint.tensors;
  for (const WeightSpec &spec : getWeightSpecs(config)) {
    int64_t copies = spec.perLayer ? config.numLayers : 1;
    for (int64_t layer = 0; layer < copies; ++layer) {
      std::string name = spec.perLayer ? spec.nameForLayer(layer) : spec.name;
      if (isQuantizedCheckpointWeight(config, spec)) {
        if (llvm::Error error = checkQuantizedCheckpointWeight(
                index, *config.quantization, name, spec.shape[0], spec.shape[1]))
          return error;
        continue;
      }
      auto found = index.tensors.find(name);
      if (found == index.tensors.end())
        return llvm::createStringError(llvm::formatv(
            "{0}: checkpoint is missing tensor '{1}' (expected shape {2})",
            index.source, name, formatShape(spec.shape)));
      const SafetensorsTensor &tensor = found->second;
      if (!llvm::equal(tensor.shape, spec.shape))
        return llvm::createStringError(llvm::formatv(
            "{0}: tensor '{1}' has shape {2}, expected {3} from {4}",
            tensor.file, name, formatShape(tensor.shape),
            formatShape(spec.shape), checkpoint.configPath));
      if (tensor.dtype != SafetensorsDType::F32 &&
          tensor.dtype != SafetensorsDType::F16 &&
          tensor.dtype != SafetensorsDType::BF16)
        return llvm::createStringError(llvm::formatv(
            "{0}: tensor '{1}' has dtype {2}, expected F32, F16 or BF16",
            tensor.file, name, stringifyDType(tensor.dtype)));
      // All layers of one weight share the layer function's argument type.
      if (spec.perLayer && layer > 0) {
        const SafetensorsTensor &first =
            index.tensors.find(spec.nameForLayer(0))->second;
        if (first.dtype != tensor.dtype)
          return llvm::createStringError(llvm::formatv(
              "{0}: tensor '{1}' has dtype {2} but '{3}' has {4}; all layers "
              "must store a weight in one dtype",
              tensor.file, name, stringifyDType(tensor.dtype), first.name,
              stringifyDType(first.dtype)));
      }
    }
  }
  return llvm::Error::success();
}

llvm::Expected<Checkpoint> mlir::falcon::openCheckpoint(StringRef path) {
  Checkpoint checkpoint;
  llvm::SmallString<256> directory(path);
  bool isDirectory = llvm::sys::fs::is_directory(path);
  if (isDirectory) {
    checkpoint.configPath = (directory + "/config.json").str();
  } else {
    if (!llvm::sys::fs::exists(path))
      return llvm::createStringError(path + ": no such file or directory");
    checkpoint.configPath = path.str();
    llvm::sys::path::remove_filename(directory);
    if (directory.empty())
      directory = ".";
  }
  llvm::SmallString<256> absolute(directory);
  llvm::sys::fs::make_absolute(absolute);
  llvm::sys::path::remove_dots(absolute, /*remove_dot_dot=*/true);
  checkpoint.name = llvm::sys::path::filename(absolute).str();

  llvm::Expected<FalconConfig> config = loadFalconConfig(checkpoint.configPath);
  if (!config)
    return config.takeError();
  checkpoint.config = *config;

  // A lone config.json carries no weights; a directory may hold them.
  if (!isDirectory)
    return checkpoint;
  llvm::SmallString<256> indexPath(directory), singlePath(directory);
  llvm::sys::path::append(indexPath, "model.safetensors.index.json");
  llvm::sys::path::append(singlePath, "model.safetensors");
  llvm::Expected<TensorIndex> tensors = llvm::createStringError("unreachable");
  if (llvm::sys::fs::exists(indexPath)) {
    llvm::consumeError(tensors.takeError());
    tensors = readShardedCheckpoint(indexPath);
  } else if (llvm::sys::fs::exists(singlePath)) {
    llvm::consumeError(tensors.takeError());
    tensors = readSingleFileCheckpoint(singlePath);
  } else {
    llvm::consumeError(tensors.takeError());
    return checkpoint;
  }
  if (!tensors)
    return tensors.takeError();
  checkpoint.tensors = std::move(*tensors);
  if (llvm::Error error = checkTensors(checkpoint))
    return std::move(error);
  return checkpoint;
}

static Type getFloatType(MLIRContext *context, StringRef torchDtype) {
  if (torchDtype == "float32")
    return Float32Type::get(context);
  if (torchDtype == "float16")
    return Float16Type::get(context);
  return BFloat16Type::get(context);
}

Type mlir::falcon::getWeightElementType(MLIRContext *context,
                                        const Checkpoint &checkpoint,
                                        const WeightSpec &spec) {
  if (!checkpoint.tensors)
    return getFloatType(context, checkpoint.config.torchDtype);
  // A GPTQ/AWQ projection: f16, the type of its scales (what it stands for
  // before falcon-quantize-weights gives it the stored parts).
  if (isQuantizedCheckpointWeight(checkpoint.config, spec))
    return Float16Type::get(context);
  std::string name = spec.perLayer ? spec.nameForLayer(0) : spec.name;
  switch (checkpoint.tensors->tensors.find(name)->second.dtype) {
  case SafetensorsDType::F32:
    return Float32Type::get(context);
  case SafetensorsDType::F16:
    return Float16Type::get(context);
  default:
    return BFloat16Type::get(context);
  }
}

namespace {
/// Builds the module of one checkpoint.
class ModuleBuilder {
public:
  ModuleBuilder(MLIRContext *context, const Checkpoint &checkpoint, FloatType kvCacheType)
      : context(context), checkpoint(checkpoint), config(checkpoint.config),
        builder(context), loc(FileLineColLoc::get(context, checkpoint.configPath, 0, 0)),
        specs(getWeightSpecs(config)) {
    f32 = builder.getF32Type();
    int64_t dyn = ShapedType::kDynamic;
    tokenType = RankedTensorType::get({dyn, dyn}, builder.getI64Type());
    pastLensType = RankedTensorType::get({dyn}, builder.getI64Type());
    cacheType = RankedTensorType::get({dyn, config.kvHeads(), dyn, config.headDim()},
                                      kvCacheType ? Type(kvCacheType) : f32);
    for (const WeightSpec &spec : specs)
      weightTypes.push_back(RankedTensorType::get(
          spec.shape, getWeightElementType(context, checkpoint, spec)));
  }

  OwningOpRef<ModuleOp> build() {
    OwningOpRef<ModuleOp> module = ModuleOp::create(loc, checkpoint.name);
    module->getOperation()->setAttr(FalconDialect::kModelConfigAttrName, configAttr());
    builder.setInsertionPointToEnd(module->getBody());
    buildLayerFunction();
    builder.setInsertionPointToEnd(module->getBody());
    buildForwardFunction();
    return module;
  }

private:
  RankedTensorType activationType(int64_t features) {
    int64_t dyn = ShapedType::kDynamic;
    return RankedTensorType::get({dyn, dyn, features}, f32);
  }
  RankedTensorType headsType(int64_t heads) {
    int64_t dyn = ShapedType::kDynamic;
    return RankedTensorType::get({dyn, dyn, heads, config.headDim()}, f32);
  }
  RankedTensorType alibiType() {
    return RankedTensorType::get({config.numHeads, ShapedType::kDynamic}, f32);
  }

  ModelConfigAttr configAttr() {
    return ModelConfigAttr::get(
        context, config.vocabSize, config.hiddenSize, config.numLayers, config.numHeads,
        config.kvHeads(), config.headDim(), config.ffnHiddenSize,
        QKVLayoutAttr::get(context, config.qkvLayout()),
        builder.getBoolAttr(config.parallelAttn), config.layerNormsPerBlock(),
        builder.getBoolAttr(config.alibi), builder.getBoolAttr(config.bias),
        builder.getBoolAttr(config.tieWordEmbeddings),
        builder.getF64FloatAttr(config.layerNormEpsilon), config.maxPositionEmbeddings);
  }

  /// Index of the first weight spec whose name ends in `suffix`, or -1.
  int findSpec(StringRef suffix) const {
    for (auto [index, spec] : llvm::enumerate(specs))
      if (StringRef(spec.name).ends_with(suffix))
        return index;
    return -1;
  }

  void buildLayerFunction() {
    SmallVector<Type> inputs = {activationType(config.hiddenSize)};
    if (!config.alibi)
      inputs.push_back(tokenType);
    inputs.append({pastLensType, cacheType, cacheType});
    if (config.alibi)
      inputs.push_back(alibiType());
    unsigned firstWeight = inputs.size();
    for (auto [spec, type] : llvm::zip(specs, weightTypes))
      if (spec.perLayer)
        inputs.push_back(type);
    auto funcType = builder.getFunctionType(
        inputs, {activationType(config.hiddenSize), cacheType, cacheType});
    auto func = func::FuncOp::create(builder, loc, kLayerFunctionName, funcType);
    func.setPrivate();
    Block *body = func.addEntryBlock();
    builder.setInsertionPointToStart(body);

    // Map each per-layer weight spec to its block argument.
    llvm::DenseMap<int, Value> weights;
    unsigned argIndex = firstWeight;
    for (auto [index, spec] : llvm::enumerate(specs))
      if (spec.perLayer) {
        func.setArgAttr(argIndex, FalconDialect::kArgWeightAttrName, builder.getStringAttr(spec.name));
        weights[index] = body->getArgument(argIndex++);
      }
    auto weight = [&](StringRef suffix) -> Value {
      int index = findSpec(suffix);
      return index < 0 ? Value() : weights.lookup(index);
    };

    unsigned arg = 0;
    Value x = body->getArgument(arg++);
    Value positions = config.alibi ? Value() : body->getArgument(arg++);
    Value pastLens = body->getArgument(arg++);
    Value keyCache = body->getArgument(arg++);
    Value valueCache = body->getArgument(arg++);
    Value alibi = config.alibi ? body->getArgument(arg++) : Value();

    auto layerNorm = [&](Value input, StringRef module) -> Value {
      return LayerNormOp::create(
          builder, loc, input.getType(), input, weight(module.str() + ".weight"),
          weight(module.str() + ".bias"),
          builder.getF64FloatAttr(config.layerNormEpsilon));
    };
    auto linear = [&](Value input, StringRef module, int64_t out) -> Value {
      return LinearOp::create(builder, loc, activationType(out), input,
                              weight(module.str() + ".weight"),
                              weight(module.str() + ".bias"));
    };
    auto mlp = [&](Value input) -> Value {
      Value hidden = linear(input, "mlp.dense_h_to_4h", config.ffnHiddenSize);
      Value activated = GeluOp::create(builder, loc, hidden);
      return linear(activated, "mlp.dense_4h_to_h", config.hiddenSize);
    };
    Value newKeyCache, newValueCache;
    auto attention = [&](Value input) -> Value {
      Value fused = linear(input, "self_attention.query_key_value",
                           config.qkvOutFeatures());
      auto split = QKVSplitOp::create(
          builder, loc, headsType(config.numHeads), headsType(config.kvHeads()),
          headsType(config.kvHeads()), fused, config.qkvLayout(),
          config.numHeads, config.kvHeads());
      Value query = split.getQuery(), key = split.getKey();
      if (!config.alibi) {
        auto rotate = [&](Value heads) -> Value {
          return RotaryOp::create(
              builder, loc, heads.getType(), heads, positions,
              builder.getF64FloatAttr(config.ropeTheta),
              RopeScalingAttr::get(context, config.ropeScaling),
              builder.getF64FloatAttr(config.ropeFactor),
              builder.getI64IntegerAttr(config.maxPositionEmbeddings));
        };
        query = rotate(query);
        key = rotate(key);
      }
      auto attn = AttentionOp::create(
          builder, loc, activationType(config.attentionWidth()), cacheType, cacheType,
          query, key, split.getValue(), keyCache, valueCache, pastLens, alibi);
      newKeyCache = attn.getNewKeyCache();
      newValueCache = attn.getNewValueCache();
      return linear(attn.getResult(), "self_attention.dense", config.hiddenSize);
    };

    // Residual order exactly as Hugging Face (spec section 4).
    Value out;
    switch (config.blockKind()) {
    case BlockKind::Sequential: {
      Value attnOut = attention(layerNorm(x, "input_layernorm"));
      Value residual = AddOp::create(builder, loc, x, attnOut);
      Value mlpOut = mlp(layerNorm(residual, "post_attention_layernorm"));
      out = AddOp::create(builder, loc, residual, mlpOut);
      break;
    }
    case BlockKind::ParallelSharedNorm: {
      Value normed = layerNorm(x, "input_layernorm");
      Value attnOut = attention(normed);
      Value mlpOut = mlp(normed);
      out = AddOp::create(builder, loc, x,
                          AddOp::create(builder, loc, mlpOut, attnOut));
      break;
    }
    case BlockKind::ParallelTwoNorms: {
      Value attnOut = attention(layerNorm(x, "ln_attn"));
      Value mlpOut = mlp(layerNorm(x, "ln_mlp"));
      out = AddOp::create(builder, loc, x,
                          AddOp::create(builder, loc, mlpOut, attnOut));
      break;
    }
    }
    func::ReturnOp::create(builder, loc, ValueRange{out, newKeyCache, newValueCache});
  }

  Value param(unsigned specIndex, Value layer = Value()) {
    return ParamOp::create(builder, loc, weightTypes[specIndex],
                           builder.getStringAttr(specs[specIndex].name), layer,
                           /*encoding=*/WeightEncodingAttr());
  }

  void buildForwardFunction() {
    int64_t dyn = ShapedType::kDynamic;
    auto allCachesType = RankedTensorType::get(
        {config.numLayers, dyn, config.kvHeads(), dyn, config.headDim()}, cacheType.getElementType());
    auto funcType = builder.getFunctionType(
        {tokenType, tokenType, pastLensType, allCachesType, allCachesType, tokenType},
        {activationType(config.vocabSize), allCachesType, allCachesType});
    auto func = func::FuncOp::create(builder, loc, kForwardFunctionName, funcType);
    static constexpr StringRef argNames[] = {"input_ids", "position_ids", "past_lens",
                                             "key_cache", "value_cache", "logit_positions"};
    for (auto [index, name] : llvm::enumerate(argNames))
      func.setArgAttr(index, FalconDialect::kArgNameAttrName, builder.getStringAttr(name));
    Block *body = func.addEntryBlock();
    builder.setInsertionPointToStart(body);
    Value ids = body->getArgument(0), positions = body->getArgument(1),
          pastLens = body->getArgument(2);

    Value table = param(findSpec("word_embeddings.weight"));
    Value x = EmbeddingOp::create(builder, loc, activationType(config.hiddenSize),
                                  ids, table);
    Value alibi;
    if (config.alibi) {
      // Every key a row of the batch may see: the rows' lengths differ, so
      // the bias covers the cache's capacity (key j's bias depends on j
      // alone).
      Value numKeys = tensor::DimOp::create(builder, loc, body->getArgument(3), 3);
      alibi = AlibiOp::create(builder, loc, alibiType(), numKeys,
                              builder.getI64IntegerAttr(config.numHeads));
    }

    Value zero = arith::ConstantIndexOp::create(builder, loc, 0);
    Value one = arith::ConstantIndexOp::create(builder, loc, 1);
    Value numLayers = arith::ConstantIndexOp::create(builder, loc, config.numLayers);
    auto loop = scf::ForOp::create(
        builder, loc, zero, numLayers, one,
        ValueRange{x, body->getArgument(3), body->getArgument(4)},
        [&](OpBuilder &nested, Location nestedLoc, Value layer, ValueRange iterArgs) {
          OpBuilder::InsertionGuard guard(builder);
          builder.setInsertionPoint(nested.getInsertionBlock(),
                                    nested.getInsertionPoint());
          // This layer's caches: a rank-reduced slice [B, K, capacity, d].
          Value allKeys = iterArgs[1], allValues = iterArgs[2];
          OpFoldResult batch = tensor::DimOp::create(builder, loc, allKeys, 1).getResult();
          OpFoldResult capacity = tensor::DimOp::create(builder, loc, allKeys, 3).getResult();
          SmallVector<OpFoldResult> offsets = {layer, builder.getIndexAttr(0),
                                               builder.getIndexAttr(0),
                                               builder.getIndexAttr(0),
                                               builder.getIndexAttr(0)};
          SmallVector<OpFoldResult> sizes = {
              builder.getIndexAttr(1), batch, builder.getIndexAttr(config.kvHeads()),
              capacity, builder.getIndexAttr(config.headDim())};
          SmallVector<OpFoldResult> strides(5, builder.getIndexAttr(1));
          auto slice = [&](Value all) -> Value {
            return tensor::ExtractSliceOp::create(builder, loc, cacheType, all,
                                                  offsets, sizes, strides);
          };
          SmallVector<Value> operands = {iterArgs[0]};
          if (!config.alibi)
            operands.push_back(positions);
          operands.append({pastLens, slice(allKeys), slice(allValues)});
          if (config.alibi)
            operands.push_back(alibi);
          for (auto [index, spec] : llvm::enumerate(specs))
            if (spec.perLayer)
              operands.push_back(param(index, layer));
          auto call = func::CallOp::create(
              builder, loc, kLayerFunctionName,
              TypeRange{activationType(config.hiddenSize), cacheType, cacheType},
              operands);
          auto insert = [&](Value layerCache, Value all) -> Value {
            return tensor::InsertSliceOp::create(builder, loc, layerCache, all,
                                                 offsets, sizes, strides);
          };
          scf::YieldOp::create(builder, loc,
                               ValueRange{call.getResult(0),
                                          insert(call.getResult(1), allKeys),
                                          insert(call.getResult(2), allValues)});
        });

    builder.setInsertionPointAfter(loop);
    int lnWeight = findSpec("ln_f.weight"), lnBias = findSpec("ln_f.bias");
    // Only the positions whose logits the caller asked for reach the final
    // LayerNorm and the LM head.
    Value chosen = GatherPositionsOp::create(builder, loc, activationType(config.hiddenSize),
                                             loop.getResult(0), body->getArgument(5));
    Value normed = LayerNormOp::create(
        builder, loc, activationType(config.hiddenSize), chosen,
        param(lnWeight), param(lnBias),
        builder.getF64FloatAttr(config.layerNormEpsilon));
    // Hugging Face ignores a stored lm_head.weight when the head is tied.
    int headWeight = config.tieWordEmbeddings ? findSpec("word_embeddings.weight")
                                              : findSpec("lm_head.weight");
    auto logits = LMHeadOp::create(builder, loc, activationType(config.vocabSize),
                                   normed, param(headWeight),
                                   config.tieWordEmbeddings);
    func::ReturnOp::create(builder, loc,
                           ValueRange{logits, loop.getResult(1), loop.getResult(2)});
  }

  MLIRContext *context;
  const Checkpoint &checkpoint;
  const FalconConfig &config;
  OpBuilder builder;
  Location loc;
  std::vector<WeightSpec> specs;
  SmallVector<RankedTensorType> weightTypes;
  Type f32;
  RankedTensorType tokenType, pastLensType, cacheType;
};
} // namespace

OwningOpRef<ModuleOp> mlir::falcon::importFalconModel(MLIRContext *context,
                                                      const Checkpoint &checkpoint,
                                                      FloatType kvCacheType) {
  context->loadDialect<FalconDialect, func::FuncDialect, scf::SCFDialect,
                       tensor::TensorDialect, arith::ArithDialect>();
  return ModuleBuilder(context, checkpoint, kvCacheType).build();
}
