//===- falcon-run.cpp - run a compiled falcon-mlir artifact ---------------===//
//
// falcon-run ART --prompt "text" [--prompt ...] [--max-new-tokens N]
//                [--temperature T --top-k K --top-p P --min-p M
//                 --repetition-penalty R --seed S] [--stop STR ...]
// falcon-run ART --prompt-ids 1,2,3 [--prompt-ids 4,5 ...] [--logits-out F.npy]
//                [--step-logits-out F.npy] [--output-ids F]
// falcon-run ART --interactive        (a chat: "User: ...\nFalcon:")
// falcon-run ART --perplexity FILE    (perplexity of a text file)
//
// Generation with the runtime's C API. Each --prompt, --prompt-file or
// --prompt-ids is one row of a batch; rows may differ in length. Text prompts
// are encoded with the artifact's tokenizer.json and the new text is
// streamed to stdout as it is produced (one row), or printed per row at the
// end (several); the speed goes to stderr. With --prompt-ids the generated
// ids and the speed go to stdout, and the prefill logits ([batch,
// max_prompt_length, vocab] float32 .npy, without the batch dimension for one
// row), the step logits and the ids (one line per row) can be written.
// A row stops at the end-of-sequence id (generation_config.json's
// eos_token_id, else tokenizer_config.json's eos_token; --ignore-eos turns it
// off), at a --stop string, or after --max-new-tokens. Any error is one line
// on stderr, exit code 1, and no output file (files are written to a
// temporary name and renamed once everything succeeded; devices and FIFOs are
// written through, never replaced).
//
//===----------------------------------------------------------------------===//

#include "falcon/runtime.h"
#include "falcon/tokenizer.h"
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
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <chrono>
#include <iostream>
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
cl::list<std::string> promptOption(
    "prompt", cl::desc("A text prompt (encoded with the artifact's tokenizer); repeat for a "
                       "batch"),
    cl::value_desc("text"), cl::cat(runCategory));
cl::list<std::string> promptFileOption(
    "prompt-file", cl::desc("A file whose whole content is a text prompt; repeat for a batch"),
    cl::value_desc("file"), cl::cat(runCategory));
cl::list<std::string>
    promptIdsOption("prompt-ids",
                    cl::desc("Comma-separated prompt token ids (1,2,3); repeat for "
                             "a batch (the rows may differ in length)"),
                    cl::value_desc("ids"), cl::cat(runCategory));
cl::opt<bool> interactive(
    "interactive",
    cl::desc("Chat: read one message per line from stdin and answer it, in the Falcon "
             "instruct format (\"User: MESSAGE\\nFalcon:\"), keeping the conversation"),
    cl::cat(runCategory));
cl::opt<std::string> perplexityFile(
    "perplexity",
    cl::desc("Print the perplexity of a text file: its tokens scored in windows of "
             "max_position_embeddings tokens, each a fresh context"),
    cl::value_desc("file"), cl::cat(runCategory));
cl::opt<long long> maxNewTokens("max-new-tokens", cl::init(16),
                                cl::desc("Most tokens to generate per row (default 16; "
                                         "256 with --interactive)"),
                                cl::value_desc("N"), cl::cat(runCategory));
cl::list<std::string> stopStrings(
    "stop", cl::desc("Stop a row when its new text contains this string (not printed); "
                     "repeatable"),
    cl::value_desc("text"), cl::cat(runCategory));
cl::opt<bool> ignoreEOS("ignore-eos",
                        cl::desc("Do not stop at the end-of-sequence token"),
                        cl::cat(runCategory));
cl::opt<double> temperature(
    "temperature", cl::init(0.0),
    cl::desc("Sampling temperature; 0 (the default) is greedy decoding"),
    cl::value_desc("T"), cl::cat(runCategory));
cl::opt<long long> topK("top-k", cl::init(0),
                        cl::desc("Sample among the K most likely tokens (0 = off)"),
                        cl::value_desc("K"), cl::cat(runCategory));
cl::opt<double> topP("top-p", cl::init(1.0),
                     cl::desc("Sample among the most likely tokens of total probability P "
                              "(1 = off)"),
                     cl::value_desc("P"), cl::cat(runCategory));
cl::opt<double> minP("min-p", cl::init(0.0),
                     cl::desc("Drop tokens less likely than M times the most likely "
                              "(0 = off)"),
                     cl::value_desc("M"), cl::cat(runCategory));
cl::opt<double> repetitionPenalty(
    "repetition-penalty", cl::init(1.0),
    cl::desc("Penalize the logits of ids already in the row (1 = off)"),
    cl::value_desc("R"), cl::cat(runCategory));
cl::opt<unsigned long long> seed(
    "seed", cl::init(0),
    cl::desc("Seed of the sampler's random numbers (default 0): a seed gives the same "
             "tokens every time"),
    cl::value_desc("S"), cl::cat(runCategory));
cl::opt<long long>
    cacheCapacity("cache-capacity", cl::init(0),
                  cl::desc("KV-cache capacity (default: the longest prompt + new tokens; "
                           "max_position_embeddings with --interactive; --perplexity "
                           "always uses windows of max_position_embeddings)"),
                  cl::value_desc("N"), cl::cat(runCategory));
cl::opt<long long> microBatches(
    "micro-batches", cl::init(0),
    cl::desc("Groups a pipeline plan runs a batch's rows in, so that its stages overlap "
             "(default: one per stage)"),
    cl::value_desc("N"), cl::cat(runCategory));
cl::opt<std::string> logitsOut(
    "logits-out",
    cl::desc("Write the prefill logits [prompt_length, vocab] as .npy "
             "([batch, longest prompt, vocab] for several prompts)"),
    cl::value_desc("file"), cl::cat(runCategory));
cl::opt<std::string> stepLogitsOut(
    "step-logits-out",
    cl::desc("Write the logits each new token was chosen from "
             "[max_new_tokens, vocab] as .npy ([batch, max_new_tokens, vocab] "
             "for several prompts; zeros after a row stopped)"),
    cl::value_desc("file"), cl::cat(runCategory));
cl::opt<std::string>
    outputIds("output-ids",
              cl::desc("Write the generated ids (prompt excluded), one line per row"),
              cl::value_desc("file"), cl::cat(runCategory));
cl::opt<int> numThreads(
    "num-threads", cl::init(0),
    cl::desc("Threads for the compiled code (default: OMP_NUM_THREADS, else "
             "OpenMP's default, one per logical CPU)"),
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

struct TokenizerDeleter {
  void operator()(falcon_tokenizer_t *tokenizer) const { falcon_tokenizer_release(tokenizer); }
};
using TokenizerPtr = std::unique_ptr<falcon_tokenizer_t, TokenizerDeleter>;

/// A status as an Error (NULL: success).
Error toError(falcon_status_t status) {
  if (!status)
    return Error::success();
  StatusPtr owned(status);
  return createStringError(falcon_status_message(owned.get()));
}

/// `text` encoded without special tokens.
Expected<std::vector<int64_t>> encode(falcon_tokenizer_t *tokenizer, StringRef text) {
  std::vector<int64_t> ids(text.size() + 16);
  size_t count = 0;
  if (Error error = toError(falcon_tokenizer_encode(tokenizer, text.data(), text.size(), false,
                                                    ids.data(), ids.size(), &count)))
    return std::move(error);
  ids.resize(count);
  return ids;
}

/// `ids` as text, special tokens left out.
Expected<std::string> decode(const falcon_tokenizer_t *tokenizer, ArrayRef<int64_t> ids) {
  std::string text;
  size_t length = 0;
  falcon_status_t status =
      falcon_tokenizer_decode(tokenizer, ids.data(), ids.size(), true, nullptr, 0, &length);
  if (status && falcon_status_code(status) == FALCON_STATUS_OUT_OF_RANGE && length > 0) {
    falcon_status_free(status);
    text.resize(length);
    status = falcon_tokenizer_decode(tokenizer, ids.data(), ids.size(), true, text.data(),
                                     text.size(), &length);
  }
  if (Error error = toError(status))
    return std::move(error);
  text.resize(length);
  return text;
}

/// The new text of one row as its tokens arrive: the decoded text of every
/// id so far, of which the part that can no longer change is released. Held
/// back: a trailing U+FFFD (a character whose bytes have not all arrived)
/// and a tail that may begin a stop string. A stop string ends the text
/// before it.
class RowText {
public:
  RowText(const falcon_tokenizer_t *tokenizer, ArrayRef<std::string> stops)
      : tokenizer(tokenizer), stops(stops) {}

  /// Adds a token; true when the text now contains a stop string.
  Expected<bool> add(int64_t id) {
    ids.push_back(id);
    // Only the ids after the last complete character are decoded again: the
    // decoder concatenates bytes, so text ending on a character boundary (no
    // trailing U+FFFD) does not change when more ids follow.
    Expected<std::string> decoded = decode(tokenizer, ArrayRef(ids).drop_front(settledIds));
    if (!decoded)
      return decoded.takeError();
    text = settledText + *decoded;
    if (!StringRef(text).ends_with(kReplacement)) {
      settledIds = ids.size();
      settledText = text;
    }
    // A stop string may straddle the last release point: the whole text is
    // searched, the first stop found anywhere ends it.
    for (const std::string &stop : stops) {
      size_t found = text.find(stop);
      if (found != std::string::npos) {
        text.resize(found);
        stopped = true;
      }
    }
    return stopped;
  }

  /// The text that can no longer change and was not released yet.
  std::string takeReady() {
    size_t end = text.size();
    if (!stopped) {
      while (StringRef(text).substr(0, end).ends_with(kReplacement))
        end -= kReplacement.size();
      for (const std::string &stop : stops)
        for (size_t keep = std::min(stop.size() - 1, end - released); keep > 0; --keep)
          if (StringRef(text).substr(0, end).ends_with(StringRef(stop).take_front(keep))) {
            end -= keep;
            break;
          }
    }
    end = std::max(end, released);
    std::string ready = text.substr(released, end - released);
    released = end;
    return ready;
  }

  /// The rest of the text, at the end of the row.
  std::string finish() {
    std::string rest = text.substr(std::min(released, text.size()));
    released = text.size();
    return rest;
  }

  const std::string &all() const { return text; }

private:
  /// U+FFFD, what the decoder makes of a character whose bytes have not all
  /// arrived.
  static constexpr StringRef kReplacement = "\xEF\xBF\xBD";
  const falcon_tokenizer_t *tokenizer;
  ArrayRef<std::string> stops;
  std::vector<int64_t> ids;
  /// The text of ids[0, settledIds), which ends on a character boundary.
  size_t settledIds = 0;
  std::string settledText;
  std::string text;
  size_t released = 0;
  bool stopped = false;
};

/// What a run needs besides the request: the model, its tokenizer (when
/// text is involved) and the end-of-sequence id.
struct Runner {
  std::unique_ptr<falcon_model_t, ModelDeleter> model;
  falcon_model_info_t info;
  TokenizerPtr tokenizer;
  std::optional<int64_t> eos;
  bool warnedPastContext = false;

  Expected<std::unique_ptr<falcon_session_t, SessionDeleter>> createSession(int64_t batch,
                                                                          int64_t capacity) {
    falcon_session_options_t options;
    falcon_session_options_initialize(&options);
    options.batch_size = batch;
    options.micro_batches = microBatches;
    options.cache_capacity = capacity;
    falcon_session_t *session = nullptr;
    if (Error error = toError(falcon_session_create(model.get(), &options, &session)))
      return std::move(error);
    return std::unique_ptr<falcon_session_t, SessionDeleter>(session);
  }

  /// Once per run, when a row reaches position max_position_embeddings.
  void warnPastContext(int64_t position) {
    if (warnedPastContext || position < info.max_position_embeddings || launch.rank != 0)
      return;
    warnedPastContext = true;
    WithColor::warning(errs(), "falcon-run")
        << "position " << position << " is past max_position_embeddings ("
        << info.max_position_embeddings
        << "): the model was not trained on longer sequences; expect worse text\n";
  }
};

/// The end-of-sequence id of the artifact: generation_config.json's
/// eos_token_id (the first of a list), else the id of tokenizer_config.json's
/// eos_token; none if neither says.
Expected<std::optional<int64_t>> findEndOfSequence(StringRef artifact,
                                                   const falcon_tokenizer_t *tokenizer) {
  auto readJSON = [&](StringRef name) -> Expected<std::optional<json::Value>> {
    SmallString<256> path(artifact);
    sys::path::append(path, name);
    ErrorOr<std::unique_ptr<MemoryBuffer>> buffer = MemoryBuffer::getFile(path);
    if (!buffer)
      return std::optional<json::Value>();
    Expected<json::Value> value = json::parse((*buffer)->getBuffer());
    if (!value)
      return createStringError(path + ": malformed JSON: " + toString(value.takeError()));
    return std::optional<json::Value>(std::move(*value));
  };
  Expected<std::optional<json::Value>> generation = readJSON("generation_config.json");
  if (!generation)
    return generation.takeError();
  if (*generation) {
    const json::Object *object = (*generation)->getAsObject();
    const json::Value *eos = object ? object->get("eos_token_id") : nullptr;
    if (eos && eos->getAsArray() && !eos->getAsArray()->empty())
      eos = &eos->getAsArray()->front();
    if (eos && eos->getAsInteger())
      return std::optional<int64_t>(*eos->getAsInteger());
  }
  Expected<std::optional<json::Value>> tokenizerConfig = readJSON("tokenizer_config.json");
  if (!tokenizerConfig)
    return tokenizerConfig.takeError();
  if (*tokenizerConfig && tokenizer) {
    const json::Object *object = (*tokenizerConfig)->getAsObject();
    std::optional<StringRef> token = object ? object->getString("eos_token") : std::nullopt;
    if (object && !token)
      if (const json::Object *added = object->getObject("eos_token"))
        token = added->getString("content");
    int64_t id = 0;
    if (token) {
      falcon_status_t status = falcon_tokenizer_token_to_id(tokenizer, token->str().c_str(), &id);
      if (!status)
        return std::optional<int64_t>(id);
      falcon_status_free(status);
    }
  }
  return std::optional<int64_t>();
}

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

/// The request's sampling settings, checked by the runtime.
falcon_sampling_options_t samplingOptions() {
  falcon_sampling_options_t options;
  falcon_sampling_options_initialize(&options);
  options.temperature = temperature;
  options.top_k = topK;
  options.top_p = topP;
  options.min_p = minP;
  options.repetition_penalty = repetitionPenalty;
  options.seed = seed;
  return options;
}

/// One generation over `rows` (each a prompt), streaming the text of a
/// single text row to `stream` as it is produced.
struct GenerateRequest {
  std::vector<std::vector<int64_t>> rows;
  std::vector<std::string> stops;
  bool text = false;
  raw_ostream *stream = nullptr;
  float *promptLogits = nullptr;
  size_t promptLogitsCapacity = 0;
  float *stepLogits = nullptr;
  size_t stepLogitsCapacity = 0;
};
struct GenerateResult {
  std::vector<std::vector<int64_t>> ids;
  std::vector<std::string> texts;
  falcon_generate_stats_t stats = {};
};

Expected<GenerateResult> generate(Runner &runner, falcon_session_t *session,
                                  const GenerateRequest &request, int64_t newTokens) {
  int64_t batch = int64_t(request.rows.size());
  int64_t longest = 0;
  for (const std::vector<int64_t> &row : request.rows)
    longest = std::max(longest, int64_t(row.size()));
  std::vector<int64_t> prompt(size_t(batch * longest), 0), lengths;
  for (auto [index, row] : enumerate(request.rows)) {
    std::copy(row.begin(), row.end(), prompt.begin() + index * longest);
    lengths.push_back(int64_t(row.size()));
  }
  // More new tokens than the cache holds are refused by the runtime before
  // it looks at `ids`, which therefore never needs more than the capacity.
  falcon_session_info_t info;
  if (Error error = toError(falcon_session_query_info(session, &info)))
    return std::move(error);
  std::vector<int64_t> ids(size_t(batch * std::min(newTokens, info.cache_capacity)));
  std::vector<int64_t> counts(static_cast<size_t>(batch));
  GenerateResult result;
  // Rank 0 turns tokens into text and decides on stop strings.
  struct Context {
    Runner &runner;
    const GenerateRequest &request;
    ArrayRef<int64_t> lengths;
    std::vector<RowText> texts;
    std::vector<int64_t> produced;
    std::optional<Error> error;
  } context{runner, request, lengths, {}, std::vector<int64_t>(size_t(batch)), std::nullopt};
  bool decodes = request.text && runner.tokenizer && launch.rank == 0;
  for (int64_t row = 0; decodes && row < batch; ++row)
    context.texts.emplace_back(runner.tokenizer.get(), request.stops);
  for (int64_t length : lengths)
    runner.warnPastContext(length);
  auto onToken = [](void *userData, int64_t row, int64_t id) -> int {
    Context &context = *static_cast<Context *>(userData);
    context.runner.warnPastContext(context.lengths[row] + context.produced[row]++);
    if (context.texts.empty() || context.error)
      return 0;
    // The end-of-sequence token ends the row and is not shown.
    if (context.runner.eos && id == *context.runner.eos)
      return 1;
    Expected<bool> stopped = context.texts[row].add(id);
    if (!stopped) {
      context.error = stopped.takeError();
      return 1;
    }
    if (context.request.stream) {
      *context.request.stream << context.texts[row].takeReady();
      context.request.stream->flush();
    }
    return *stopped;
  };
  falcon_generate_options_t options;
  falcon_generate_options_initialize(&options);
  options.max_new_tokens = newTokens;
  options.sampling = samplingOptions();
  int64_t eos = runner.eos.value_or(-1);
  if (runner.eos) {
    options.stop_token_ids = &eos;
    options.stop_token_count = 1;
  }
  options.token_callback = onToken;
  options.user_data = &context;
  falcon_generate_outputs_t outputs = {ids.data(),
                                       ids.size(),
                                       counts.data(),
                                       request.promptLogits,
                                       request.promptLogitsCapacity,
                                       request.stepLogits,
                                       request.stepLogitsCapacity,
                                       &result.stats};
  if (Error error = toError(falcon_session_generate(session, prompt.data(), lengths.data(),
                                                     batch, longest, &options, &outputs)))
    return std::move(error);
  if (context.error)
    return std::move(*context.error);
  for (int64_t row = 0; row < batch; ++row) {
    result.ids.emplace_back(ids.begin() + row * newTokens,
                            ids.begin() + row * newTokens + counts[row]);
    if (!context.texts.empty()) {
      result.texts.push_back(context.texts[row].all());
      if (request.stream)
        *request.stream << context.texts[row].finish();
    }
  }
  return result;
}

/// The f16 precision guard's switches, one line on stderr (none: nothing).
void reportPrecisionFallbacks(const falcon_session_t *session, int64_t numLayers) {
  size_t count = 0;
  std::vector<uint8_t> fallbacks(size_t(numLayers) + 1);
  if (StatusPtr status{falcon_session_query_precision_fallbacks(session, fallbacks.size(),
                                                                fallbacks.data(), &count)})
    return;
  SmallVector<std::string> switched;
  for (size_t index = 0; index < count; ++index)
    if (fallbacks[index])
      switched.push_back(index == size_t(numLayers) ? "the LM head"
                                                    : "layer " + std::to_string(index));
  if (switched.empty())
    return;
  errs() << "falcon-run: precision guard: " << join(switched, ", ")
         << " overflowed in f16 and ran again in bf16\n";
  errs().flush();
}

/// Prints the speed and memory lines of a generation.
void printStats(raw_ostream &os, const falcon_generate_stats_t &stats) {
  os << "prefill: " << formatRate(stats.prefill_tokens, stats.prefill_seconds) << "\n";
  if (stats.decode_tokens > 0)
    os << "decode: " << formatRate(stats.decode_tokens, stats.decode_seconds) << "\n";
  else
    os << "decode: no decode steps\n";
  // Every byte the model used went through the runtime: its buffers and the
  // compiled code's workspace.
  auto mebibytes = [](uint64_t bytes) { return format("%.2f MiB", bytes / 1048576.0); };
  os << "memory: workspace peak " << mebibytes(stats.workspace_peak_bytes)
     << ", buffers peak " << mebibytes(stats.buffer_peak_bytes) << "\n";
  // Rank 0's view of a multi-rank run: where its time went besides compute.
  if (launch.worldSize > 1)
    os << "collectives (rank 0): " << stats.all_reduces << " all-reduces in "
       << format("%.3f", stats.all_reduce_seconds * 1e3) << " ms, transfers "
       << format("%.3f", stats.transfer_seconds * 1e3) << " ms\n";
}

/// --perplexity: the file's tokens in consecutive windows of
/// max_position_embeddings tokens, each a fresh context; every token after a
/// window's first is scored by -log softmax(logits)[token] (in double), and
/// the perplexity is exp(mean). tools/perplexity_reference.py is the same
/// definition on transformers.
int runPerplexity(Runner &runner) {
  ErrorOr<std::unique_ptr<MemoryBuffer>> file =
      MemoryBuffer::getFile(perplexityFile, /*IsText=*/false, /*RequiresNullTerminator=*/false);
  if (!file)
    return fail(perplexityFile + ": " + file.getError().message());
  Expected<std::vector<int64_t>> ids = encode(runner.tokenizer.get(), (*file)->getBuffer());
  if (!ids)
    return fail(perplexityFile + ": " + toString(ids.takeError()));
  const int64_t window = runner.info.max_position_embeddings;
  const int64_t vocab = runner.info.vocab_size;
  int64_t windows = 0, scored = 0;
  for (int64_t start = 0; start + 1 < int64_t(ids->size()); start += window)
    ++windows;
  if (windows == 0)
    return fail(perplexityFile + ": " + Twine(ids->size()) +
                " tokens: the perplexity needs at least 2");
  Expected<std::unique_ptr<falcon_session_t, SessionDeleter>> session =
      runner.createSession(1, window);
  if (!session)
    return fail(toString(session.takeError()));
  std::vector<float> logits(size_t(window * vocab));
  double nllSum = 0;
  int64_t done = 0, lastTenth = 0;
  auto start = std::chrono::steady_clock::now();
  for (int64_t begin = 0; begin + 1 < int64_t(ids->size()); begin += window) {
    int64_t length = std::min<int64_t>(window, int64_t(ids->size()) - begin);
    if (Error error = toError(falcon_session_reset(session->get())))
      return fail(toString(std::move(error)));
    if (Error error = toError(falcon_session_prefill(session->get(), ids->data() + begin, 1,
                                                     length, logits.size(), logits.data())))
      return fail(toString(std::move(error)));
    for (int64_t position = 0; position + 1 < length; ++position) {
      const float *row = logits.data() + position * vocab;
      double largest = -INFINITY;
      for (int64_t id = 0; id < vocab; ++id)
        largest = std::max(largest, double(row[id]));
      double sum = 0;
      for (int64_t id = 0; id < vocab; ++id)
        sum += std::exp(double(row[id]) - largest);
      nllSum += largest + std::log(sum) - double(row[(*ids)[size_t(begin + position + 1)]]);
      ++scored;
    }
    ++done;
    int64_t tenth = done * 10 / windows;
    if (tenth > lastTenth && launch.rank == 0 && done < windows)
      errs() << "falcon-run: perplexity: " << done << " of " << windows << " windows\n";
    lastTenth = tenth;
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (launch.rank != 0)
    return 0;
  errs() << "falcon-run: scored " << formatRate(scored, seconds) << "\n";
  outs() << "perplexity: " << format("%.6f", std::exp(nllSum / double(scored))) << " (tokens "
         << ids->size() << ", scored " << scored << ", windows " << windows << ")\n";
  return 0;
}

/// --interactive: each line of stdin is a message; the answer is generated
/// after the whole conversation so far in the Falcon instruct format and
/// streamed. A conversation longer than the cache loses its oldest turns.
int runInteractive(Runner &runner, int64_t newTokens) {
  int64_t capacity = cacheCapacity > 0 ? int64_t(cacheCapacity)
                                       : runner.info.max_position_embeddings;
  Expected<std::unique_ptr<falcon_session_t, SessionDeleter>> session =
      runner.createSession(1, capacity);
  if (!session)
    return fail(toString(session.takeError()));
  std::vector<std::string> turns;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (StringRef(line).trim().empty())
      continue;
    std::string turn = "User: " + StringRef(line).trim().str() + "\nFalcon:";
    std::vector<int64_t> prompt;
    // The oldest turns go first when the conversation outgrows the cache.
    for (size_t first = 0; first <= turns.size(); ++first) {
      std::string conversation;
      for (size_t index = first; index < turns.size(); ++index)
        conversation += turns[index];
      Expected<std::vector<int64_t>> ids = encode(runner.tokenizer.get(), conversation + turn);
      if (!ids)
        return fail("stdin: " + toString(ids.takeError()));
      prompt = std::move(*ids);
      if (int64_t(prompt.size()) + newTokens <= capacity) {
        turns.erase(turns.begin(), turns.begin() + first);
        break;
      }
    }
    if (int64_t(prompt.size()) + newTokens > capacity) {
      WithColor::warning(errs(), "falcon-run")
          << "the message (" << prompt.size() << " tokens) plus " << newTokens
          << " new tokens exceeds the KV-cache capacity of " << capacity
          << "; skipped (shorten it, or pass a smaller --max-new-tokens)\n";
      turns.clear();
      continue;
    }
    if (Error error = toError(falcon_session_reset(session->get())))
      return fail(toString(std::move(error)));
    GenerateRequest request;
    request.rows = {prompt};
    request.stops = {stopStrings.begin(), stopStrings.end()};
    request.stops.push_back("\nUser:");
    request.text = true;
    request.stream = &outs();
    Expected<GenerateResult> result = generate(runner, session->get(), request, newTokens);
    if (!result)
      return fail(toString(result.takeError()));
    outs() << "\n";
    outs().flush();
    turns.push_back(turn + result->texts.front() + "\n");
  }
  return 0;
}

/// The prompts of the request in command-line order: text (--prompt,
/// --prompt-file) or ids (--prompt-ids), not both.
Expected<std::vector<std::vector<int64_t>>> readPrompts(Runner &runner, bool &text) {
  std::vector<std::pair<unsigned, std::string>> texts;
  for (auto [index, prompt] : enumerate(promptOption))
    texts.emplace_back(promptOption.getPosition(index), prompt);
  for (auto [index, path] : enumerate(promptFileOption)) {
    ErrorOr<std::unique_ptr<MemoryBuffer>> file = MemoryBuffer::getFile(path, /*IsText=*/false);
    if (!file)
      return createStringError(path + ": " + file.getError().message());
    texts.emplace_back(promptFileOption.getPosition(index), (*file)->getBuffer().str());
  }
  llvm::sort(texts);
  std::vector<std::vector<int64_t>> rows;
  text = !texts.empty();
  for (auto &[position, prompt] : texts) {
    Expected<std::vector<int64_t>> ids = encode(runner.tokenizer.get(), prompt);
    if (!ids)
      return createStringError("prompt " + Twine(rows.size()) + ": " + toString(ids.takeError()));
    if (ids->empty())
      return createStringError("prompt " + Twine(rows.size()) + " is empty");
    rows.push_back(std::move(*ids));
  }
  for (const std::string &prompt : promptIdsOption) {
    Expected<std::vector<int64_t>> ids = parsePromptIds(prompt);
    if (!ids)
      return ids.takeError();
    rows.push_back(std::move(*ids));
  }
  return rows;
}

int run() {
  bool textPrompts = !promptOption.empty() || !promptFileOption.empty();
  int modes = (textPrompts || !promptIdsOption.empty()) + bool(interactive) +
              !perplexityFile.empty();
  if (modes == 0)
    return fail("nothing to do: pass --prompt TEXT, --prompt-file FILE, --prompt-ids IDS, "
                "--interactive or --perplexity FILE");
  if (modes > 1)
    return fail("--prompt/--prompt-ids, --interactive and --perplexity are separate modes; "
                "pass one");
  if (textPrompts && !promptIdsOption.empty())
    return fail("pass the prompts as text (--prompt, --prompt-file) or as ids (--prompt-ids), "
                "not both");
  if (interactive && launch.worldSize > 1)
    return fail("--interactive runs in one process, not under mpirun");
  if (maxNewTokens < 0)
    return fail("--max-new-tokens must not be negative, found " +
                Twine(maxNewTokens));
  if (cacheCapacity < 0)
    return fail("--cache-capacity must not be negative, found " +
                Twine(cacheCapacity));
  for (const std::string &stop : stopStrings)
    if (stop.empty())
      return fail("--stop: the stop string is empty");
  if ((interactive || !perplexityFile.empty()) &&
      (!logitsOut.empty() || !stepLogitsOut.empty() || !outputIds.empty()))
    return fail("--logits-out, --step-logits-out and --output-ids write a --prompt or "
                "--prompt-ids run's results, not --interactive's or --perplexity's");
  bool needsTokenizer = textPrompts || interactive || !perplexityFile.empty();
  if (!stopStrings.empty() && !needsTokenizer)
    return fail("--stop needs text prompts (--prompt, --prompt-file or --interactive): it "
                "matches the generated text");

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

  Runner runner;
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
  runner.model.reset(rawModel);
  falcon_model_info_t &info = runner.info;
  if (StatusPtr status{falcon_model_query_info(runner.model.get(), &info)})
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
  // The tokenizer travels in the artifact (falcon-compile copies it).
  falcon_tokenizer_t *rawTokenizer = nullptr;
  if (falcon_status_t status = falcon_tokenizer_open(artifactDir.c_str(), &rawTokenizer)) {
    StatusPtr owned(status);
    if (needsTokenizer)
      return fail(falcon_status_code(status) == FALCON_STATUS_NOT_FOUND
                      ? artifactDir + ": the artifact has no tokenizer.json (compile a "
                                      "checkpoint that has one), so it takes --prompt-ids only"
                      : Twine(falcon_status_message(status)));
  }
  runner.tokenizer.reset(rawTokenizer);
  if (!ignoreEOS) {
    Expected<std::optional<int64_t>> eos = findEndOfSequence(artifactDir, rawTokenizer);
    if (!eos)
      return fail(toString(eos.takeError()));
    runner.eos = *eos;
  }

  if (!perplexityFile.empty())
    return runPerplexity(runner);
  int64_t newTokens = maxNewTokens;
  if (interactive)
    return runInteractive(runner, maxNewTokens.getNumOccurrences() ? newTokens : 256);

  bool text = false;
  Expected<std::vector<std::vector<int64_t>>> rows = readPrompts(runner, text);
  if (!rows)
    return fail(toString(rows.takeError()));
  int64_t batch = int64_t(rows->size());
  int64_t longest = 0;
  for (const std::vector<int64_t> &row : *rows)
    longest = std::max(longest, int64_t(row.size()));
  // Default: what the request needs (an absurd request gets the runtime's
  // message that says why it cannot be allocated).
  int64_t neededCapacity = maxNewTokens > std::numeric_limits<int64_t>::max() / 2
                               ? std::numeric_limits<int64_t>::max() / 2
                               : longest + int64_t(maxNewTokens);
  int64_t capacity = cacheCapacity > 0 ? int64_t(cacheCapacity) : neededCapacity;
  Expected<std::unique_ptr<falcon_session_t, SessionDeleter>> session =
      runner.createSession(batch, capacity);
  if (!session)
    return fail(toString(session.takeError()));

  // A request longer than the cache is refused by the runtime before it
  // looks at these buffers, so they never need more than the capacity.
  std::vector<float> logits, stepLogits;
  if (logitsFile)
    logits.resize(size_t(batch) * size_t(longest) * size_t(info.vocab_size));
  if (stepLogitsFile)
    stepLogits.resize(size_t(batch) * size_t(std::min<int64_t>(newTokens, capacity)) *
                      size_t(info.vocab_size));
  GenerateRequest request;
  request.rows = std::move(*rows);
  request.stops = {stopStrings.begin(), stopStrings.end()};
  request.text = text;
  // One text row streams; several are printed whole at the end.
  if (text && batch == 1 && writesOutputs)
    request.stream = &outs();
  request.promptLogits = logitsFile ? logits.data() : nullptr;
  request.promptLogitsCapacity = logits.size();
  request.stepLogits = stepLogitsFile ? stepLogits.data() : nullptr;
  request.stepLogitsCapacity = stepLogits.size();
  Expected<GenerateResult> result = generate(runner, session->get(), request, newTokens);
  if (!result)
    return fail(toString(result.takeError()));
  if (writesOutputs)
    reportPrecisionFallbacks(session->get(), info.num_layers);

  for (auto [pending, values, rowsPerBatch] :
       {std::tuple{&logitsFile, &logits, longest},
        std::tuple{&stepLogitsFile, &stepLogits, newTokens}}) {
    if (!*pending)
      continue;
    SmallVector<int64_t> shape = {rowsPerBatch, info.vocab_size};
    if (batch > 1)
      shape.insert(shape.begin(), batch);
    writeNpy((*pending)->stream(), values->data(), shape);
    if (Error error = (*pending)->commit())
      return fail(toString(std::move(error)));
  }
  // The generated ids of row `row`, space-separated.
  auto rowIds = [&](int64_t row) {
    return join(map_range(result->ids[size_t(row)],
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
  if (text) {
    // The text on stdout, the rest on stderr.
    if (batch == 1)
      outs() << "\n";
    for (int64_t row = 0; batch > 1 && row < batch; ++row)
      outs() << "[prompt " << row << "] " << result->texts[size_t(row)] << "\n";
    outs().flush();
    printStats(errs(), result->stats);
    return 0;
  }
  for (int64_t row = 0; row < batch; ++row) {
    outs() << "generated ids";
    if (batch > 1)
      outs() << " (prompt " << row << ")";
    std::string ids = rowIds(row);
    outs() << ":" << (ids.empty() ? "" : " ") << ids << "\n";
  }
  printStats(outs(), result->stats);
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
