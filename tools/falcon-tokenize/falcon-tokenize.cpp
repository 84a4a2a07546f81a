//===- falcon-tokenize.cpp - encode or decode with a tokenizer.json -------===//
//
// falcon-tokenize TOKENIZER [--decode] [--each-line] [--add-special-tokens]
//                 [--skip-special-tokens]
//
// TOKENIZER is a tokenizer.json or a directory holding one (an artifact).
// Encoding reads all of stdin as UTF-8 text and prints the ids separated by
// spaces on one line; with --each-line, every input line (its "\n"
// included) is encoded on its own and gets its own output line. --decode reads whitespace-separated ids and writes the
// text exactly, with no newline added. Any error is one line
// "falcon-tokenize: error: ..." on stderr and exit code 1.
//
//===----------------------------------------------------------------------===//

#include "falcon/tokenizer.h"
#include "falcon/Support/ToolVersion.h"

#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>
#include <string>
#include <vector>

using namespace llvm;

namespace {

cl::OptionCategory tokenizeCategory("falcon-tokenize options");

cl::opt<std::string> tokenizerPath(cl::Positional, cl::Required,
                                   cl::desc("<tokenizer.json or directory>"),
                                   cl::cat(tokenizeCategory));
cl::opt<bool> decodeMode("decode",
                         cl::desc("Read ids from stdin and write the text"),
                         cl::cat(tokenizeCategory));
cl::opt<bool> eachLine(
    "each-line",
    cl::desc("Encode each input line (with its newline) on its own"),
    cl::cat(tokenizeCategory));
cl::opt<bool> addSpecialTokens(
    "add-special-tokens",
    cl::desc("Encode with the post-processor's special tokens"),
    cl::cat(tokenizeCategory));
cl::opt<bool> skipSpecialTokens("skip-special-tokens",
                                cl::desc("Decode without special tokens"),
                                cl::cat(tokenizeCategory));

[[noreturn]] void fail(const Twine &message) {
  errs() << "falcon-tokenize: error: " << message << "\n";
  std::exit(1);
}

/// Exits with the status's message when it is an error.
void check(falcon_status_t status) {
  if (!status)
    return;
  std::string message = falcon_status_message(status);
  falcon_status_free(status);
  fail(message);
}

} // namespace

int main(int argc, char **argv) {
  InitLLVM initLLVM(argc, argv);
  cl::HideUnrelatedOptions(tokenizeCategory);
  ::falcon::setToolVersionPrinter("falcon-tokenize", [](raw_ostream &os) {
    os << "libfalcon_runtime " << falcon_runtime_version() << "\n";
  });
  cl::ParseCommandLineOptions(
      argc, argv, "falcon-tokenize: encode stdin to ids, or decode ids\n");

  falcon_tokenizer_t *tokenizer = nullptr;
  check(falcon_tokenizer_open(tokenizerPath.c_str(), &tokenizer));

  ErrorOr<std::unique_ptr<MemoryBuffer>> input = MemoryBuffer::getSTDIN();
  if (!input)
    fail("cannot read stdin: " + input.getError().message());
  StringRef text = (*input)->getBuffer();

  if (!decodeMode) {
    SmallVector<StringRef, 0> pieces;
    if (eachLine) {
      for (StringRef rest = text; !rest.empty();) {
        size_t end = rest.find('\n');
        end = end == StringRef::npos ? rest.size() : end + 1;
        pieces.push_back(rest.take_front(end));
        rest = rest.drop_front(end);
      }
    } else {
      pieces.push_back(text);
    }
    std::vector<int64_t> ids;
    std::string out;
    for (StringRef piece : pieces) {
      ids.resize(piece.size() + 16);
      size_t count = 0;
      check(falcon_tokenizer_encode(tokenizer, piece.data(), piece.size(),
                                    addSpecialTokens, ids.data(), ids.size(),
                                    &count));
      for (size_t i = 0; i < count; ++i) {
        if (i)
          out.push_back(' ');
        out += std::to_string(ids[i]);
      }
      out.push_back('\n');
    }
    outs() << out;
    falcon_tokenizer_release(tokenizer);
    return 0;
  }

  std::vector<int64_t> ids;
  SmallVector<StringRef, 0> words;
  SplitString(text, words, " \t\n\r\v\f");
  for (StringRef word : words) {
    int64_t id;
    if (word.getAsInteger(10, id))
      fail("'" + word + "' is not a token id");
    ids.push_back(id);
  }
  size_t length = 0;
  falcon_status_t status =
      falcon_tokenizer_decode(tokenizer, ids.data(), ids.size(),
                              skipSpecialTokens, nullptr, 0, &length);
  if (status && falcon_status_code(status) == FALCON_STATUS_OUT_OF_RANGE &&
      length > 0) {
    falcon_status_free(status);
    std::string decoded(length, '\0');
    status = falcon_tokenizer_decode(tokenizer, ids.data(), ids.size(),
                                     skipSpecialTokens, decoded.data(),
                                     decoded.size(), &length);
    check(status);
    outs() << decoded;
  } else {
    check(status);
  }
  falcon_tokenizer_release(tokenizer);
  return 0;
}
