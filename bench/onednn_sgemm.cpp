//===- onednn_sgemm.cpp - oneDNN sgemm rate for given shapes --------------===//
//
// usage: onednn-sgemm REPEATS M,K,N [M,K,N ...]
//
// Prints, per shape, the median seconds of C[M,N] = A[M,K] * B[K,N] with
// oneDNN's dnnl_sgemm and its GFLOP/s: the peer for the compiler's prefill
// projections (bench/bench_cpu.py). Threads: OMP_NUM_THREADS.
//
//===----------------------------------------------------------------------===//

#include <dnnl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char **argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s REPEATS M,K,N [M,K,N ...]\n", argv[0]);
    return 2;
  }
  int repeats = std::atoi(argv[1]);
  for (int arg = 2; arg < argc; ++arg) {
    long m = 0, k = 0, n = 0;
    if (std::sscanf(argv[arg], "%ld,%ld,%ld", &m, &k, &n) != 3) {
      std::fprintf(stderr, "error: bad shape '%s'\n", argv[arg]);
      return 2;
    }
    std::vector<float> a(m * k, 0.5f), b(k * n, 0.25f), c(m * n, 0.0f);
    std::vector<double> seconds;
    for (int r = 0; r < repeats + 1; ++r) {
      auto start = std::chrono::steady_clock::now();
      if (dnnl_sgemm('N', 'N', m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f,
                     c.data(), n) != dnnl_success) {
        std::fprintf(stderr, "error: dnnl_sgemm failed for %s\n", argv[arg]);
        return 1;
      }
      std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
      if (r > 0) // the first run warms up
        seconds.push_back(elapsed.count());
    }
    std::sort(seconds.begin(), seconds.end());
    double median = seconds[seconds.size() / 2];
    std::printf("%ld,%ld,%ld %.6f %.2f\n", m, k, n, median,
                2.0 * m * k * n / median / 1e9);
  }
  return 0;
}
