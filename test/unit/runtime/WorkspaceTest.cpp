//===- WorkspaceTest.cpp - the CPU device's import-table allocator --------===//
//
// The callbacks the CPU device puts in a host library's runtime import table,
// called the way compiled code calls them: alignment, accounting, the limit,
// and the checks of the other entries.
//
//===----------------------------------------------------------------------===//

#include "hal/cpu/Workspace.h"

#include "gtest/gtest.h"

#include <cstring>
#include <string>
#include <vector>

using falcon::runtime::hal::cpu::Workspace;

namespace {

class CPUWorkspace : public ::testing::Test {
protected:
  void SetUp() override { workspace.bind(table); }

  void *alloc(uint64_t size, uint64_t alignment) {
    return table.alloc(table.context, size, alignment);
  }
  void release(void *pointer) { table.free(table.context, pointer); }

  Workspace workspace;
  falcon_runtime_imports_t table = {};
};

TEST_F(CPUWorkspace, FillsTheTable) {
  EXPECT_EQ(table.version, uint32_t(FALCON_RUNTIME_IMPORTS_VERSION));
  EXPECT_EQ(table.size, sizeof(falcon_runtime_imports_t));
  EXPECT_EQ(table.context, &workspace);
  EXPECT_TRUE(Workspace::isBound(table));
  EXPECT_EQ(Workspace::getBoundWorkspace(table), &workspace);
  falcon_runtime_imports_t empty = {};
  EXPECT_FALSE(Workspace::isBound(empty));
}

TEST_F(CPUWorkspace, AlignsAndCounts) {
  std::vector<void *> blocks;
  uint64_t expected = 0;
  for (uint64_t alignment : {1, 8, 16, 64, 4096}) {
    void *block = alloc(100, alignment);
    ASSERT_NE(block, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(block) % alignment, 0u);
    // The whole block is usable.
    std::memset(block, 0x5A, 100);
    blocks.push_back(block);
    expected += 100;
    EXPECT_EQ(workspace.getBytes(), expected);
  }
  EXPECT_EQ(workspace.getPeakBytes(), 500u);
  for (void *block : blocks)
    release(block);
  EXPECT_EQ(workspace.getBytes(), 0u);
  EXPECT_EQ(workspace.getPeakBytes(), 500u);
  release(nullptr);
  // A zero-byte block is a distinct, freeable pointer.
  void *empty = alloc(0, 8);
  EXPECT_NE(empty, nullptr);
  release(empty);
}

TEST_F(CPUWorkspace, RefusesWhatItCannotGive) {
  EXPECT_EQ(alloc(16, 24), nullptr) << "24 is not a power of two";
  EXPECT_EQ(alloc(UINT64_MAX - 8, 16), nullptr);
  workspace.setLimit(1000);
  void *first = alloc(600, 16);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(alloc(401, 16), nullptr);
  void *second = alloc(400, 16);
  EXPECT_NE(second, nullptr);
  EXPECT_EQ(workspace.getBytes(), 1000u);
  release(first);
  release(second);
  workspace.setLimit(0);
  void *large = alloc(1 << 20, 64);
  EXPECT_NE(large, nullptr);
  release(large);
  EXPECT_EQ(workspace.getBytes(), 0u);
}

// Compiled code as Workspace::invoke calls it: `function` is the table,
// words[0] the bytes of a block that stays allocated, words[1] of one more.
bool reachedTheEnd = false;
void *keptBlock = nullptr;
void allocateTwo(void *function, const uintptr_t *words) {
  auto *table = static_cast<falcon_runtime_imports_t *>(function);
  keptBlock = table->alloc(table->context, words[0], 64);
  void *second = table->alloc(table->context, words[1], 64);
  table->free(table->context, second);
  reachedTheEnd = true;
}

TEST_F(CPUWorkspace, AFailedAllocationEndsTheCall) {
  workspace.setLimit(1000);
  // The second block passes the limit: the call ends there, the first block
  // is freed, and the reason names the bytes and the limit.
  uintptr_t tooMuch[2] = {600, 600};
  std::string failure = workspace.invoke(allocateTwo, &table, tooMuch);
  EXPECT_EQ(failure, "the compiled code could not allocate 600 bytes of workspace: the "
                     "workspace limit is 1000 bytes");
  EXPECT_FALSE(reachedTheEnd);
  EXPECT_EQ(workspace.getBytes(), 0u);
  // A call that fits returns, and what it still holds (its results) stays
  // allocated for the caller to release.
  uintptr_t fits[2] = {600, 400};
  EXPECT_EQ(workspace.invoke(allocateTwo, &table, fits), "");
  EXPECT_TRUE(reachedTheEnd);
  EXPECT_EQ(workspace.getBytes(), 600u);
  // A later failed call frees only its own blocks.
  reachedTheEnd = false;
  void *result = keptBlock;
  uintptr_t second[2] = {300, 200};
  EXPECT_NE(workspace.invoke(allocateTwo, &table, second), "");
  EXPECT_FALSE(reachedTheEnd);
  EXPECT_EQ(workspace.getBytes(), 600u);
  release(result);
  EXPECT_EQ(workspace.getBytes(), 0u);
  // Outside a call a failed allocation is a null pointer, as before.
  EXPECT_EQ(alloc(2000, 64), nullptr);
  workspace.setLimit(0);
  // Beyond the machine's memory: refused before the OOM killer would see it.
  uintptr_t huge[2] = {64, uintptr_t(1) << 50};
  failure = workspace.invoke(allocateTwo, &table, huge);
  EXPECT_NE(failure.find("could not allocate 1125899906842624 bytes of workspace: only "),
            std::string::npos)
      << failure;
  EXPECT_EQ(workspace.getBytes(), 0u);
}

TEST_F(CPUWorkspace, AllReduceOfOneRankAndTraceEnds) {
  float data[3] = {1, 2, 3};
  EXPECT_EQ(table.all_reduce_sum_f32(table.context, data, 3), 0);
  EXPECT_EQ(data[2], 3.0f);
  EXPECT_EQ(table.all_reduce_sum_f32(table.context, nullptr, 0), 0);
  EXPECT_NE(table.all_reduce_sum_f32(table.context, data, -1), 0);
  EXPECT_NE(table.all_reduce_sum_f32(table.context, nullptr, 3), 0);
  // An unmatched end is ignored, not a crash.
  table.trace_end(table.context);
  table.trace_begin(table.context, "region");
  table.trace_end(table.context);
}

} // namespace
