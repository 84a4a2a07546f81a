//===- WeightStoreTest.cpp - the mapped weights under a changing file -----===//

#include "core/WeightStore.h"

#include "gtest/gtest.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"

#include <cstdio>
#include <cstdlib>
#include <unistd.h>
#include <vector>

using falcon::runtime::WeightStore;

namespace {

// weights.bin truncated under the mapping: a read past the new end is a
// one-line message naming the file and exit status 135, not a death by
// SIGBUS with a stack dump.
TEST(RuntimeWeightStore, TruncatedWhileMappedIsReported) {
  llvm::SmallString<128> path;
  ASSERT_FALSE(llvm::sys::fs::createTemporaryFile("weights", "bin", path));
  std::vector<uint8_t> bytes(3 * 4096, 7);
  {
    std::FILE *file = std::fopen(path.c_str(), "wb");
    ASSERT_NE(file, nullptr);
    std::fwrite(bytes.data(), 1, bytes.size(), file);
    std::fclose(file);
  }
  std::unique_ptr<WeightStore> store;
  ASSERT_EQ(WeightStore::open(path, bytes.size(), 0, /*verifyChecksum=*/false, store),
            nullptr);
  ASSERT_EQ(store->checkUnchanged(), nullptr);
  EXPECT_EXIT(
      {
        if (::truncate(path.c_str(), 0) != 0)
          std::_Exit(2);
        volatile uint8_t value = store->data()[2 * 4096];
        std::_Exit(value == 7 ? 3 : 4);
      },
      ::testing::ExitedWithCode(135), "weights.*bin: truncated while in use");
  llvm::sys::fs::remove(path);
}

} // namespace
