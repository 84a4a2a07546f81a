//===- tokenizer_encode.cpp - time the runtime's tokenizer encode ---------===//
//
// falcon-tokenizer-bench TOKENIZER TEXT_FILE [--runs N]
//
// Reads TEXT_FILE, encodes it once to warm up (the word cache fills, as in a
// long-running server), then times N encodes of the whole text with
// falcon_tokenizer_encode on the calling thread and prints one line per run:
// "bytes ids seconds". bench/bench_tokenizer.py drives it.
//
//===----------------------------------------------------------------------===//

#include "falcon/tokenizer.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

static void check(falcon_status_t status) {
  if (!status)
    return;
  std::fprintf(stderr, "falcon-tokenizer-bench: error: %s\n",
               falcon_status_message(status));
  falcon_status_free(status);
  std::exit(1);
}

int main(int argc, char **argv) {
  if (argc != 3 && !(argc == 5 && std::strcmp(argv[3], "--runs") == 0)) {
    std::fprintf(stderr, "usage: falcon-tokenizer-bench TOKENIZER TEXT_FILE [--runs N]\n");
    return 2;
  }
  int runs = argc == 5 ? std::atoi(argv[4]) : 1;
  std::ifstream file(argv[2], std::ios::binary);
  std::stringstream buffer;
  buffer << file.rdbuf();
  std::string text = buffer.str();

  falcon_tokenizer_t *tokenizer = nullptr;
  check(falcon_tokenizer_open(argv[1], &tokenizer));
  std::vector<int64_t> ids(text.size() + 16);
  size_t count = 0;
  check(falcon_tokenizer_encode(tokenizer, text.data(), text.size(), false,
                                ids.data(), ids.size(), &count));
  for (int run = 0; run < runs; ++run) {
    auto start = std::chrono::steady_clock::now();
    check(falcon_tokenizer_encode(tokenizer, text.data(), text.size(), false,
                                  ids.data(), ids.size(), &count));
    std::chrono::duration<double> seconds =
        std::chrono::steady_clock::now() - start;
    std::printf("%zu %zu %.6f\n", text.size(), count, seconds.count());
  }
  falcon_tokenizer_release(tokenizer);
  return 0;
}
