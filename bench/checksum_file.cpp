//===- checksum_file.cpp - the weights checksum of a file -----------------===//
//
// usage: falcon-checksum-file FILE [--threads N] [--time]
//
// Prints FILE's checksum as manifest.json spells it (falcon/Support/
// Checksum.h), computed the way the runtime verifies weights.bin: the file
// mapped read-only with MADV_SEQUENTIAL, hashed on N threads (0, the
// default: one per hardware thread). --time adds a second line with the
// seconds spent mapping, hashing and unmapping. bench/bench_checksum.py
// times it against the page-cache read rate; the falcon-run lit tests' fake
// artifacts (test/Runtime/Inputs/fake_artifact.py) get their checksum here.
//
//===----------------------------------------------------------------------===//

#include "falcon/Support/Checksum.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
  const char *path = nullptr;
  unsigned threads = 0;
  bool time = false;
  for (int index = 1; index < argc; ++index) {
    if (!std::strcmp(argv[index], "--threads") && index + 1 < argc)
      threads = unsigned(std::strtoul(argv[++index], nullptr, 10));
    else if (!std::strcmp(argv[index], "--time"))
      time = true;
    else if (!path && argv[index][0] != '-')
      path = argv[index];
    else
      path = nullptr, index = argc;
  }
  if (!path) {
    std::fprintf(stderr,
                 "usage: falcon-checksum-file FILE [--threads N] [--time]\n");
    return 2;
  }
  auto start = std::chrono::steady_clock::now();
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat info;
  if (fd < 0 || fstat(fd, &info) != 0) {
    std::fprintf(stderr, "falcon-checksum-file: %s: %s\n", path,
                 std::strerror(errno));
    return 1;
  }
  uint64_t size = uint64_t(info.st_size);
  const uint8_t *data = nullptr;
  if (size > 0) {
    void *mapping = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapping == MAP_FAILED) {
      std::fprintf(stderr, "falcon-checksum-file: %s: cannot map: %s\n", path,
                   std::strerror(errno));
      return 1;
    }
    data = static_cast<const uint8_t *>(mapping);
    madvise(mapping, size, MADV_SEQUENTIAL);
  }
  close(fd);
  uint64_t checksum = falcon::computeChecksum(data, size, threads);
  if (size > 0)
    munmap(const_cast<uint8_t *>(data), size);
  std::chrono::duration<double> seconds =
      std::chrono::steady_clock::now() - start;
  std::printf("%s\n", falcon::formatChecksum(checksum).c_str());
  if (time)
    std::printf("%.6f\n", seconds.count());
  return 0;
}
