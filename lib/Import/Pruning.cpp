//===- Pruning.cpp - structured pruning of a Falcon checkpoint ------------===//
//
// The calibration forward pass (importance), the selection and the writer of
// the pruned checkpoint. See Pruning.h.
//
//===----------------------------------------------------------------------===//

#include "falcon/Import/Pruning.h"

#include "falcon/Support/WeightTransform.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Parallel.h"
#include "llvm/Support/Path.h"

#include <algorithm>
#include <cmath>
#include <numeric>

using namespace mlir;
using namespace mlir::falcon;
using llvm::Error;
using llvm::Expected;

namespace {

using Floats = std::vector<float>;

Error fail(const llvm::Twine &message) { return llvm::createStringError(message.str()); }

/// The checkpoint's tensors, read through mapped files.
class TensorReader {
public:
  explicit TensorReader(const Checkpoint &checkpoint) : checkpoint(checkpoint) {}

  Expected<const SafetensorsTensor *> find(StringRef name) {
    auto it = checkpoint.tensors->tensors.find(name);
    if (it == checkpoint.tensors->tensors.end())
      return fail(checkpoint.name + ": has no tensor '" + name + "'");
    return &it->second;
  }

  /// The stored bytes of `tensor`.
  Expected<ArrayRef<uint8_t>> bytes(const SafetensorsTensor &tensor) {
    return files.bytes(tensor);
  }

  /// A float tensor's values as f32.
  Expected<Floats> floats(StringRef name) {
    Expected<const SafetensorsTensor *> tensor = find(name);
    if (!tensor)
      return tensor.takeError();
    using Float = ::falcon::WeightTransform::Quantize::Float;
    Float kind;
    switch ((*tensor)->dtype) {
    case SafetensorsDType::F32:
      kind = Float::F32;
      break;
    case SafetensorsDType::BF16:
      kind = Float::BF16;
      break;
    case SafetensorsDType::F16:
      kind = Float::F16;
      break;
    default:
      return fail(checkpoint.name + ": tensor '" + name + "' is " +
                  stringifyDType((*tensor)->dtype) + "; pruning needs float weights");
    }
    Expected<ArrayRef<uint8_t>> raw = bytes(**tensor);
    if (!raw)
      return raw.takeError();
    return ::falcon::widenToFloat(*raw, kind);
  }

private:
  const Checkpoint &checkpoint;
  MappedTensorFiles files;
};

float dot(const float *a, const float *b, int64_t n) {
  float lanes[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int lane = 0; lane < 8; ++lane)
      lanes[lane] += a[i + lane] * b[i + lane];
  float sum = 0;
  for (float lane : lanes)
    sum += lane;
  for (; i < n; ++i)
    sum += a[i] * b[i];
  return sum;
}

/// y [rows, out] = x [rows, in] . w [out, in]^T, then + bias (as
/// FalconLinear: the matmul, then the bias).
Floats linear(const Floats &x, int64_t rows, int64_t in, const Floats &w, int64_t out,
              const Floats *bias) {
  Floats y(static_cast<size_t>(rows * out));
  llvm::parallelFor(0, size_t(out), [&](size_t o) {
    for (int64_t row = 0; row < rows; ++row)
      y[size_t(row * out) + o] = dot(&x[size_t(row * in)], &w[o * size_t(in)], in) +
                                 (bias ? (*bias)[o] : 0.0f);
  });
  return y;
}

Floats layerNorm(const Floats &x, int64_t rows, int64_t width, const Floats &weight,
                 const Floats &bias, double epsilon) {
  Floats y(x.size());
  for (int64_t row = 0; row < rows; ++row) {
    const float *in = &x[size_t(row * width)];
    double mean = 0, variance = 0;
    for (int64_t i = 0; i < width; ++i)
      mean += in[i];
    mean /= double(width);
    for (int64_t i = 0; i < width; ++i)
      variance += (in[i] - mean) * (in[i] - mean);
    variance /= double(width);
    double scale = 1.0 / std::sqrt(variance + epsilon);
    for (int64_t i = 0; i < width; ++i)
      y[size_t(row * width + i)] = float((in[i] - mean) * scale) * weight[size_t(i)] +
                                   bias[size_t(i)];
  }
  return y;
}

/// ALiBi slopes of transformers' build_alibi_tensor (spec section 5.4).
std::vector<double> alibiSlopes(int64_t numHeads) {
  int64_t n = int64_t(1) << int64_t(std::floor(std::log2(double(numHeads))));
  std::vector<double> slopes;
  double base = std::pow(2.0, -8.0 / double(n));
  for (int64_t k = 1; k <= n; ++k)
    slopes.push_back(std::pow(base, double(k)));
  double extra = std::pow(2.0, -4.0 / double(n));
  for (int64_t k = 1; k < 2 * std::min(n, numHeads - n); k += 2)
    slopes.push_back(std::pow(extra, double(k)));
  return slopes;
}

/// One layer's weights, as f32.
struct LayerWeights {
  Floats norm1Weight, norm1Bias, norm2Weight, norm2Bias;
  Floats qkv, qkvBias, dense, denseBias, up, upBias, down, downBias;
};

Expected<LayerWeights> loadLayer(TensorReader &reader, const FalconConfig &config,
                                 int64_t layer) {
  LayerWeights weights;
  std::string prefix = "transformer.h." + std::to_string(layer) + ".";
  auto load = [&](Floats &into, StringRef name) -> Error {
    Expected<Floats> values = reader.floats(prefix + name.str());
    if (!values)
      return values.takeError();
    into = std::move(*values);
    return Error::success();
  };
  StringRef norms[2] = {"input_layernorm", "post_attention_layernorm"};
  if (config.blockKind() == BlockKind::ParallelTwoNorms)
    norms[0] = "ln_attn", norms[1] = "ln_mlp";
  if (Error error = load(weights.norm1Weight, (norms[0] + ".weight").str()))
    return std::move(error);
  if (Error error = load(weights.norm1Bias, (norms[0] + ".bias").str()))
    return std::move(error);
  if (config.layerNormsPerBlock() == 2) {
    if (Error error = load(weights.norm2Weight, (norms[1] + ".weight").str()))
      return std::move(error);
    if (Error error = load(weights.norm2Bias, (norms[1] + ".bias").str()))
      return std::move(error);
  }
  std::pair<Floats *, StringRef> projections[] = {
      {&weights.qkv, "self_attention.query_key_value"},
      {&weights.dense, "self_attention.dense"},
      {&weights.up, "mlp.dense_h_to_4h"},
      {&weights.down, "mlp.dense_4h_to_h"}};
  Floats *biases[] = {&weights.qkvBias, &weights.denseBias, &weights.upBias, &weights.downBias};
  for (auto [index, projection] : llvm::enumerate(projections)) {
    if (Error error = load(*projection.first, (projection.second + ".weight").str()))
      return std::move(error);
    if (config.bias)
      if (Error error = load(*biases[index], (projection.second + ".bias").str()))
        return std::move(error);
  }
  return weights;
}

/// The calibration pass over one window: the layer's attention and MLP,
/// adding the energies of each head's and neuron's contribution.
class CalibrationLayer {
public:
  CalibrationLayer(const FalconConfig &config, const LayerWeights &weights,
                   std::vector<double> &headEnergy, std::vector<double> &neuronEnergy)
      : config(config), weights(weights), headEnergy(headEnergy), neuronEnergy(neuronEnergy) {
    int64_t f = config.ffnHiddenSize, h = config.hiddenSize;
    downColumnEnergy.assign(size_t(f), 0.0);
    for (int64_t o = 0; o < h; ++o)
      for (int64_t j = 0; j < f; ++j) {
        double w = weights.down[size_t(o * f + j)];
        downColumnEnergy[size_t(j)] += w * w;
      }
  }

  /// x [rows, hidden] -> the block's output.
  Floats run(const Floats &x, int64_t rows) {
    int64_t h = config.hiddenSize;
    double eps = config.layerNormEpsilon;
    Floats u = layerNorm(x, rows, h, weights.norm1Weight, weights.norm1Bias, eps);
    Floats out(x);
    if (config.blockKind() == BlockKind::Sequential) {
      Floats attention = attend(u, rows);
      for (size_t i = 0; i < out.size(); ++i)
        out[i] += attention[i];
      Floats mlpIn = layerNorm(out, rows, h, weights.norm2Weight, weights.norm2Bias, eps);
      Floats mlp = feedForward(mlpIn, rows);
      for (size_t i = 0; i < out.size(); ++i)
        out[i] += mlp[i];
      return out;
    }
    Floats attention = attend(u, rows);
    Floats mlp = config.blockKind() == BlockKind::ParallelTwoNorms
                     ? feedForward(layerNorm(x, rows, h, weights.norm2Weight,
                                             weights.norm2Bias, eps),
                                   rows)
                     : feedForward(u, rows);
    for (size_t i = 0; i < out.size(); ++i)
      out[i] += mlp[i] + attention[i];
    return out;
  }

private:
  Floats attend(const Floats &u, int64_t rows) {
    int64_t h = config.hiddenSize, numHeads = config.numHeads, d = config.headDim();
    int64_t kvHeads = config.kvHeads(), perGroup = numHeads / kvHeads;
    int64_t qkvWidth = config.qkvOutFeatures(), width = config.attentionWidth();
    Floats fused = linear(u, rows, h, weights.qkv, qkvWidth, config.bias ? &weights.qkvBias : nullptr);
    // Row offsets of each query head and of its group's key and value.
    std::vector<int64_t> queryRow(static_cast<size_t>(numHeads)),
        keyRow(static_cast<size_t>(numHeads)), valueRow(static_cast<size_t>(numHeads));
    for (int64_t head = 0; head < numHeads; ++head) {
      std::vector<int64_t> heads = {head};
      std::vector<int64_t> qkvRows =
          getFusedQKVRows(config.qkvLayout(), numHeads, kvHeads, d, heads);
      queryRow[size_t(head)] = qkvRows[0];
      keyRow[size_t(head)] = qkvRows[size_t(d)];
      valueRow[size_t(head)] = qkvRows[size_t(2 * d)];
    }
    // Rotary embeddings on the queries and keys (in place, in `fused`).
    if (!config.alibi) {
      int64_t half = d / 2;
      std::vector<float> inverse(static_cast<size_t>(half));
      for (int64_t i = 0; i < half; ++i) {
        float exponent = float(2 * i) / float(d);
        inverse[size_t(i)] =
            1.0f / float(std::pow(double(float(config.ropeTheta)), double(exponent)));
        if (config.ropeScaling == RopeScaling::Linear)
          inverse[size_t(i)] /= float(config.ropeFactor);
      }
      std::vector<int64_t> rotated;
      for (int64_t head = 0; head < numHeads; ++head)
        rotated.push_back(queryRow[size_t(head)]);
      for (int64_t head = 0; head < numHeads; head += perGroup)
        rotated.push_back(keyRow[size_t(head)]);
      for (int64_t row = 0; row < rows; ++row)
        for (int64_t first : rotated) {
          float *v = &fused[size_t(row * qkvWidth + first)];
          for (int64_t i = 0; i < half; ++i) {
            double angle = double(float(row) * inverse[size_t(i)]);
            float c = float(std::cos(angle)), s = float(std::sin(angle));
            float a = v[i], b = v[i + half];
            v[i] = a * c - b * s;
            v[i + half] = b * c + a * s;
          }
        }
    }
    std::vector<double> slopes = config.alibi ? alibiSlopes(numHeads) : std::vector<double>();
    float scale = 1.0f / std::sqrt(float(d));
    Floats context(static_cast<size_t>(rows * width));
    llvm::parallelFor(0, size_t(numHeads), [&](size_t head) {
      std::vector<double> scores(static_cast<size_t>(rows));
      for (int64_t query = 0; query < rows; ++query) {
        const float *q = &fused[size_t(query * qkvWidth + queryRow[head])];
        double top = -INFINITY;
        for (int64_t key = 0; key <= query; ++key) {
          float score = dot(q, &fused[size_t(key * qkvWidth + keyRow[head])], d);
          if (config.alibi)
            score += float(slopes[head] * double(key));
          scores[size_t(key)] = double(score * scale);
          top = std::max(top, scores[size_t(key)]);
        }
        double sum = 0;
        for (int64_t key = 0; key <= query; ++key)
          sum += scores[size_t(key)] = std::exp(scores[size_t(key)] - top);
        float *c = &context[size_t(query * width) + head * size_t(d)];
        for (int64_t key = 0; key <= query; ++key) {
          float p = float(scores[size_t(key)] / sum);
          const float *v = &fused[size_t(key * qkvWidth + valueRow[head])];
          for (int64_t i = 0; i < d; ++i)
            c[i] += p * v[i];
        }
      }
    });
    // The dense projection, head by head: each head's share and its energy.
    std::vector<double> energy(size_t(h * numHeads), 0.0);
    Floats out(static_cast<size_t>(rows * h));
    llvm::parallelFor(0, size_t(h), [&](size_t o) {
      for (int64_t row = 0; row < rows; ++row) {
        float sum = 0;
        for (int64_t head = 0; head < numHeads; ++head) {
          float share = dot(&context[size_t(row * width + head * d)],
                            &weights.dense[o * size_t(width) + size_t(head * d)], d);
          sum += share;
          energy[o * size_t(numHeads) + size_t(head)] += double(share) * share;
        }
        out[size_t(row * h) + o] = sum + (config.bias ? weights.denseBias[o] : 0.0f);
      }
    });
    for (int64_t o = 0; o < h; ++o)
      for (int64_t head = 0; head < numHeads; ++head)
        headEnergy[size_t(head)] += energy[size_t(o * numHeads + head)];
    return out;
  }

  Floats feedForward(const Floats &u, int64_t rows) {
    int64_t h = config.hiddenSize, f = config.ffnHiddenSize;
    Floats hidden = linear(u, rows, h, weights.up, f, config.bias ? &weights.upBias : nullptr);
    for (float &value : hidden)
      value = float(0.5 * value * (1.0 + std::erf(double(value) / std::sqrt(2.0))));
    for (int64_t j = 0; j < f; ++j) {
      double sum = 0;
      for (int64_t row = 0; row < rows; ++row) {
        double a = hidden[size_t(row * f + j)];
        sum += a * a;
      }
      neuronEnergy[size_t(j)] += sum * downColumnEnergy[size_t(j)];
    }
    return linear(hidden, rows, f, weights.down, h, config.bias ? &weights.downBias : nullptr);
  }

  const FalconConfig &config;
  const LayerWeights &weights;
  std::vector<double> &headEnergy, &neuronEnergy;
  std::vector<double> downColumnEnergy;
};

} // namespace

Expected<PruningImportance>
mlir::falcon::computePruningImportance(const Checkpoint &checkpoint, ArrayRef<int64_t> tokens,
                                       llvm::function_ref<void(int64_t, int64_t, int64_t)>
                                           progress) {
  const FalconConfig &config = checkpoint.config;
  if (!checkpoint.tensors)
    return fail("pruning needs the checkpoint's weights (this is a lone config.json)");
  if (config.quantization)
    return fail("pruning needs float weights; this checkpoint is GPTQ/AWQ-quantized (prune "
                "the float model, then quantize)");
  if (tokens.empty())
    return fail("the calibration text has no tokens");
  for (int64_t token : tokens)
    if (token < 0 || token >= config.vocabSize)
      return fail(llvm::formatv("calibration token id {0} is outside the vocabulary [0, {1})",
                                token, config.vocabSize)
                      .str());
  int64_t window = std::min(kPruningCalibrationWindow, config.maxPositionEmbeddings);
  int64_t numWindows = (int64_t(tokens.size()) + window - 1) / window;
  int64_t h = config.hiddenSize;
  TensorReader reader(checkpoint);

  // The hidden states of every window, layer after layer.
  std::vector<Floats> states(static_cast<size_t>(numWindows));
  {
    Expected<Floats> table = reader.floats("transformer.word_embeddings.weight");
    if (!table)
      return table.takeError();
    for (int64_t w = 0; w < numWindows; ++w) {
      ArrayRef<int64_t> ids = tokens.slice(size_t(w * window)).take_front(size_t(window));
      states[size_t(w)].resize(ids.size() * size_t(h));
      for (auto [row, id] : llvm::enumerate(ids))
        std::copy_n(table->begin() + id * h, h, states[size_t(w)].begin() + row * h);
    }
  }
  PruningImportance importance;
  importance.calibrationTokens = int64_t(tokens.size());
  for (int64_t layer = 0; layer < config.numLayers; ++layer) {
    Expected<LayerWeights> weights = loadLayer(reader, config, layer);
    if (!weights)
      return weights.takeError();
    std::vector<double> heads(size_t(config.numHeads), 0.0),
        neurons(size_t(config.ffnHiddenSize), 0.0);
    CalibrationLayer block(config, *weights, heads, neurons);
    for (int64_t w = 0; w < numWindows; ++w) {
      Floats &state = states[size_t(w)];
      state = block.run(state, int64_t(state.size()) / h);
      if (progress)
        progress(w, numWindows, layer);
    }
    importance.heads.push_back(std::move(heads));
    importance.neurons.push_back(std::move(neurons));
  }
  return importance;
}

std::string mlir::falcon::checkPruningRatios(const FalconConfig &config, double heads,
                                             double ffn) {
  for (auto [flag, ratio] : {std::pair<const char *, double>{"--prune-heads", heads},
                             {"--prune-ffn", ffn}})
    if (!(ratio >= 0 && ratio < 1))
      return llvm::formatv("{0} must be in [0, 1) (the fraction removed), found {1}", flag,
                           ratio)
          .str();
  if (heads > 0 && config.numHeads == config.kvHeads())
    return "--prune-heads removes query heads within a KV group, but this model has one "
           "query head per KV head (multi-head attention, as falcon-rw): there is none to "
           "remove";
  return "";
}

/// The `count` entries of `importance` (indices `first` + i) to keep when
/// `remove` go: the least important, the higher index first among equals.
static std::vector<int64_t> keepMostImportant(ArrayRef<double> importance, int64_t first,
                                              int64_t count, int64_t remove) {
  std::vector<int64_t> order(static_cast<size_t>(count));
  std::iota(order.begin(), order.end(), first);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    if (importance[size_t(a)] != importance[size_t(b)])
      return importance[size_t(a)] < importance[size_t(b)];
    return a > b;
  });
  std::vector<int64_t> kept(order.begin() + remove, order.end());
  llvm::sort(kept);
  return kept;
}

PruningSelection mlir::falcon::selectPruning(const FalconConfig &config,
                                             const PruningImportance &importance,
                                             double heads, double ffn) {
  PruningSelection selection;
  selection.headRatio = heads;
  selection.ffnRatio = ffn;
  selection.calibrationTokens = importance.calibrationTokens;
  int64_t groups = config.kvHeads(), perGroup = config.numHeads / groups;
  int64_t removeHeads = std::clamp<int64_t>(std::llround(heads * double(perGroup)), 0,
                                            perGroup - 1);
  int64_t f = config.ffnHiddenSize;
  int64_t keptNeurons = f - std::llround(ffn * double(f));
  if (f % 16 == 0)
    keptNeurons = std::min(f, (keptNeurons + 15) / 16 * 16);
  keptNeurons = std::max<int64_t>(keptNeurons, 1);
  for (int64_t layer = 0; layer < config.numLayers; ++layer) {
    std::vector<int64_t> kept;
    for (int64_t group = 0; group < groups; ++group) {
      std::vector<int64_t> inGroup = keepMostImportant(
          importance.heads[size_t(layer)], group * perGroup, perGroup, removeHeads);
      kept.insert(kept.end(), inGroup.begin(), inGroup.end());
    }
    selection.keptHeads.push_back(std::move(kept));
    selection.keptNeurons.push_back(
        keepMostImportant(importance.neurons[size_t(layer)], 0, f, f - keptNeurons));
  }
  return selection;
}

FalconConfig mlir::falcon::getPrunedConfig(const FalconConfig &config,
                                           const PruningSelection &selection) {
  FalconConfig pruned = config;
  pruned.headDimField = config.headDim();
  pruned.numHeads = int64_t(selection.keptHeads.front().size());
  if (config.qkvLayout() == QKVLayout::PerHead)
    pruned.numKVHeadsField = pruned.numHeads;
  pruned.ffnHiddenSize = int64_t(selection.keptNeurons.front().size());
  return pruned;
}

/// The weight-transform steps that cut one tensor of layer `layer` (none for
/// a tensor pruning leaves as it is).
static std::vector<::falcon::WeightTransformStep>
getPruningSteps(const FalconConfig &config, const PruningSelection &selection,
                StringRef specName, int64_t layer) {
  using Step = ::falcon::WeightTransformStep;
  const std::vector<int64_t> &heads = selection.keptHeads[size_t(layer)];
  const std::vector<int64_t> &neurons = selection.keptNeurons[size_t(layer)];
  int64_t d = config.headDim();
  if (specName.ends_with(".self_attention.query_key_value.weight") ||
      specName.ends_with(".self_attention.query_key_value.bias"))
    return {Step::gather(0, getFusedQKVRows(config.qkvLayout(), config.numHeads,
                                            config.kvHeads(), d, heads))};
  if (specName.ends_with(".self_attention.dense.weight")) {
    std::vector<int64_t> columns;
    for (int64_t head : heads)
      for (int64_t i = 0; i < d; ++i)
        columns.push_back(head * d + i);
    return {Step::gather(1, columns)};
  }
  if (specName.ends_with(".mlp.dense_h_to_4h.weight") ||
      specName.ends_with(".mlp.dense_h_to_4h.bias"))
    return {Step::gather(0, neurons)};
  if (specName.ends_with(".mlp.dense_4h_to_h.weight"))
    return {Step::gather(1, neurons)};
  return {};
}

static llvm::json::Array toJSON(ArrayRef<int64_t> values) {
  llvm::json::Array array;
  for (int64_t value : values)
    array.push_back(value);
  return array;
}

static llvm::json::Array toJSON(ArrayRef<double> values) {
  llvm::json::Array array;
  for (double value : values)
    array.push_back(value);
  return array;
}

/// The entries of 0..count-1 that `kept` lacks.
static std::vector<int64_t> getRemoved(ArrayRef<int64_t> kept, int64_t count) {
  std::vector<int64_t> removed;
  for (int64_t index = 0, at = 0; index < count; ++index) {
    if (at < int64_t(kept.size()) && kept[size_t(at)] == index)
      ++at;
    else
      removed.push_back(index);
  }
  return removed;
}

static Error writeFile(StringRef path, StringRef contents) {
  std::error_code error;
  llvm::raw_fd_ostream os(path, error);
  if (error)
    return fail(path + ": " + error.message());
  os << contents;
  os.close();
  if (os.has_error())
    return fail(path + ": " + os.error().message());
  return Error::success();
}

Error mlir::falcon::writePrunedCheckpoint(const Checkpoint &checkpoint,
                                          const PruningImportance &importance,
                                          const PruningSelection &selection, StringRef out,
                                          ArrayRef<std::string> copiedFiles) {
  namespace fs = llvm::sys::fs;
  const FalconConfig &config = checkpoint.config;
  FalconConfig pruned = getPrunedConfig(config, selection);
  if (fs::exists(out)) {
    llvm::SmallString<256> report(out);
    llvm::sys::path::append(report, "pruning.json");
    if (!fs::exists(report))
      return fail(out + ": exists and is not a pruned model (no pruning.json); not "
                        "overwritten");
  }
  std::string staging = (out + ".partial").str();
  if (fs::exists(staging))
    if (std::error_code error = fs::remove_directories(staging))
      return fail(staging + ": " + error.message());
  if (std::error_code error = fs::create_directories(staging))
    return fail(staging + ": " + error.message());
  auto inStaging = [&](StringRef name) {
    llvm::SmallString<256> path(staging);
    llvm::sys::path::append(path, name);
    return std::string(path);
  };
  TensorReader reader(checkpoint);

  // The tensors: name, dtype, shape and transform, in the checkpoint's order.
  struct Entry {
    std::string name;
    const SafetensorsTensor *source;
    ::falcon::WeightTransform transform;
    llvm::SmallVector<int64_t, 4> shape;
    uint64_t bytes;
  };
  std::vector<Entry> entries;
  for (const WeightSpec &spec : getWeightSpecs(config)) {
    int64_t copies = spec.perLayer ? config.numLayers : 1;
    for (int64_t layer = 0; layer < copies; ++layer) {
      Entry entry;
      entry.name = spec.perLayer ? spec.nameForLayer(layer) : spec.name;
      Expected<const SafetensorsTensor *> source = reader.find(entry.name);
      if (!source)
        return source.takeError();
      entry.source = *source;
      entry.transform.name = entry.name;
      entry.transform.elementBytes = getDTypeSize(entry.source->dtype);
      entry.transform.sourceShape = entry.source->shape;
      if (spec.perLayer)
        entry.transform.steps = getPruningSteps(config, selection, spec.name, layer);
      Expected<llvm::SmallVector<int64_t, 4>> shape = ::falcon::getResultShape(entry.transform);
      Expected<uint64_t> bytes = ::falcon::getResultBytes(entry.transform);
      if (!shape || !bytes)
        return shape ? bytes.takeError() : shape.takeError();
      entry.shape = *shape;
      entry.bytes = *bytes;
      entries.push_back(std::move(entry));
    }
  }

  // model.safetensors: the header, then each tensor's bytes in that order.
  llvm::json::Object header;
  uint64_t offset = 0;
  for (const Entry &entry : entries) {
    llvm::json::Array shape;
    for (int64_t size : entry.shape)
      shape.push_back(size);
    header[entry.name] = llvm::json::Object{
        {"dtype", stringifyDType(entry.source->dtype)},
        {"shape", std::move(shape)},
        {"data_offsets", llvm::json::Array{offset, offset + entry.bytes}}};
    offset += entry.bytes;
  }
  header["__metadata__"] = llvm::json::Object{{"format", "pt"}};
  std::string headerText = llvm::formatv("{0}", llvm::json::Value(std::move(header)));
  headerText.append((8 - headerText.size() % 8) % 8, ' ');
  uint64_t available = 0;
  if (auto space = fs::disk_space(staging))
    available = space->available;
  if (available && available < offset + headerText.size())
    return fail(llvm::formatv("{0}: the pruned weights need {1} bytes but only {2} are free",
                              staging, offset + headerText.size(), available)
                    .str());
  {
    std::string path = inStaging("model.safetensors");
    std::error_code error;
    llvm::raw_fd_ostream os(path, error);
    if (error)
      return fail(path + ": " + error.message());
    uint64_t length = headerText.size();
    for (int byte = 0; byte < 8; ++byte)
      os << char((length >> (8 * byte)) & 0xff);
    os << headerText;
    std::vector<uint8_t> bytes;
    for (const Entry &entry : entries) {
      Expected<ArrayRef<uint8_t>> source = reader.bytes(*entry.source);
      if (!source)
        return source.takeError();
      bytes.resize(size_t(entry.bytes));
      if (Error error = ::falcon::applyWeightTransform(entry.transform, *source, 0, bytes))
        return error;
      os.write(reinterpret_cast<const char *>(bytes.data()), bytes.size());
    }
    os.close();
    if (os.has_error())
      return fail(path + ": " + os.error().message());
  }

  // config.json: the checkpoint's, with the new sizes.
  auto text = llvm::MemoryBuffer::getFile(checkpoint.configPath);
  if (!text)
    return fail(checkpoint.configPath + ": " + text.getError().message());
  Expected<llvm::json::Value> json = llvm::json::parse((*text)->getBuffer());
  if (!json || !json->getAsObject())
    return fail(checkpoint.configPath + ": " +
                (json ? std::string("expected a JSON object") : llvm::toString(json.takeError())));
  llvm::json::Object &object = *json->getAsObject();
  object.erase("n_head");
  object["num_attention_heads"] = pruned.numHeads;
  if (config.qkvLayout() == QKVLayout::PerHead) {
    object.erase("n_head_kv");
    object["num_kv_heads"] = pruned.numKVHeadsField;
  }
  object["head_dim"] = pruned.headDim();
  object["ffn_hidden_size"] = pruned.ffnHiddenSize;
  object["falcon_pruning"] = llvm::json::Object{
      {"prune_heads", selection.headRatio},
      {"prune_ffn", selection.ffnRatio},
      {"calibration_tokens", selection.calibrationTokens},
      {"num_attention_heads_before", config.numHeads},
      {"ffn_hidden_size_before", config.ffnHiddenSize}};
  if (Error error = writeFile(inStaging("config.json"), llvm::formatv("{0:2}\n", *json).str()))
    return error;

  // pruning.json: what each layer keeps and removes, and why.
  llvm::json::Array layers;
  for (int64_t layer = 0; layer < config.numLayers; ++layer) {
    const std::vector<int64_t> &heads = selection.keptHeads[size_t(layer)];
    const std::vector<int64_t> &neurons = selection.keptNeurons[size_t(layer)];
    layers.push_back(llvm::json::Object{
        {"layer", layer},
        {"kept_heads", toJSON(heads)},
        {"removed_heads", toJSON(getRemoved(heads, config.numHeads))},
        {"head_importance", toJSON(importance.heads[size_t(layer)])},
        {"removed_neurons", toJSON(getRemoved(neurons, config.ffnHiddenSize))},
        {"neuron_importance", toJSON(importance.neurons[size_t(layer)])}});
  }
  llvm::json::Object report{
      {"prune_heads", selection.headRatio},
      {"prune_ffn", selection.ffnRatio},
      {"calibration_tokens", selection.calibrationTokens},
      {"num_attention_heads", llvm::json::Array{config.numHeads, pruned.numHeads}},
      {"ffn_hidden_size", llvm::json::Array{config.ffnHiddenSize, pruned.ffnHiddenSize}},
      {"parameters", llvm::json::Array{getParameterCount(config), getParameterCount(pruned)}},
      {"layers", std::move(layers)}};
  if (Error error = writeFile(inStaging("pruning.json"),
                              llvm::formatv("{0:1}\n", llvm::json::Value(std::move(report))).str()))
    return error;

  for (const std::string &file : copiedFiles)
    if (std::error_code error =
            fs::copy_file(file, inStaging(llvm::sys::path::filename(file))))
      return fail(file + ": cannot copy: " + error.message());

  if (fs::exists(out))
    if (std::error_code error = fs::remove_directories(out))
      return fail(out + ": cannot replace: " + error.message());
  if (std::error_code error = fs::rename(staging, out))
    return fail(out + ": " + error.message());
  return Error::success();
}

void mlir::falcon::printPruningSummary(const FalconConfig &config,
                                       const PruningSelection &selection,
                                       llvm::raw_ostream &os) {
  FalconConfig pruned = getPrunedConfig(config, selection);
  int64_t before = getParameterCount(config), after = getParameterCount(pruned);
  os << llvm::formatv("pruned on {0} calibration tokens: query heads {1} -> {2} per layer "
                      "({3} KV group{4}), MLP neurons {5} -> {6} per layer; parameters {7} -> "
                      "{8} ({9:F1}% fewer)\n",
                      selection.calibrationTokens, config.numHeads, pruned.numHeads,
                      config.kvHeads(), config.kvHeads() == 1 ? "" : "s",
                      config.ffnHiddenSize, pruned.ffnHiddenSize, before, after,
                      100.0 * double(before - after) / double(before));
}
