//===- Sampler.h - token sampling as Hugging Face generate() does -*- C++ -*-===//
//
// The next token of a row from its logits: the logits processors of
// transformers' generate() (5.24), applied in generate()'s order, then a draw
// from the resulting distribution with the sampler's own seeded RNG.
//
//   repetition penalty -> [sampling only] temperature -> top-k -> top-p
//   -> min-p -> softmax -> inverse-CDF draw        (greedy: argmax instead)
//
// The distributions equal transformers' to 1e-6 per element with the same
// tokens filtered (test/unit/runtime/SamplerTest.cpp against
// test/fixtures/sampling/golden.txt, from tools/gen_sampling_golden.py); see
// docs/sampling.md.
//
//===----------------------------------------------------------------------===//

#ifndef FALCON_RUNTIME_CORE_SAMPLER_H
#define FALCON_RUNTIME_CORE_SAMPLER_H

#include "llvm/ADT/ArrayRef.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace falcon::runtime {

/// HF GenerationConfig's knobs, with "off" values that add no processor.
/// The floating-point settings are doubles, as the Python floats given to
/// transformers are: each is rounded to float32 where torch rounds it (for
/// top-p, after computing 1 - top_p in double), so 0.9 here behaves as
/// top_p=0.9 there.
struct SamplingParams {
  /// 0 = greedy (argmax, the lowest id among equal maxima; only the
  /// repetition penalty applies); otherwise > 0, 1 = off.
  double temperature = 1.0;
  /// 0 = off; k > vocab acts as vocab. Keeps every token whose (processed)
  /// logit is >= the k-th largest, so ties can keep more than k.
  int64_t topK = 0;
  /// In (0, 1]; 1 = off.
  double topP = 1.0;
  /// In [0, 1]; 0 = off.
  double minP = 0.0;
  /// > 0; 1 = off. Applied once to each distinct previous id.
  double repetitionPenalty = 1.0;
  /// Seeds the std::mt19937_64 of a Sampler.
  uint64_t seed = 0;

  bool greedy() const { return temperature == 0.0; }
};

/// The empty string when `params` are valid; otherwise one line naming the
/// first bad parameter (by its transformers name) and its value, e.g.
/// "top_p must be in (0, 1] (1 = off), got 1.5".
std::string validateSamplingParams(const SamplingParams &params);

/// Applies the processors of generate() for `params` (which must be valid) to
/// one row of `logits` in place and writes the distribution torch.multinomial
/// would draw from to `probabilities` (resized to logits.size()): the
/// softmax of the processed logits, with exact zeros for filtered tokens.
/// Greedy params give a one-hot distribution on the argmax of the penalized
/// logits. `previousIds` are the row's prompt and generated tokens; ids
/// outside [0, vocab) are ignored (transformers ignores ids >= vocab).
///
/// Arithmetic follows torch on the CPU in float32: penalty and temperature
/// as float32 multiplies/divides by the float32-rounded setting; top-k by
/// comparison with the k-th largest value; top-p on the ascending (stable)
/// sort, a float32 softmax and its cumulative sum (accumulated in double and
/// rounded per element, as torch's CPU cumsum does), removing tokens whose
/// sum is <= float32(1 - top_p) and always keeping the largest; min-p
/// removing probabilities < float32(min_p) * max probability (a float32
/// product). Softmaxes are computed in double and rounded to float32 (within
/// 6e-8 of torch's). Among equal logits that straddle the top-p cut, the
/// lower ids are removed first; torch's unstable sort picks unspecified
/// members of such a group (the same count, hence the same probabilities).
void warp(const SamplingParams &params, llvm::ArrayRef<int64_t> previousIds,
          llvm::MutableArrayRef<float> logits,
          std::vector<float> &probabilities);

/// The index of the largest value; the lowest such index on ties. The first
/// NaN wins, as in torch.argmax, so that a numerically broken model shows up
/// in the ids instead of being papered over.
int64_t argmaxLowestId(llvm::ArrayRef<float> values);

/// Inverse-CDF draw: the first index i whose cumulative probability (summed
/// in double in index order) exceeds u * total, for u in [0, 1). A token of
/// probability 0 is never returned. `probabilities` must have a positive sum.
int64_t drawFromDistribution(llvm::ArrayRef<float> probabilities, double u);

/// Samples the tokens of one row. Reproducible: a seed gives the same tokens
/// for the same logits on every platform and compiler (std::mt19937_64's
/// output sequence is fixed by the C++ standard, and the uniform double is
/// computed here, not by a std:: distribution). Each sampled token consumes
/// exactly one 64-bit output; greedy tokens consume none.
class Sampler {
public:
  /// `params` must be valid (validateSamplingParams).
  explicit Sampler(const SamplingParams &params);

  /// The next token of a row from its `logits` (vocab floats, not modified)
  /// and its previous ids (prompt + generated so far).
  int64_t next(llvm::ArrayRef<float> logits,
               llvm::ArrayRef<int64_t> previousIds);

  /// The distribution of the last next() call.
  llvm::ArrayRef<float> probabilities() const { return probabilities_; }
  const SamplingParams &params() const { return params_; }

  /// The next uniform double in [0, 1): the top 53 bits of one
  /// std::mt19937_64 output times 2^-53.
  double nextUniform();

private:
  SamplingParams params_;
  std::mt19937_64 engine_;
  std::vector<float> scratch_;
  std::vector<float> probabilities_;
};

} // namespace falcon::runtime

#endif // FALCON_RUNTIME_CORE_SAMPLER_H
