//===- Sampler.cpp - token sampling as Hugging Face generate() does -*- C++ -*-===//
//
// Each processor mirrors its class in transformers/generation/logits_process.py
// (5.24) and the float32 arithmetic torch does for it on the CPU; see
// Sampler.h for the rules and docs/sampling.md for how they were checked.
//
//===----------------------------------------------------------------------===//

#include "core/Sampler.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>

using namespace falcon::runtime;

namespace {

constexpr float kFiltered = -std::numeric_limits<float>::infinity();

std::string describe(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.9g", value);
  return buffer;
}

/// softmax(x) rounded to float32, computed in double: within 6e-8 of
/// torch.softmax's float32 result (measured on the golden rows). Filtered
/// (-inf) entries get exactly 0.
void softmax(llvm::ArrayRef<float> x, std::vector<float> &out) {
  out.resize(x.size());
  float max = kFiltered;
  for (float v : x)
    if (v > max)
      max = v;
  if (max == kFiltered) {
    // Nothing left (only possible for an all -inf input row): uniform
    // rather than torch's NaNs.
    std::fill(out.begin(), out.end(), 1.0f / static_cast<float>(x.size()));
    return;
  }
  std::vector<double> e(x.size());
  double sum = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    e[i] = x[i] == kFiltered ? 0.0
                             : std::exp(static_cast<double>(x[i]) -
                                        static_cast<double>(max));
    sum += e[i];
  }
  for (size_t i = 0; i < x.size(); ++i)
    out[i] = static_cast<float>(e[i] / sum);
}

/// RepetitionPenaltyLogitsProcessor: each distinct previous id's logit is
/// multiplied (if negative) or divided (otherwise) by the float32 penalty.
void applyRepetitionPenalty(float penalty, llvm::ArrayRef<int64_t> ids,
                            llvm::MutableArrayRef<float> logits) {
  std::vector<bool> seen(logits.size(), false);
  for (int64_t id : ids) {
    if (id < 0 || id >= static_cast<int64_t>(logits.size()) || seen[id])
      continue;
    seen[id] = true;
    float score = logits[id];
    logits[id] = score < 0 ? score * penalty : score / penalty;
  }
}

/// TopKLogitsWarper: scores < the k-th largest score are filtered.
void applyTopK(int64_t k, llvm::MutableArrayRef<float> logits) {
  int64_t vocab = static_cast<int64_t>(logits.size());
  if (k >= vocab)
    return;
  std::vector<float> values(logits.begin(), logits.end());
  std::nth_element(values.begin(), values.begin() + (k - 1), values.end(),
                   std::greater<float>());
  float kth = values[k - 1];
  for (float &v : logits)
    if (v < kth)
      v = kFiltered;
}

/// TopPLogitsWarper: on the ascending sort, tokens whose cumulative
/// probability is <= 1 - top_p are filtered, never the last (largest) one.
void applyTopP(double topP, llvm::MutableArrayRef<float> logits,
               std::vector<float> &probabilities) {
  // torch compares the float32 cumsum with the Python float 1 - top_p,
  // which it rounds to float32.
  float threshold = static_cast<float>(1.0 - topP);
  softmax(logits, probabilities);
  std::vector<int64_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return logits[a] < logits[b];
  });
  // torch's CPU cumsum accumulates float32 in double and rounds each sum.
  double cumulative = 0;
  for (size_t i = 0; i + 1 < order.size(); ++i) {
    cumulative += static_cast<double>(probabilities[order[i]]);
    if (!(static_cast<float>(cumulative) <= threshold))
      break; // The sums only grow: nothing later is removed.
    logits[order[i]] = kFiltered;
  }
}

/// MinPLogitsWarper: probabilities < min_p * (largest probability) are
/// filtered (the product in float32), never the most probable token.
void applyMinP(double minP, llvm::MutableArrayRef<float> logits,
               std::vector<float> &probabilities) {
  softmax(logits, probabilities);
  int64_t top = argmaxLowestId(probabilities);
  float scaled = static_cast<float>(minP) * probabilities[top];
  for (size_t i = 0; i < logits.size(); ++i)
    if (probabilities[i] < scaled && static_cast<int64_t>(i) != top)
      logits[i] = kFiltered;
}

} // namespace

std::string falcon::runtime::validateSamplingParams(const SamplingParams &p) {
  if (!std::isfinite(p.temperature) || p.temperature < 0)
    return "temperature must be a finite number >= 0 (0 = greedy), got " +
           describe(p.temperature);
  if (p.topK < 0)
    return "top_k must be >= 0 (0 = off), got " + std::to_string(p.topK);
  if (!(p.topP > 0 && p.topP <= 1))
    return "top_p must be in (0, 1] (1 = off), got " + describe(p.topP);
  if (!(p.minP >= 0 && p.minP <= 1))
    return "min_p must be in [0, 1] (0 = off), got " + describe(p.minP);
  if (!std::isfinite(p.repetitionPenalty) || !(p.repetitionPenalty > 0))
    return "repetition_penalty must be a finite number > 0 (1 = off), got " +
           describe(p.repetitionPenalty);
  return {};
}

void falcon::runtime::warp(const SamplingParams &params,
                           llvm::ArrayRef<int64_t> previousIds,
                           llvm::MutableArrayRef<float> logits,
                           std::vector<float> &probabilities) {
  assert(validateSamplingParams(params).empty() && "invalid SamplingParams");
  assert(!logits.empty() && "no logits");
  // The order of GenerationMixin._get_logits_processor.
  if (params.repetitionPenalty != 1.0)
    applyRepetitionPenalty(static_cast<float>(params.repetitionPenalty),
                           previousIds, logits);
  if (params.greedy()) {
    probabilities.assign(logits.size(), 0.0f);
    probabilities[argmaxLowestId(logits)] = 1.0f;
    return;
  }
  if (params.temperature != 1.0) {
    float temperature = static_cast<float>(params.temperature);
    for (float &v : logits)
      v = v / temperature;
  }
  if (params.topK != 0)
    applyTopK(params.topK, logits);
  if (params.topP < 1.0)
    applyTopP(params.topP, logits, probabilities);
  if (params.minP != 0.0)
    applyMinP(params.minP, logits, probabilities);
  softmax(logits, probabilities);
}

int64_t falcon::runtime::argmaxLowestId(llvm::ArrayRef<float> values) {
  int64_t best = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    if (std::isnan(values[i]))
      return static_cast<int64_t>(i);
    if (values[i] > values[best])
      best = static_cast<int64_t>(i);
  }
  return best;
}

int64_t falcon::runtime::drawFromDistribution(
    llvm::ArrayRef<float> probabilities, double u) {
  double total = 0;
  for (float p : probabilities)
    total += static_cast<double>(p);
  double target = u * total;
  double cumulative = 0;
  int64_t lastPositive = -1;
  for (size_t i = 0; i < probabilities.size(); ++i) {
    if (!(probabilities[i] > 0))
      continue;
    cumulative += static_cast<double>(probabilities[i]);
    lastPositive = static_cast<int64_t>(i);
    if (target < cumulative)
      return lastPositive;
  }
  // u * total rounded up to total (u within an ulp of 1).
  return lastPositive;
}

Sampler::Sampler(const SamplingParams &params)
    : params_(params), engine_(params.seed) {
  assert(validateSamplingParams(params).empty() && "invalid SamplingParams");
}

double Sampler::nextUniform() {
  return static_cast<double>(engine_() >> 11) * 0x1.0p-53;
}

int64_t Sampler::next(llvm::ArrayRef<float> logits,
                      llvm::ArrayRef<int64_t> previousIds) {
  scratch_.assign(logits.begin(), logits.end());
  warp(params_, previousIds, scratch_, probabilities_);
  if (params_.greedy())
    return argmaxLowestId(probabilities_);
  return drawFromDistribution(probabilities_, nextUniform());
}
