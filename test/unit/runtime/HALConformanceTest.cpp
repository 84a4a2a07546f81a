//===- HALConformanceTest.cpp - what every device must do -----------------===//
//
// One suite, instantiated for every device this build has (hal::
// getDeviceNames()). A device that answers UNAVAILABLE at creation (no driver,
// no GPU) is skipped with its message; every other failure fails. The tests
// only use the interface: buffers are read back through copies or mappings,
// never through the CPU device's pointers. The executable is the fake host
// library of the session tests (FakeModel.c).
//
//===----------------------------------------------------------------------===//

#include "FakeArtifact.h"
#include "FakeModel.h"

#include "comm/Channel.h"
#include "comm/local/LocalChannel.h"
#include "hal/Device.h"

#include "falcon/Support/ArtifactABI.h"
#include "falcon/Support/RuntimeImports.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/TimeProfiler.h"
#include "llvm/Support/raw_ostream.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include <cstring>
#include <numeric>
#include <string>
#include <vector>

using namespace falcon::runtime;
using ::testing::HasSubstr;

#ifndef FALCON_FAKE_MODEL_LIBRARY
#error "FALCON_FAKE_MODEL_LIBRARY must name the fake host library"
#endif

namespace {

/// A status turned into plain values (and freed).
struct Result {
  falcon_status_code_t code;
  std::string message;
  bool ok() const { return code == FALCON_STATUS_OK; }
};

Result check(falcon_status_t status) {
  Result result{falcon_status_code(status), falcon_status_message(status)};
  falcon_status_free(status);
  return result;
}

#define EXPECT_OK(expr)                                                        \
  do {                                                                         \
    Result resultTmp = check(expr);                                            \
    EXPECT_TRUE(resultTmp.ok()) << resultTmp.message;                          \
  } while (false)
#define ASSERT_OK(expr)                                                        \
  do {                                                                         \
    Result resultTmp = check(expr);                                            \
    ASSERT_TRUE(resultTmp.ok()) << resultTmp.message;                          \
  } while (false)

int64_t fakeCounter(const char *name) {
  return falcon::test::readFakeCounter(FALCON_FAKE_MODEL_LIBRARY, name);
}

constexpr falcon_hal_memory_type_t kHostVisible =
    FALCON_HAL_MEMORY_TYPE_HOST_LOCAL | FALCON_HAL_MEMORY_TYPE_HOST_VISIBLE;

const char *const kFakeExports[] = {"_mlir_ciface_forward",
                                    "_mlir_ciface_fake_scale"};

class HALConformance : public ::testing::TestWithParam<const char *> {
protected:
  void SetUp() override {
    falcon_hal_device_params_t params = {GetParam(), 0};
    falcon_status_t status = hal::createDevice(params, &device);
    if (falcon_status_code(status) == FALCON_STATUS_UNAVAILABLE) {
      std::string message = falcon_status_message(status);
      falcon_status_free(status);
      GTEST_SKIP() << "device '" << GetParam()
                   << "' is unavailable: " << message;
    }
    ASSERT_OK(status);
    ASSERT_OK(hal().createQueue(device, &queue));
  }

  void TearDown() override {
    for (falcon_hal_buffer_t *buffer : buffers)
      hal::freeBuffer(buffer);
    if (executable)
      hal().unloadExecutable(device, executable);
    if (queue)
      hal().destroyQueue(device, queue);
    hal::destroyDevice(device);
  }

  const falcon_hal_device_vtable_t &hal() const { return *device->vtable; }

  /// A buffer freed by TearDown.
  falcon_hal_buffer_t *allocate(falcon_hal_memory_type_t memoryType,
                                uint64_t size) {
    falcon_hal_buffer_t *buffer = nullptr;
    Result result =
        check(hal().allocateBuffer(device, memoryType, size, &buffer));
    EXPECT_TRUE(result.ok()) << result.message;
    if (buffer)
      buffers.push_back(buffer);
    return buffer;
  }

  /// `size` bytes of `buffer` from `offset`, through the queue.
  std::vector<uint8_t> read(falcon_hal_buffer_t *buffer, uint64_t offset,
                            uint64_t size) {
    std::vector<uint8_t> bytes(size);
    EXPECT_OK(
        hal().copyBufferToHost(queue, {buffer, offset}, bytes.data(), size));
    EXPECT_OK(hal().finish(queue));
    return bytes;
  }

  template <typename T>
  std::vector<T> readAs(falcon_hal_buffer_t *buffer, size_t count) {
    std::vector<uint8_t> bytes = read(buffer, 0, count * sizeof(T));
    std::vector<T> values(count);
    std::memcpy(values.data(), bytes.data(), bytes.size());
    return values;
  }

  falcon_hal_allocator_statistics_t statistics() {
    falcon_hal_allocator_statistics_t result = {};
    EXPECT_OK(hal().queryAllocatorStatistics(device, &result));
    return result;
  }

  void loadFake() {
    falcon_hal_executable_params_t params = {FALCON_FAKE_MODEL_LIBRARY,
                                             kFakeExports, 2};
    ASSERT_OK(hal().loadExecutable(device, &params, &executable));
  }

  falcon_hal_device_t *device = nullptr;
  falcon_hal_queue_t *queue = nullptr;
  falcon_hal_executable_t *executable = nullptr;
  std::vector<falcon_hal_buffer_t *> buffers;
};

//===----------------------------------------------------------------------===//
// Allocator and buffers
//===----------------------------------------------------------------------===//

TEST_P(HALConformance, AllocatesEveryMemoryType) {
  const falcon_hal_memory_type_t memoryTypes[] = {
      FALCON_HAL_MEMORY_TYPE_DEVICE_LOCAL, FALCON_HAL_MEMORY_TYPE_HOST_LOCAL,
      kHostVisible,
      FALCON_HAL_MEMORY_TYPE_DEVICE_LOCAL |
          FALCON_HAL_MEMORY_TYPE_HOST_VISIBLE};
  uint64_t before = statistics().bufferBytes;
  for (falcon_hal_memory_type_t memoryType : memoryTypes) {
    falcon_hal_buffer_t *buffer = allocate(memoryType, 100);
    ASSERT_NE(buffer, nullptr);
    EXPECT_EQ(buffer->size, 100u);
    EXPECT_EQ(buffer->device, device);
    // A device may add types, never drop the requested ones.
    EXPECT_EQ(buffer->memoryType & memoryType, memoryType);
    // New buffers are zero-filled.
    EXPECT_EQ(read(buffer, 0, 100), std::vector<uint8_t>(100, 0));
  }
  falcon_hal_allocator_statistics_t held = statistics();
  EXPECT_EQ(held.bufferBytes, before + 400);
  EXPECT_GE(held.bufferPeakBytes, held.bufferBytes);
  for (falcon_hal_buffer_t *buffer : buffers)
    hal::freeBuffer(buffer);
  buffers.clear();
  EXPECT_EQ(statistics().bufferBytes, before);
  EXPECT_EQ(statistics().bufferPeakBytes, held.bufferPeakBytes);

  // An empty buffer is a buffer.
  falcon_hal_buffer_t *empty = allocate(FALCON_HAL_MEMORY_TYPE_DEVICE_LOCAL, 0);
  ASSERT_NE(empty, nullptr);
  EXPECT_EQ(empty->size, 0u);
}

TEST_P(HALConformance, RefusesBadMemoryTypes) {
  falcon_hal_buffer_t *buffer = nullptr;
  Result result = check(hal().allocateBuffer(device, 0, 16, &buffer));
  EXPECT_EQ(result.code, FALCON_STATUS_INVALID_ARGUMENT);
  EXPECT_THAT(result.message, HasSubstr("memory type 0x0"));
  EXPECT_EQ(buffer, nullptr);
  result = check(hal().allocateBuffer(device, 1u << 7, 16, &buffer));
  EXPECT_EQ(result.code, FALCON_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(buffer, nullptr);
  // An absurd size is an error, not an abort.
  result = check(hal().allocateBuffer(
      device, FALCON_HAL_MEMORY_TYPE_DEVICE_LOCAL, UINT64_MAX, &buffer));
  EXPECT_EQ(result.code, FALCON_STATUS_RESOURCE_EXHAUSTED);
  EXPECT_EQ(buffer, nullptr);
}

TEST_P(HALConformance, MapsOnlyHostVisibleBuffers) {
  falcon_hal_buffer_t *deviceLocal =
      allocate(FALCON_HAL_MEMORY_TYPE_DEVICE_LOCAL, 64);
  ASSERT_NE(deviceLocal, nullptr);
  void *data = reinterpret_cast<void *>(0x1);
  Result result = check(hal().mapBuffer(device, deviceLocal, 0, 64,
                                        FALCON_HAL_MEMORY_ACCESS_READ, &data));
  // A device may report its device-local memory host-visible too (unified
  // memory); then, and only then, it maps.
  if (deviceLocal->memoryType & FALCON_HAL_MEMORY_TYPE_HOST_VISIBLE) {
    EXPECT_TRUE(result.ok()) << result.message;
    EXPECT_OK(hal().unmapBuffer(device, deviceLocal));
    return;
  }
  EXPECT_EQ(result.code, FALCON_STATUS_FAILED_PRECONDITION);
  EXPECT_THAT(result.message, HasSubstr("is not host-visible"));
  EXPECT_EQ(data, nullptr);
}

TEST_P(HALConformance, MapUnmapRoundTrip) {
  falcon_hal_buffer_t *buffer = allocate(kHostVisible, 256);
  ASSERT_NE(buffer, nullptr);
  void *data = nullptr;
  ASSERT_OK(hal().mapBuffer(device, buffer, 0, 256,
                            FALCON_HAL_MEMORY_ACCESS_WRITE, &data));
  ASSERT_NE(data, nullptr);
  for (int index = 0; index < 256; ++index)
    static_cast<uint8_t *>(data)[index] = uint8_t(index);
  // One mapping at a time, and the queue stays off a mapped buffer.
  void *second = nullptr;
  EXPECT_EQ(check(hal().mapBuffer(device, buffer, 0, 1,
                                  FALCON_HAL_MEMORY_ACCESS_READ, &second))
                .code,
            FALCON_STATUS_FAILED_PRECONDITION);
  uint8_t byte = 0;
  EXPECT_EQ(check(hal().copyBufferToHost(queue, {buffer, 0}, &byte, 1)).code,
            FALCON_STATUS_FAILED_PRECONDITION);
  ASSERT_OK(hal().unmapBuffer(device, buffer));
  EXPECT_EQ(check(hal().unmapBuffer(device, buffer)).code,
            FALCON_STATUS_FAILED_PRECONDITION);

  // A mapping at an offset sees the bytes written, and so does the queue.
  ASSERT_OK(hal().mapBuffer(device, buffer, 100, 50,
                            FALCON_HAL_MEMORY_ACCESS_READ, &data));
  EXPECT_EQ(static_cast<uint8_t *>(data)[0], 100);
  EXPECT_EQ(static_cast<uint8_t *>(data)[49], 149);
  ASSERT_OK(hal().unmapBuffer(device, buffer));
  EXPECT_EQ(read(buffer, 200, 2), (std::vector<uint8_t>{200, 201}));

  Result result = check(hal().mapBuffer(device, buffer, 200, 57,
                                        FALCON_HAL_MEMORY_ACCESS_READ, &data));
  EXPECT_EQ(result.code, FALCON_STATUS_OUT_OF_RANGE);
  EXPECT_EQ(result.message, "mapBuffer: bytes [200, 200 + 57) are outside the "
                            "buffer of 256 bytes");
  EXPECT_EQ(check(hal().mapBuffer(device, buffer, 0, 1, 0, &data)).code,
            FALCON_STATUS_INVALID_ARGUMENT);
}

TEST_P(HALConformance, WrapsHostMemoryWithoutCopying) {
  std::vector<uint8_t> host(40, 7);
  falcon_hal_buffer_t *wrapped = nullptr;
  uint64_t before = statistics().bufferBytes;
  ASSERT_OK(hal().wrapHostMemory(device, host.data(), host.size(), &wrapped));
  buffers.push_back(wrapped);
  EXPECT_EQ(wrapped->size, 40u);
  EXPECT_EQ(wrapped->memoryType & kHostVisible, kHostVisible);
  // Wrapped memory is the caller's, not the allocator's.
  EXPECT_EQ(statistics().bufferBytes, before);
  EXPECT_EQ(read(wrapped, 0, 40), host);
  const uint8_t update[3] = {1, 2, 3};
  ASSERT_OK(hal().copyHostToBuffer(queue, update, {wrapped, 10}, 3));
  ASSERT_OK(hal().finish(queue));
  EXPECT_EQ(host[10], 1);
  EXPECT_EQ(host[12], 3);
  EXPECT_EQ(host[13], 7);
  falcon_hal_buffer_t *null = nullptr;
  EXPECT_EQ(check(hal().wrapHostMemory(device, nullptr, 8, &null)).code,
            FALCON_STATUS_INVALID_ARGUMENT);
}

//===----------------------------------------------------------------------===//
// Queue transfers and events
//===----------------------------------------------------------------------===//

TEST_P(HALConformance, CopyRoundTrip) {
  falcon_hal_buffer_t *first =
      allocate(FALCON_HAL_MEMORY_TYPE_DEVICE_LOCAL, 64);
  falcon_hal_buffer_t *second =
      allocate(FALCON_HAL_MEMORY_TYPE_DEVICE_LOCAL, 64);
  ASSERT_TRUE(first && second);
  std::vector<uint8_t> source(32);
  std::iota(source.begin(), source.end(), uint8_t(1));
  ASSERT_OK(hal().copyHostToBuffer(queue, source.data(), {first, 8}, 32));
  // The host may reuse its memory as soon as the copy is enqueued.
  std::fill(source.begin(), source.end(), 0xFF);
  ASSERT_OK(hal().copyBuffer(queue, {first, 8}, {second, 16}, 32));
  ASSERT_OK(hal().finish(queue));
  std::vector<uint8_t> expected(64, 0);
  std::iota(expected.begin() + 16, expected.begin() + 48, uint8_t(1));
  EXPECT_EQ(read(second, 0, 64), expected);
  // Disjoint ranges of one buffer are fine.
  ASSERT_OK(hal().copyBuffer(queue, {second, 16}, {second, 48}, 16));
  EXPECT_EQ(read(second, 48, 2), (std::vector<uint8_t>{1, 2}));
}

TEST_P(HALConformance, CopyErrors) {
  falcon_hal_buffer_t *buffer =
      allocate(FALCON_HAL_MEMORY_TYPE_DEVICE_LOCAL, 64);
  falcon_hal_buffer_t *other =
      allocate(FALCON_HAL_MEMORY_TYPE_DEVICE_LOCAL, 16);
  ASSERT_TRUE(buffer && other);
  Result result = check(hal().copyBuffer(queue, {buffer, 0}, {buffer, 8}, 16));
  EXPECT_EQ(result.code, FALCON_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(result.message,
            "copyBuffer: source bytes [0, 16) overlap target bytes [8, 24)");
  result = check(hal().copyBuffer(queue, {buffer, 0}, {other, 8}, 16));
  EXPECT_EQ(result.code, FALCON_STATUS_OUT_OF_RANGE);
  EXPECT_EQ(result.message, "copyBuffer: bytes [8, 8 + 16) are outside the "
                            "buffer of 16 bytes");
  uint8_t host[8] = {};
  EXPECT_EQ(
      check(hal().copyBufferToHost(queue, {other, UINT64_MAX}, host, 8)).code,
      FALCON_STATUS_OUT_OF_RANGE);
  EXPECT_EQ(check(hal().copyHostToBuffer(queue, nullptr, {other, 0}, 8)).code,
            FALCON_STATUS_INVALID_ARGUMENT);
  // Refused work leaves nothing for finish to report.
  EXPECT_OK(hal().finish(queue));
}

TEST_P(HALConformance, FillPatterns) {
  falcon_hal_buffer_t *buffer =
      allocate(FALCON_HAL_MEMORY_TYPE_DEVICE_LOCAL, 40);
  ASSERT_NE(buffer, nullptr);
  const uint8_t byte = 0xAB;
  const uint16_t half = 0x1234;
  const uint32_t word = 0xDEADBEEF;
  const uint64_t doubleWord = 0x0102030405060708ULL;
  ASSERT_OK(hal().fillBuffer(queue, {buffer, 0}, 4, &byte, 1));
  ASSERT_OK(hal().fillBuffer(queue, {buffer, 4}, 4, &half, 2));
  ASSERT_OK(hal().fillBuffer(queue, {buffer, 8}, 8, &word, 4));
  ASSERT_OK(hal().fillBuffer(queue, {buffer, 16}, 16, &doubleWord, 8));
  std::vector<uint8_t> bytes = read(buffer, 0, 40);
  std::vector<uint8_t> expected(40, 0);
  std::memset(expected.data(), 0xAB, 4);
  std::memcpy(expected.data() + 4, &half, 2);
  std::memcpy(expected.data() + 6, &half, 2);
  std::memcpy(expected.data() + 8, &word, 4);
  std::memcpy(expected.data() + 12, &word, 4);
  std::memcpy(expected.data() + 16, &doubleWord, 8);
  std::memcpy(expected.data() + 24, &doubleWord, 8);
  EXPECT_EQ(bytes, expected);

  Result result = check(hal().fillBuffer(queue, {buffer, 0}, 6, &word, 3));
  EXPECT_EQ(result.code, FALCON_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(result.message,
            "fillBuffer: the pattern is 3 bytes; 1, 2, 4 or 8 are supported");
  result = check(hal().fillBuffer(queue, {buffer, 0}, 6, &word, 4));
  EXPECT_EQ(result.code, FALCON_STATUS_INVALID_ARGUMENT);
  EXPECT_THAT(result.message,
              HasSubstr("not a multiple of the 4-byte pattern"));
  EXPECT_EQ(check(hal().fillBuffer(queue, {buffer, 36}, 8, &word, 4)).code,
            FALCON_STATUS_OUT_OF_RANGE);
}

TEST_P(HALConformance, Events) {
  falcon_hal_event_t *event = nullptr;
  ASSERT_OK(hal().createEvent(device, &event));
  bool signaled = true;
  EXPECT_OK(hal().queryEvent(device, event, &signaled));
  EXPECT_FALSE(signaled);
  // Nothing would ever signal an event that was never recorded.
  Result result = check(hal().synchronizeEvent(device, event));
  EXPECT_EQ(result.code, FALCON_STATUS_FAILED_PRECONDITION);
  EXPECT_THAT(result.message, HasSubstr("never recorded"));
  EXPECT_EQ(check(hal().waitEvent(queue, event)).code,
            FALCON_STATUS_FAILED_PRECONDITION);

  // Work before the record is done once the event is reached, as seen from
  // the host and from a second queue.
  falcon_hal_buffer_t *buffer = allocate(kHostVisible, 4);
  ASSERT_NE(buffer, nullptr);
  const uint32_t value = 42;
  ASSERT_OK(hal().fillBuffer(queue, {buffer, 0}, 4, &value, 4));
  ASSERT_OK(hal().recordEvent(queue, event));
  falcon_hal_queue_t *other = nullptr;
  ASSERT_OK(hal().createQueue(device, &other));
  EXPECT_OK(hal().waitEvent(other, event));
  uint32_t copied = 0;
  EXPECT_OK(hal().copyBufferToHost(other, {buffer, 0}, &copied, 4));
  EXPECT_OK(hal().finish(other));
  EXPECT_EQ(copied, 42u);
  hal().destroyQueue(device, other);
  ASSERT_OK(hal().synchronizeEvent(device, event));
  EXPECT_OK(hal().queryEvent(device, event, &signaled));
  EXPECT_TRUE(signaled);
  void *data = nullptr;
  ASSERT_OK(hal().mapBuffer(device, buffer, 0, 4, FALCON_HAL_MEMORY_ACCESS_READ,
                            &data));
  EXPECT_EQ(*static_cast<uint32_t *>(data), 42u);
  EXPECT_OK(hal().unmapBuffer(device, buffer));
  hal().destroyEvent(device, event);
}

//===----------------------------------------------------------------------===//
// Executables and launch
//===----------------------------------------------------------------------===//

TEST_P(HALConformance, LoadsExecutableAndLooksUpExports) {
  loadFake();
  uint32_t ordinal = 99;
  ASSERT_OK(
      hal().lookupExport(device, executable, "_mlir_ciface_forward", &ordinal));
  EXPECT_EQ(ordinal, 0u);
  ASSERT_OK(hal().lookupExport(device, executable, "_mlir_ciface_fake_scale",
                               &ordinal));
  EXPECT_EQ(ordinal, 1u);
  // Only what was resolved at load can be launched, even if the file has it.
  Result result = check(
      hal().lookupExport(device, executable, "fake_model_calls", &ordinal));
  EXPECT_EQ(result.code, FALCON_STATUS_NOT_FOUND);
  EXPECT_THAT(result.message, HasSubstr("no export 'fake_model_calls'"));

  int64_t geometry[falcon::kGeometryFieldCount] = {};
  ASSERT_OK(hal().readExecutableConstants(
      device, executable, falcon::kGeometrySymbol.data(), geometry,
      falcon::kGeometryFieldCount));
  EXPECT_EQ(geometry[falcon::kGeometryVocabSize], FAKE_VOCAB_SIZE);
  EXPECT_EQ(geometry[falcon::kGeometryHeadDim], FAKE_HEAD_DIM);
  result = check(hal().readExecutableConstants(device, executable,
                                               "no_such_array", geometry, 1));
  EXPECT_EQ(result.code, FALCON_STATUS_NOT_FOUND);
  EXPECT_EQ(result.message, "the host library exports no 'no_such_array'");
}

TEST_P(HALConformance, LoadErrors) {
  const char *const missingExport[] = {"_mlir_ciface_forward",
                                       "no_such_export"};
  falcon_hal_executable_params_t params = {FALCON_FAKE_MODEL_LIBRARY,
                                           missingExport, 2};
  falcon_hal_executable_t *loaded = nullptr;
  Result result = check(hal().loadExecutable(device, &params, &loaded));
  EXPECT_EQ(result.code, FALCON_STATUS_FAILED_PRECONDITION);
  EXPECT_THAT(result.message,
              HasSubstr("entry point 'no_such_export' not found"));
  EXPECT_EQ(loaded, nullptr);
  // The failed load left nothing loaded.
  EXPECT_EQ(fakeCounter("fake_model_calls"), -1);

  params = {"/nonexistent/libfake.so", kFakeExports, 1};
  result = check(hal().loadExecutable(device, &params, &loaded));
  EXPECT_EQ(result.code, FALCON_STATUS_NOT_FOUND);
  EXPECT_EQ(loaded, nullptr);
}

/// fake_scale's arguments over `result` and `values`, `count` f32 each.
std::vector<falcon_hal_argument_t> scaleArguments(falcon_hal_buffer_t *result,
                                                  falcon_hal_buffer_t *values,
                                                  int64_t count,
                                                  int64_t factor) {
  return {
      hal::makeBufferArgument(FALCON_HAL_ARGUMENT_RESULT, "scaled", {result, 0},
                              FALCON_HAL_ELEMENT_TYPE_F32, {count}),
      hal::makeBufferArgument(FALCON_HAL_ARGUMENT_BUFFER, "values", {values, 0},
                              FALCON_HAL_ELEMENT_TYPE_F32, {count}),
      hal::makeInt64Argument("factor", factor)};
}

TEST_P(HALConformance, LaunchPassesBuffersAndPlacesResults) {
  loadFake();
  uint32_t ordinal = 0;
  ASSERT_OK(hal().lookupExport(device, executable, "_mlir_ciface_fake_scale",
                               &ordinal));
  falcon_hal_buffer_t *values =
      allocate(FALCON_HAL_MEMORY_TYPE_DEVICE_LOCAL, 32);
  falcon_hal_buffer_t *result =
      allocate(FALCON_HAL_MEMORY_TYPE_DEVICE_LOCAL, 32);
  ASSERT_TRUE(values && result);
  const float input[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  ASSERT_OK(hal().copyHostToBuffer(queue, input, {values, 0}, sizeof(input)));
  std::vector<falcon_hal_argument_t> arguments =
      scaleArguments(result, values, 8, 3);
  falcon_hal_launch_params_t launch = {executable, ordinal, arguments.data(),
                                       arguments.size()};
  ASSERT_OK(hal().launch(queue, &launch));
  ASSERT_OK(hal().finish(queue));
  // The export returned a strided result; it lands dense.
  EXPECT_EQ(readAs<float>(result, 8),
            (std::vector<float>{3, 6, 9, 12, 15, 18, 21, 24}));
  // And it wrote its input buffer in place.
  EXPECT_EQ(readAs<float>(values, 8),
            (std::vector<float>{2, 3, 4, 5, 6, 7, 8, 9}));
  // The result memory came from the workspace and went back to it.
  falcon_hal_allocator_statistics_t held = statistics();
  EXPECT_EQ(held.workspaceBytes, 0u);
  EXPECT_GE(held.workspacePeakBytes, 17 * sizeof(float));
}

TEST_P(HALConformance, LaunchErrors) {
  loadFake();
  falcon_hal_buffer_t *values =
      allocate(FALCON_HAL_MEMORY_TYPE_DEVICE_LOCAL, 32);
  falcon_hal_buffer_t *result = allocate(kHostVisible, 32);
  ASSERT_TRUE(values && result);
  std::vector<falcon_hal_argument_t> arguments =
      scaleArguments(result, values, 8, 1);
  falcon_hal_launch_params_t launch = {executable, 2, arguments.data(),
                                       arguments.size()};
  Result status = check(hal().launch(queue, &launch));
  EXPECT_EQ(status.code, FALCON_STATUS_NOT_FOUND);
  EXPECT_THAT(status.message, HasSubstr("export ordinal 2 is out of range"));

  launch.exportOrdinal = 1;
  arguments[1].shape[0] = 9;
  status = check(hal().launch(queue, &launch));
  EXPECT_EQ(status.code, FALCON_STATUS_OUT_OF_RANGE);
  EXPECT_EQ(status.message,
            "launch of '_mlir_ciface_fake_scale': argument 1 ('values'): f32 "
            "[9] needs 36 bytes at offset 0 but the buffer has 32");
  arguments[1].shape[0] = -1;
  EXPECT_EQ(check(hal().launch(queue, &launch)).code,
            FALCON_STATUS_INVALID_ARGUMENT);
  arguments[1].shape[0] = 8;
  arguments[1].rank = kHALMaxRank + 1;
  EXPECT_EQ(check(hal().launch(queue, &launch)).code,
            FALCON_STATUS_INVALID_ARGUMENT);
  arguments[1].rank = 1;
  arguments[1].buffer.buffer = nullptr;
  EXPECT_EQ(check(hal().launch(queue, &launch)).code,
            FALCON_STATUS_INVALID_ARGUMENT);
  arguments[1].buffer.buffer = values;

  std::vector<falcon_hal_argument_t> tooMany(
      kHALMaxArguments + 1, hal::makeInt64Argument(nullptr, 0));
  falcon_hal_launch_params_t crowded = {executable, 1, tooMany.data(),
                                        tooMany.size()};
  EXPECT_EQ(check(hal().launch(queue, &crowded)).code,
            FALCON_STATUS_INVALID_ARGUMENT);

  // A mapped buffer stays off the queue.
  void *data = nullptr;
  ASSERT_OK(hal().mapBuffer(device, result, 0, 4, FALCON_HAL_MEMORY_ACCESS_READ,
                            &data));
  EXPECT_EQ(check(hal().launch(queue, &launch)).code,
            FALCON_STATUS_FAILED_PRECONDITION);
  ASSERT_OK(hal().unmapBuffer(device, result));
  // Nothing ran.
  EXPECT_OK(hal().finish(queue));
  EXPECT_EQ(readAs<float>(values, 1), std::vector<float>{0});

  // A result of another shape than declared fails the work, reported by
  // finish, which then clears it.
  arguments[0].shape[0] = 7;
  arguments[0].name = "scaled";
  ASSERT_OK(hal().launch(queue, &launch));
  status = check(hal().finish(queue));
  EXPECT_EQ(status.code, FALCON_STATUS_INTERNAL);
  EXPECT_EQ(status.message,
            "the host library returned scaled of shape [8], expected [7]");
  EXPECT_OK(hal().finish(queue));
  // The wrong result was freed all the same.
  EXPECT_EQ(statistics().workspaceBytes, 0u);
}

//===----------------------------------------------------------------------===//
// The forward entry point and the runtime import table
//===----------------------------------------------------------------------===//

/// The buffers of one fake forward call with batch 1.
struct ForwardCall {
  std::vector<uint8_t> weightBytes = std::vector<uint8_t>(16, 3);
  falcon_hal_buffer_t *weights = nullptr, *ids = nullptr, *positions = nullptr,
                      *pastLens = nullptr, *keys = nullptr, *values = nullptr,
                      *logits = nullptr, *logitPositions = nullptr;
  int64_t sequenceLength = 3;
  int64_t capacity = 8;
};

class HALForward : public HALConformance {
protected:
  void SetUp() override {
    HALConformance::SetUp();
    if (IsSkipped() || HasFatalFailure())
      return;
    loadFake();
    ASSERT_OK(hal().wrapHostMemory(device, call.weightBytes.data(),
                                   call.weightBytes.size(), &call.weights));
    buffers.push_back(call.weights);
    uint64_t cacheBytes = FAKE_LAYERS * FAKE_KV_HEADS * call.capacity *
                          FAKE_HEAD_DIM * sizeof(float);
    call.ids = allocate(FALCON_HAL_MEMORY_TYPE_DEVICE_LOCAL, 3 * 8);
    call.positions = allocate(FALCON_HAL_MEMORY_TYPE_DEVICE_LOCAL, 3 * 8);
    call.logitPositions = allocate(FALCON_HAL_MEMORY_TYPE_DEVICE_LOCAL, 3 * 8);
    call.pastLens = allocate(FALCON_HAL_MEMORY_TYPE_DEVICE_LOCAL, 8);
    call.keys = allocate(FALCON_HAL_MEMORY_TYPE_DEVICE_LOCAL, cacheBytes);
    call.values = allocate(FALCON_HAL_MEMORY_TYPE_DEVICE_LOCAL, cacheBytes);
    call.logits = allocate(kHostVisible, 3 * FAKE_VOCAB_SIZE * sizeof(float));
    const int64_t ids[3] = {5, 6, 7}, positions[3] = {0, 1, 2};
    ASSERT_OK(hal().copyHostToBuffer(queue, ids, {call.ids, 0}, sizeof(ids)));
    ASSERT_OK(hal().copyHostToBuffer(queue, positions, {call.positions, 0},
                                     sizeof(positions)));
    // Every position's logits.
    ASSERT_OK(hal().copyHostToBuffer(queue, positions, {call.logitPositions, 0},
                                     sizeof(positions)));
    const int64_t pastLen = 0;
    ASSERT_OK(hal().copyHostToBuffer(queue, &pastLen, {call.pastLens, 0}, sizeof(pastLen)));
  }

  /// Launches the fake forward on the three tokens; the launch's status.
  Result launchForward() {
    const int64_t tokenShape[] = {1, call.sequenceLength};
    const int64_t cacheShape[] = {FAKE_LAYERS, 1, FAKE_KV_HEADS, call.capacity,
                                  FAKE_HEAD_DIM};
    const int64_t logitShape[] = {1, call.sequenceLength, FAKE_VOCAB_SIZE};
    const falcon_hal_argument_t arguments[] = {
        hal::makeBufferArgument(FALCON_HAL_ARGUMENT_RESULT, "logits",
                                {call.logits, 0}, FALCON_HAL_ELEMENT_TYPE_F32,
                                logitShape),
        hal::makeBufferArgument(FALCON_HAL_ARGUMENT_BUFFER, "input_ids",
                                {call.ids, 0}, FALCON_HAL_ELEMENT_TYPE_I64,
                                tokenShape),
        hal::makeBufferArgument(FALCON_HAL_ARGUMENT_BUFFER, "position_ids",
                                {call.positions, 0},
                                FALCON_HAL_ELEMENT_TYPE_I64, tokenShape),
        hal::makeBufferArgument(FALCON_HAL_ARGUMENT_BUFFER, "past_lens",
                                {call.pastLens, 0}, FALCON_HAL_ELEMENT_TYPE_I64,
                                {int64_t(1)}),
        hal::makeBufferArgument(FALCON_HAL_ARGUMENT_BUFFER, "key_cache",
                                {call.keys, 0}, FALCON_HAL_ELEMENT_TYPE_F32,
                                cacheShape),
        hal::makeBufferArgument(FALCON_HAL_ARGUMENT_BUFFER, "value_cache",
                                {call.values, 0}, FALCON_HAL_ELEMENT_TYPE_F32,
                                cacheShape),
        hal::makeBufferArgument(FALCON_HAL_ARGUMENT_BUFFER, "logit_positions",
                                {call.logitPositions, 0}, FALCON_HAL_ELEMENT_TYPE_I64,
                                tokenShape),
        hal::makeBufferArgument(FALCON_HAL_ARGUMENT_BUFFER, "weights",
                                {call.weights, 0}, FALCON_HAL_ELEMENT_TYPE_U8,
                                {int64_t(call.weightBytes.size())})};
    falcon_hal_launch_params_t launch = {executable, 0, arguments,
                                         std::size(arguments)};
    return check(hal().launch(queue, &launch));
  }

  ForwardCall call;
};

TEST_P(HALForward, RunsTheEntryPoint) {
  int64_t callsBefore = fakeCounter("fake_model_calls");
  ASSERT_TRUE(launchForward().ok());
  ASSERT_OK(hal().finish(queue));
  EXPECT_EQ(fakeCounter("fake_model_calls"), callsBefore + 1);
  EXPECT_EQ(fakeCounter("fake_model_abi_errors"), 0);
  // The fake's logits: 0 at the predicted token, negative elsewhere.
  std::vector<float> logits = readAs<float>(call.logits, 3 * FAKE_VOCAB_SIZE);
  int64_t salt = call.weightBytes.front() + call.weightBytes.back();
  int64_t target = fakeTarget(5 + 6 + 7, 2, salt);
  EXPECT_EQ(logits[2 * FAKE_VOCAB_SIZE + target], 0.0f);
  EXPECT_EQ(logits[2 * FAKE_VOCAB_SIZE + (target + 1) % FAKE_VOCAB_SIZE],
            -1.0f);
  // The cache rows were written in place.
  std::vector<float> keys = readAs<float>(call.keys, 1);
  EXPECT_EQ(keys[0], fakeKey(5, 0, 0, 0));
}

TEST_P(HALForward, FillsTheImportTableAndCountsTheWorkspace) {
  // The device filled the library's table when it loaded it.
  EXPECT_EQ(fakeCounter("fake_model_imports_version"),
            FALCON_RUNTIME_IMPORTS_VERSION);
  falcon_hal_allocator_statistics_t before = statistics();
  EXPECT_EQ(before.workspaceBytes, 0u);
  EXPECT_EQ(before.workspaceLimitBytes, 0u);

  ASSERT_TRUE(launchForward().ok());
  ASSERT_OK(hal().finish(queue));
  // The fake held its scratch block and the logits at once; both went back
  // (the logits through the device, after it placed them).
  falcon_hal_allocator_statistics_t after = statistics();
  EXPECT_EQ(after.workspaceBytes, 0u);
  uint64_t logitBytes = 3 * FAKE_VOCAB_SIZE * sizeof(float);
  EXPECT_GE(after.workspacePeakBytes, FAKE_SCRATCH_BYTES + logitBytes);
  EXPECT_LT(after.workspacePeakBytes, FAKE_SCRATCH_BYTES + logitBytes + 512);
  EXPECT_EQ(fakeCounter("fake_model_failed_allocations"), 0);
  // At world size 1 the all-reduce succeeds and leaves the data as it is.
  EXPECT_EQ(fakeCounter("fake_model_last_all_reduce"), 0);
}

TEST_P(HALForward, WorkspaceLimitFailsTheAllocation) {
  ASSERT_OK(hal().setWorkspaceLimit(device, 1000));
  EXPECT_EQ(statistics().workspaceLimitBytes, 1000u);
  // The allocation the fake cannot have ends its call (it never sees NULL):
  // the launch is RESOURCE_EXHAUSTED naming the bytes and the limit, and
  // what the call had allocated is freed.
  int64_t callsBefore = fakeCounter("fake_model_calls");
  Result status = launchForward();
  EXPECT_EQ(status.code, FALCON_STATUS_RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.message, HasSubstr("bytes of workspace: the workspace limit is 1000 bytes"));
  EXPECT_EQ(fakeCounter("fake_model_failed_allocations"), 0);
  EXPECT_EQ(fakeCounter("fake_model_calls"), callsBefore + 1);
  EXPECT_OK(hal().finish(queue));
  EXPECT_EQ(statistics().workspaceBytes, 0u);
  EXPECT_EQ(statistics().workspacePeakBytes, 0u);

  ASSERT_OK(hal().setWorkspaceLimit(device, 0));
  ASSERT_TRUE(launchForward().ok());
  EXPECT_OK(hal().finish(queue));
}

TEST_P(HALForward, TracesThroughTheImportTable) {
  llvm::timeTraceProfilerInitialize(/*TimeTraceGranularity=*/0, "hal-test");
  ASSERT_TRUE(launchForward().ok());
  ASSERT_OK(hal().finish(queue));
  llvm::SmallString<1024> trace;
  llvm::raw_svector_ostream os(trace);
  llvm::timeTraceProfilerWrite(os);
  llvm::timeTraceProfilerCleanup();
  EXPECT_THAT(std::string(trace), HasSubstr("fake.forward"));
}

TEST_P(HALForward, SecondDeviceSharesTheLoadedLibrary) {
  // dlopen gives both devices the same copy of the library, hence the same
  // import table: the second device's executable is accounted to the first
  // device's workspace and keeps it alive.
  falcon_hal_device_params_t params = {GetParam(), 0};
  falcon_hal_device_t *second = nullptr;
  ASSERT_OK(hal::createDevice(params, &second));
  falcon_hal_executable_params_t load = {FALCON_FAKE_MODEL_LIBRARY,
                                         kFakeExports, 2};
  falcon_hal_executable_t *secondExecutable = nullptr;
  ASSERT_OK(second->vtable->loadExecutable(second, &load, &secondExecutable));
  // The first device's executable goes first: the table must stay usable.
  hal().unloadExecutable(device, executable);
  executable = secondExecutable;
  for (falcon_hal_buffer_t *buffer : buffers)
    hal::freeBuffer(buffer);
  buffers.clear();
  hal().destroyQueue(device, queue);
  queue = nullptr;
  hal::destroyDevice(device);
  device = second;
  ASSERT_OK(hal().createQueue(device, &queue));
  falcon_hal_buffer_t *values =
      allocate(FALCON_HAL_MEMORY_TYPE_DEVICE_LOCAL, 8);
  falcon_hal_buffer_t *result =
      allocate(FALCON_HAL_MEMORY_TYPE_DEVICE_LOCAL, 8);
  std::vector<falcon_hal_argument_t> arguments =
      scaleArguments(result, values, 2, 2);
  falcon_hal_launch_params_t launch = {executable, 1, arguments.data(),
                                       arguments.size()};
  ASSERT_OK(hal().launch(queue, &launch));
  ASSERT_OK(hal().finish(queue));
  EXPECT_EQ(readAs<float>(result, 2), (std::vector<float>{0, 0}));
  EXPECT_EQ(statistics().workspacePeakBytes, 0u);
  // Once the last executable of the file is gone, the table is cleared and
  // the next load binds it to the loading device.
  hal().unloadExecutable(device, executable);
  executable = nullptr;
  loadFake();
  launch.executable = executable;
  ASSERT_OK(hal().launch(queue, &launch));
  ASSERT_OK(hal().finish(queue));
  EXPECT_GT(statistics().workspacePeakBytes, 0u);
}

//===----------------------------------------------------------------------===//
// The local collective channel, on this device's queue
//===----------------------------------------------------------------------===//

class HALChannel : public HALConformance {
protected:
  void SetUp() override {
    HALConformance::SetUp();
    if (IsSkipped() || HasFatalFailure())
      return;
    ASSERT_OK(comm::local::createLocalChannel(&channel));
    source = allocate(FALCON_HAL_MEMORY_TYPE_DEVICE_LOCAL, 64);
    target = allocate(FALCON_HAL_MEMORY_TYPE_DEVICE_LOCAL, 64);
    std::vector<uint8_t> bytes(64);
    std::iota(bytes.begin(), bytes.end(), uint8_t(1));
    ASSERT_OK(hal().copyHostToBuffer(queue, bytes.data(), {source, 0}, 64));
  }
  void TearDown() override {
    comm::destroyChannel(channel);
    HALConformance::TearDown();
  }

  const falcon_comm_channel_vtable_t &comm() const { return *channel->vtable; }

  falcon_comm_channel_t *channel = nullptr;
  falcon_hal_buffer_t *source = nullptr, *target = nullptr;
};

TEST_P(HALChannel, LocalIsOneRank) {
  EXPECT_EQ(channel->rank, 0);
  EXPECT_EQ(channel->worldSize, 1);
  EXPECT_OK(comm().barrier(channel, queue));
}

TEST_P(HALChannel, AllReduceOfOneRankIsTheData) {
  // f32, bf16 and f16 all reduce; 16 elements of each size.
  const falcon_hal_element_type_t types[] = {FALCON_HAL_ELEMENT_TYPE_F32,
                                             FALCON_HAL_ELEMENT_TYPE_BF16,
                                             FALCON_HAL_ELEMENT_TYPE_F16};
  for (falcon_hal_element_type_t type : types) {
    const uint8_t zero = 0;
    ASSERT_OK(hal().fillBuffer(queue, {target, 0}, 64, &zero, 1));
    ASSERT_OK(comm().allReduce(channel, queue, {source, 0}, {target, 0}, 8,
                               type, FALCON_COMM_REDUCTION_SUM));
    std::vector<uint8_t> reduced = read(target, 0, 64);
    size_t bytes = 8 * hal::getElementTypeSize(type);
    EXPECT_EQ(std::vector<uint8_t>(reduced.begin(), reduced.begin() + bytes),
              read(source, 0, bytes))
        << hal::getElementTypeName(type);
    EXPECT_EQ(reduced[bytes], 0) << "wrote past the count";
  }
  // In place.
  ASSERT_OK(comm().allReduce(channel, queue, {source, 0}, {source, 0}, 16,
                             FALCON_HAL_ELEMENT_TYPE_F32,
                             FALCON_COMM_REDUCTION_SUM));
  EXPECT_EQ(read(source, 0, 2), (std::vector<uint8_t>{1, 2}));

  Result result = check(
      comm().allReduce(channel, queue, {source, 0}, {target, 0}, 8,
                       FALCON_HAL_ELEMENT_TYPE_I64, FALCON_COMM_REDUCTION_SUM));
  EXPECT_EQ(result.code, FALCON_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(result.message,
            "allReduce: reductions support f32, bf16 and f16, found i64");
  result = check(comm().allReduce(channel, queue, {source, 0}, {target, 0}, -1,
                                  FALCON_HAL_ELEMENT_TYPE_F32,
                                  FALCON_COMM_REDUCTION_SUM));
  EXPECT_EQ(result.code, FALCON_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(check(comm().allReduce(channel, queue, {source, 0}, {source, 0}, 17,
                                   FALCON_HAL_ELEMENT_TYPE_F32,
                                   FALCON_COMM_REDUCTION_SUM))
                .code,
            FALCON_STATUS_OUT_OF_RANGE);
}

TEST_P(HALChannel, AllGatherAndBroadcastOfOneRank) {
  ASSERT_OK(comm().allGather(channel, queue, {source, 8}, {target, 0}, 4,
                             FALCON_HAL_ELEMENT_TYPE_I32));
  EXPECT_EQ(read(target, 0, 17),
            (std::vector<uint8_t>{9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
                                  21, 22, 23, 24, 0}));
  ASSERT_OK(comm().broadcast(channel, queue, {source, 0}, 16,
                             FALCON_HAL_ELEMENT_TYPE_F32, /*root=*/0));
  EXPECT_EQ(read(source, 60, 4), (std::vector<uint8_t>{61, 62, 63, 64}));
  Result result = check(comm().broadcast(channel, queue, {source, 0}, 16,
                                         FALCON_HAL_ELEMENT_TYPE_F32, 1));
  EXPECT_EQ(result.code, FALCON_STATUS_OUT_OF_RANGE);
  EXPECT_EQ(result.message,
            "broadcast: root rank 1 is out of range for world size 1");
}

TEST_P(HALChannel, SendToSelfThenRecv) {
  ASSERT_OK(comm().send(channel, queue, {source, 0}, 4,
                        FALCON_HAL_ELEMENT_TYPE_F32, /*peer=*/0));
  // The sender may reuse its buffer at once: the message is a copy.
  const uint8_t zero = 0;
  ASSERT_OK(hal().fillBuffer(queue, {source, 0}, 16, &zero, 1));
  // A recv that does not match the message leaves it pending.
  Result result = check(comm().recv(channel, queue, {target, 0}, 2,
                                    FALCON_HAL_ELEMENT_TYPE_F32, 0));
  EXPECT_EQ(result.code, FALCON_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(result.message,
            "recv: expects 2 f32 but the pending message holds 4 f32");
  ASSERT_OK(comm().recv(channel, queue, {target, 16}, 4,
                        FALCON_HAL_ELEMENT_TYPE_F32, 0));
  std::vector<uint8_t> expected(16);
  std::iota(expected.begin(), expected.end(), uint8_t(1));
  EXPECT_EQ(read(target, 16, 16), expected);

  // Nothing is pending now, and nothing could send while recv waited.
  result = check(comm().recv(channel, queue, {target, 0}, 4,
                             FALCON_HAL_ELEMENT_TYPE_F32, 0));
  EXPECT_EQ(result.code, FALCON_STATUS_FAILED_PRECONDITION);
  EXPECT_THAT(result.message, HasSubstr("no message from rank 0 is pending"));
  result = check(comm().send(channel, queue, {source, 0}, 4,
                             FALCON_HAL_ELEMENT_TYPE_F32, 1));
  EXPECT_EQ(result.code, FALCON_STATUS_OUT_OF_RANGE);
  EXPECT_EQ(result.message,
            "send: peer rank 1 is out of range for world size 1");
  // A message still pending at destruction is freed with the channel.
  ASSERT_OK(comm().send(channel, queue, {source, 0}, 4,
                        FALCON_HAL_ELEMENT_TYPE_F32, 0));
}

std::string deviceTestName(const ::testing::TestParamInfo<const char *> &info) {
  return info.param;
}

INSTANTIATE_TEST_SUITE_P(Devices, HALConformance,
                         ::testing::ValuesIn(hal::getDeviceNames()),
                         deviceTestName);
INSTANTIATE_TEST_SUITE_P(Devices, HALForward,
                         ::testing::ValuesIn(hal::getDeviceNames()),
                         deviceTestName);
INSTANTIATE_TEST_SUITE_P(Devices, HALChannel,
                         ::testing::ValuesIn(hal::getDeviceNames()),
                         deviceTestName);

} // namespace
