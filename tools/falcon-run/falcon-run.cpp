//===- falcon-run.cpp - run a compiled falcon-mlir artifact ---------------===//
//
// falcon-run ART --prompt-ids 1,2,3 [--prompt-ids 4,5,6 ...] [--max-new-tokens N]
//                [--logits-out F.npy] [--step-logits-out F.npy]
//                [--output-ids F] [--cache-capacity N]
//
// Greedy generation with the runtime's C API. Each --prompt-ids is one row of
// a batch (all of the same length). Prints the generated ids and the prefill
// and decode speed; optionally writes the prefill logits ([prompt_length,
// vocab_size] float32 .npy, [batch, prompt_length, vocab_size] for a batch)
// and the generated ids (prompt excluded, whitespace-separated, one line per
// row). Generation never stops at EOS: the golden
// data is produced the same way. Any error is one line on stderr, exit code
// 1, and no output file (files are written to a temporary name and renamed
// once everything succeeded; devices and FIFOs are written through, never
// replaced).
//
//===----------------------------------------------------------------------===//

#include "falcon/runtime.h"
#include "falcon/Support/ToolVersion.h"

#include <limits>

#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/EndianStream.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <cerrno>
#include <climits>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <chrono>
#include <optional>

#define OMPI_SKIP_MPICXX 1
#include <mpi.h>
#include <string>
#include <utility>
#include <vector>

using namespace llvm;

namespace {

cl::OptionCategory runCategory("falcon-run options");

cl::opt<std::string> artifactDir(cl::Positional, cl::Required,
                                 cl::desc("<artifact directory>"),
                                 cl::cat(runCategory));
cl::list<std::string>
    promptIdsOption("prompt-ids", cl::OneOrMore,
                    cl::desc("Comma-separated prompt token ids (1,2,3); repeat for "
                             "a batch of prompts of one length"),
                    cl::value_desc("ids"), cl::cat(runCategory));
cl::opt<long long> maxNewTokens("max-new-tokens", cl::init(16),
                                cl::desc("Tokens to generate (default 16)"),
                                cl::value_desc("N"), cl::cat(runCategory));
cl::opt<long long>
    cacheCapacity("cache-capacity", cl::init(0),
                  cl::desc("KV-cache capacity (default: prompt + new tokens)"),
                  cl::value_desc("N"), cl::cat(runCategory));
cl::opt<long long> microBatches(
    "micro-batches", cl::init(0),
    cl::desc("Groups a pipeline plan runs a batch's rows in, so that its stages overlap "
             "(default: one per stage)"),
    cl::value_desc("N"), cl::cat(runCategory));
cl::opt<std::string> logitsOut(
    "logits-out",
    cl::desc("Write the prefill logits [prompt_length, vocab] as .npy "
             "([batch, prompt_length, vocab] for several prompts)"),
    cl::value_desc("file"), cl::cat(runCategory));
cl::opt<std::string> stepLogitsOut(
    "step-logits-out",
    cl::desc("Write the logits each new token was chosen from "
             "[max_new_tokens, vocab] as .npy ([batch, max_new_tokens, vocab] "
             "for several prompts)"),
    cl::value_desc("file"), cl::cat(runCategory));
cl::opt<std::string>
    outputIds("output-ids",
              cl::desc("Write the generated ids (prompt excluded)"),
              cl::value_desc("file"), cl::cat(runCategory));
cl::opt<int> numThreads(
    "num-threads", cl::init(0),
    cl::desc("Threads for the compiled code (default: OMP_NUM_THREADS, else "
             "every core)"),
    cl::value_desc("N"), cl::cat(runCategory));
cl::opt<uint64_t> workspaceLimit(
    "workspace-limit", cl::init(0),
    cl::desc("Most bytes the compiled code may hold for its own work "
             "(activations, attention blocks, logits); more is an error "
             "(default: no limit but the machine's memory)"),
    cl::value_desc("bytes"), cl::cat(runCategory));
cl::opt<bool> verifyChecksum(
    "verify-checksum", cl::init(true),
    cl::desc("Check weights.bin against the manifest checksum (default on)"),
    cl::cat(runCategory));

/// This process's place in a multi-process run: mpirun's environment
/// (OpenMPI's, else a PMI launcher's); rank 0 of 1 otherwise.
struct Launch {
  int32_t rank = 0;
  int32_t worldSize = 1;
};
Launch getLaunch() {
  Launch launch;
  for (auto [rankVariable, sizeVariable] :
       {std::pair{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
        std::pair{"PMI_RANK", "PMI_SIZE"}}) {
    const char *rank = std::getenv(rankVariable), *size = std::getenv(sizeVariable);
    int32_t rankValue = 0, sizeValue = 0;
    if (rank && size && !StringRef(rank).getAsInteger(10, rankValue) &&
        !StringRef(size).getAsInteger(10, sizeValue) && sizeValue > 0 &&
        rankValue >= 0 && rankValue < sizeValue)
      return {rankValue, sizeValue};
  }
  return launch;
}
const Launch launch = getLaunch();

/// Prints "falcon-run: error: MESSAGE" ("falcon-run: rank R: error: ..."
/// under mpirun) and returns the exit code. Under mpirun a failing rank
/// ends the whole job: the other ranks would wait for it forever.
int fail(const Twine &message) {
  std::string prefix = "falcon-run";
  if (launch.worldSize > 1)
    prefix += ": rank " + std::to_string(launch.rank);
  // One write per line: the ranks of a job share mpirun's stderr.
  std::string line;
  raw_string_ostream os(line);
  WithColor::error(os, prefix) << message << "\n";
  errs() << line;
  errs().flush();
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (launch.worldSize > 1 && initialized && !finalized)
    MPI_Abort(MPI_COMM_WORLD, 1);
  return 1;
}

/// The runtime's verify_progress: "verifying weights.bin: 40% (...)" on
/// stderr at every tenth (only files of 1 GiB or more report).
void printVerifyProgress(void *userData, uint64_t doneBytes,
                         uint64_t totalBytes) {
  int &lastTenth = *static_cast<int *>(userData);
  int tenth = totalBytes ? int(10.0 * double(doneBytes) / double(totalBytes)) : 10;
  if (tenth <= lastTenth)
    return;
  lastTenth = tenth;
  errs() << "falcon-run: verifying weights.bin: " << tenth * 10 << "% ("
         << format("%.1f", doneBytes / 1073741824.0) << " of "
         << format("%.1f", totalBytes / 1073741824.0) << " GiB)\n";
}

/// Frees a status when it goes out of scope.
struct StatusDeleter {
  void operator()(falcon_status_object_t *status) const {
    falcon_status_free(status);
  }
};
using StatusPtr = std::unique_ptr<falcon_status_object_t, StatusDeleter>;

struct ModelDeleter {
  void operator()(falcon_model_t *model) const { falcon_model_release(model); }
};
struct SessionDeleter {
  void operator()(falcon_session_t *session) const {
    falcon_session_release(session);
  }
};

/// "1,2,3" -> {1, 2, 3}; an error message names the first bad element.
Expected<std::vector<int64_t>> parsePromptIds(StringRef text) {
  if (text.trim().empty())
    return createStringError("--prompt-ids is empty");
  SmallVector<StringRef> pieces;
  text.split(pieces, ',');
  std::vector<int64_t> ids;
  for (StringRef piece : pieces) {
    StringRef trimmed = piece.trim();
    int64_t id = 0;
    // getAsInteger returns true on failure.
    if (trimmed.empty() || trimmed.getAsInteger(10, id))
      return createStringError("--prompt-ids: '" + trimmed.str() +
                               "' is not an integer (expected comma-separated "
                               "token ids such as 1,2,3)");
    ids.push_back(id);
  }
  return ids;
}

/// A float32 .npy image (format 1.0, little-endian, C order) of `data` with
/// `shape`.
void writeNpy(raw_ostream &os, const float *data, ArrayRef<int64_t> shape) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
                       join(map_range(shape, [](int64_t size) { return std::to_string(size); }),
                            ", ") +
                       "), }";
  // Magic (6) + version (2) + header length (2), then the header padded with
  // spaces and ended by '\n' so that the data starts 64-byte aligned.
  constexpr size_t kPreambleSize = 10;
  size_t total = kPreambleSize + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  os << "\x93NUMPY";
  os << char(1) << char(0);
  support::endian::write<uint16_t>(os, uint16_t(header.size()),
                                   endianness::little);
  os << header;
  int64_t count = 1;
  for (int64_t size : shape)
    count *= size;
  for (int64_t index = 0; index < count; ++index)
    support::endian::write<float>(os, data[index], endianness::little);
}

/// An output file of the run. A regular file (or a new one) is written under
/// a temporary name next to it and renamed into place by commit(), so that a
/// failed run leaves what was there; a symbolic link is followed and its
/// target written the same way (the link stays). Anything else that can be
/// written (a device such as /dev/null, a FIFO with a reader) is opened at
/// once and written through: it is never replaced. create() refuses a
/// directory, a read-only file and a FIFO nobody reads before the run starts.
class PendingOutput {
public:
  static Expected<PendingOutput> create(StringRef path) {
    auto refuse = [&](const Twine &reason) {
      return createStringError(path + ": cannot write: " + reason);
    };
    Expected<std::string> target = resolveLinks(path);
    if (!target)
      return refuse(toString(target.takeError()));
    struct stat status;
    if (::stat(target->c_str(), &status) != 0) {
      if (errno != ENOENT)
        return refuse(std::strerror(errno));
    } else if (S_ISDIR(status.st_mode)) {
      return refuse("is a directory");
    } else if (!S_ISREG(status.st_mode)) {
      // Written through. O_NONBLOCK: a FIFO without a reader fails (ENXIO)
      // instead of blocking the run before it starts.
      int fd = ::open(target->c_str(), O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
      if (fd < 0)
        return refuse(errno == ENXIO ? "a FIFO with no reader"
                                     : std::strerror(errno));
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      return PendingOutput(path, *target, fd);
    } else if (::access(target->c_str(), W_OK) != 0) {
      return refuse(std::strerror(errno));
    }
    Expected<sys::fs::TempFile> temp =
        sys::fs::TempFile::create(*target + ".tmp-%%%%%%");
    if (!temp)
      return createStringError(
          path + ": cannot create: " + toString(temp.takeError()));
    return PendingOutput(path, *target, std::move(*temp));
  }

  PendingOutput(PendingOutput &&other)
      : path(std::move(other.path)), target(std::move(other.target)),
        temp(std::move(other.temp)), fd(std::exchange(other.fd, -1)),
        os(std::move(other.os)) {}
  ~PendingOutput() {
    os.reset();
    if (temp)
      consumeError(temp->discard());
    if (fd >= 0)
      ::close(fd);
  }

  raw_fd_ostream &stream() {
    if (!os)
      os = std::make_unique<raw_fd_ostream>(temp ? temp->FD : fd,
                                            /*shouldClose=*/false);
    return *os;
  }

  Error commit() {
    auto refuse = [&](const Twine &reason) {
      return createStringError(path + ": cannot write: " + reason);
    };
    if (os) {
      os->flush();
      if (os->has_error()) {
        std::string reason = os->error().message();
        os->clear_error();
        return refuse(reason);
      }
    }
    os.reset();
    if (!temp)
      return Error::success();
    // What the name holds now must still be a file we may replace: a device,
    // FIFO, link or directory put there during the run is left alone.
    struct stat status;
    if (::lstat(target.c_str(), &status) == 0 && !S_ISREG(status.st_mode))
      return refuse("it was replaced by something other than a regular file "
                    "during the run; left as it is");
    Error error = temp->keep(target);
    temp.reset();
    if (error)
      return refuse(toString(std::move(error)));
    return Error::success();
  }

private:
  PendingOutput(StringRef path, StringRef target, sys::fs::TempFile temp)
      : path(path.str()), target(target.str()), temp(std::move(temp)) {}
  PendingOutput(StringRef path, StringRef target, int fd)
      : path(path.str()), target(target.str()), fd(fd) {}

  /// The path with its symbolic links followed (a dangling link gives the
  /// path it points to, which is then created).
  static Expected<std::string> resolveLinks(StringRef path) {
    std::string current = path.str();
    for (int hops = 0; hops < 40; ++hops) {
      struct stat status;
      if (::lstat(current.c_str(), &status) != 0 || !S_ISLNK(status.st_mode))
        return current;
      char buffer[PATH_MAX];
      ssize_t length = ::readlink(current.c_str(), buffer, sizeof(buffer));
      if (length < 0 || size_t(length) == sizeof(buffer))
        return createStringError("cannot read the symbolic link " + current);
      StringRef link(buffer, size_t(length));
      if (sys::path::is_absolute(link)) {
        current = link.str();
      } else {
        SmallString<256> next(sys::path::parent_path(current));
        sys::path::append(next, link);
        current = std::string(next);
      }
    }
    return createStringError("too many levels of symbolic links");
  }

  std::string path;   // as given, for messages
  std::string target; // the file written: `path` with its links followed
  std::optional<sys::fs::TempFile> temp;
  int fd = -1; // a device or FIFO written through
  std::unique_ptr<raw_fd_ostream> os;
};

std::string formatRate(int64_t tokens, double seconds) {
  std::string text;
  raw_string_ostream os(text);
  os << tokens << " tokens in " << format("%.3f", seconds * 1000.0) << " ms (";
  if (seconds > 0)
    os << format("%.1f", double(tokens) / seconds) << " tokens/s)";
  else
    os << "n/a tokens/s)";
  return text;
}

int run() {
  // The rows of the batch, [batch, prompt_length] row-major.
  std::vector<int64_t> prompt;
  int64_t promptLength = 0;
  int64_t batch = int64_t(promptIdsOption.size());
  for (auto [row, text] : enumerate(promptIdsOption)) {
    Expected<std::vector<int64_t>> ids = parsePromptIds(text);
    if (!ids)
      return fail(toString(ids.takeError()));
    if (row == 0)
      promptLength = int64_t(ids->size());
    else if (int64_t(ids->size()) != promptLength)
      return fail("--prompt-ids: the prompts of a batch must have one length; prompt 0 has " +
                  Twine(promptLength) + " ids, prompt " + Twine(row) + " has " +
                  Twine(ids->size()));
    prompt.insert(prompt.end(), ids->begin(), ids->end());
  }
  if (maxNewTokens < 0)
    return fail("--max-new-tokens must not be negative, found " +
                Twine(maxNewTokens));
  if (cacheCapacity < 0)
    return fail("--cache-capacity must not be negative, found " +
                Twine(cacheCapacity));

  // Claim the output files before the (possibly long) run so that a bad path
  // fails at once.
  // Under mpirun, rank 0 writes and prints the outputs.
  std::optional<PendingOutput> logitsFile, stepLogitsFile, idsFile;
  bool writesOutputs = launch.rank == 0;
  for (auto [path, pending] :
       {std::pair{&logitsOut, &logitsFile}, std::pair{&stepLogitsOut, &stepLogitsFile},
        std::pair{&outputIds, &idsFile}}) {
    if (path->empty() || !writesOutputs)
      continue;
    Expected<PendingOutput> file = PendingOutput::create(*path);
    if (!file)
      return fail(toString(file.takeError()));
    pending->emplace(std::move(*file));
  }

  falcon_model_options_t modelOptions;
  falcon_model_options_initialize(&modelOptions);
  modelOptions.verify_checksum = verifyChecksum;
  modelOptions.num_threads = numThreads;
  modelOptions.workspace_limit_bytes = workspaceLimit;
  modelOptions.rank = launch.rank;
  modelOptions.world_size = launch.worldSize;
  int verifiedTenths = 0;
  modelOptions.verify_progress = &printVerifyProgress;
  modelOptions.verify_progress_user_data = &verifiedTenths;
  falcon_model_t *rawModel = nullptr;
  auto openStart = std::chrono::steady_clock::now();
  if (StatusPtr status{
          falcon_model_open(artifactDir.c_str(), &modelOptions, &rawModel)})
    return fail(falcon_status_message(status.get()));
  double openSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - openStart).count();
  std::unique_ptr<falcon_model_t, ModelDeleter> model(rawModel);
  falcon_model_info_t info;
  if (StatusPtr status{falcon_model_query_info(model.get(), &info)})
    return fail(falcon_status_message(status.get()));
  // Every rank of a plan maps and verifies only its own weights, all at
  // once: each says what it loaded and how long it took (as does a single
  // process whose open took noticeable time: 1 GiB of weights or more).
  if (launch.worldSize > 1 || info.weights_size >= (uint64_t(1) << 30)) {
    std::string line;
    raw_string_ostream os(line);
    os << "falcon-run: ";
    if (launch.worldSize > 1)
      os << "rank " << launch.rank << ": ";
    os << "opened in " << format("%.3f", openSeconds) << " s, " << info.weights_size
       << " bytes of weights " << (verifyChecksum ? "verified" : "mapped") << " in "
       << format("%.3f", info.weights_open_seconds) << " s\n";
    errs() << line; // one write: the ranks share mpirun's stderr
    errs().flush();
  }

  falcon_session_options_t sessionOptions;
  falcon_session_options_initialize(&sessionOptions);
  sessionOptions.batch_size = batch;
  sessionOptions.micro_batches = microBatches;
  // Default: what the request needs (an absurd request gets the runtime's
  // message that says why it cannot be allocated).
  int64_t neededCapacity =
      maxNewTokens > std::numeric_limits<int64_t>::max() / 2
          ? std::numeric_limits<int64_t>::max() / 2
          : promptLength + int64_t(maxNewTokens);
  sessionOptions.cache_capacity =
      cacheCapacity > 0 ? int64_t(cacheCapacity) : neededCapacity;
  falcon_session_t *rawSession = nullptr;
  if (StatusPtr status{
          falcon_session_create(model.get(), &sessionOptions, &rawSession)})
    return fail(falcon_status_message(status.get()));
  std::unique_ptr<falcon_session_t, SessionDeleter> session(rawSession);

  // A request longer than the cache is refused by the runtime before it
  // looks at this buffer, so it never needs more than the capacity.
  int64_t newTokens = std::min<long long>(maxNewTokens, sessionOptions.cache_capacity);
  std::vector<int64_t> generated(size_t(batch) * size_t(newTokens));
  std::vector<float> logits, stepLogits;
  if (logitsFile)
    logits.resize(size_t(batch) * size_t(promptLength) * size_t(info.vocab_size));
  if (stepLogitsFile)
    stepLogits.resize(generated.size() * size_t(info.vocab_size));
  falcon_generate_stats_t stats;
  if (StatusPtr status{falcon_session_generate_greedy(
          session.get(), prompt.data(), batch, promptLength,
          maxNewTokens, generated.size(), logits.size(), stepLogits.size(),
          generated.data(), logitsFile ? logits.data() : nullptr,
          stepLogitsFile ? stepLogits.data() : nullptr, &stats)})
    return fail(falcon_status_message(status.get()));

  for (auto [pending, values, rows] :
       {std::tuple{&logitsFile, &logits, promptLength},
        std::tuple{&stepLogitsFile, &stepLogits, newTokens}}) {
    if (!*pending)
      continue;
    SmallVector<int64_t> shape = {rows, info.vocab_size};
    if (batch > 1)
      shape.insert(shape.begin(), batch);
    writeNpy((*pending)->stream(), values->data(), shape);
    if (Error error = (*pending)->commit())
      return fail(toString(std::move(error)));
  }
  // The generated ids of row `row`, space-separated.
  auto rowIds = [&](int64_t row) {
    return join(map_range(ArrayRef<int64_t>(generated).slice(row * newTokens, newTokens),
                          [](int64_t id) { return std::to_string(id); }),
                " ");
  };
  if (idsFile) {
    raw_fd_ostream &os = idsFile->stream();
    for (int64_t row = 0; row < batch; ++row)
      os << rowIds(row) << "\n";
    if (Error error = idsFile->commit())
      return fail(toString(std::move(error)));
  }

  if (!writesOutputs)
    return 0;
  for (int64_t row = 0; row < batch; ++row) {
    outs() << "generated ids";
    if (batch > 1)
      outs() << " (prompt " << row << ")";
    std::string ids = rowIds(row);
    outs() << ":" << (ids.empty() ? "" : " ") << ids << "\n";
  }
  outs() << "prefill: "
         << formatRate(stats.prefill_tokens, stats.prefill_seconds) << "\n";
  if (stats.decode_tokens > 0)
    outs() << "decode: "
           << formatRate(stats.decode_tokens, stats.decode_seconds) << "\n";
  else
    outs() << "decode: no decode steps\n";
  // Every byte the model used went through the runtime: its buffers and the
  // compiled code's workspace.
  auto mebibytes = [](uint64_t bytes) { return format("%.2f MiB", bytes / 1048576.0); };
  outs() << "memory: workspace peak " << mebibytes(stats.workspace_peak_bytes)
         << ", buffers peak " << mebibytes(stats.buffer_peak_bytes) << "\n";
  // Rank 0's view of a multi-rank run: where its time went besides compute.
  if (launch.worldSize > 1)
    outs() << "collectives (rank 0): " << stats.all_reduces << " all-reduces in "
           << format("%.3f", stats.all_reduce_seconds * 1e3) << " ms, transfers "
           << format("%.3f", stats.transfer_seconds * 1e3) << " ms\n";
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  InitLLVM initLLVM(argc, argv);
  // libLLVM registers many options of its own; show only ours.
  cl::HideUnrelatedOptions(runCategory);
  // The library loaded may not be the one falcon-run was built with.
  ::falcon::setToolVersionPrinter("falcon-run", [](raw_ostream &os) {
    os << "libfalcon_runtime " << falcon_runtime_version() << "\n";
  });
  cl::ParseCommandLineOptions(
      argc, argv, "falcon-run: run a compiled falcon-mlir artifact\n");
  int status = run();
  // The model and its channels are gone; a process that initialized MPI
  // leaves it cleanly (mpirun counts an exit without it as a failure).
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized)
    MPI_Finalize();
  return status;
}
