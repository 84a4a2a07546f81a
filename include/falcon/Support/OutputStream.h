//===- OutputStream.h - closing an output stream with its error -*- C++ -*-===//
//
// A raw_fd_ostream destroyed with a write error it never reported aborts the
// process ("LLVM ERROR: IO failure on output stream"); a full disk must be a
// one-line error instead. Every file the compiler writes is closed here.
//
//===----------------------------------------------------------------------===//

#ifndef FALCON_SUPPORT_OUTPUTSTREAM_H
#define FALCON_SUPPORT_OUTPUTSTREAM_H

#include "llvm/ADT/Twine.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"

namespace falcon {

/// Closes `os` (written to `path`) and returns its write error, if any, as
/// "PATH: cannot write: REASON"; the stream's error is cleared either way.
inline llvm::Error closeOutputStream(llvm::raw_fd_ostream &os, const llvm::Twine &path) {
  os.close();
  if (!os.has_error())
    return llvm::Error::success();
  std::error_code ec = os.error();
  os.clear_error();
  return llvm::createStringError(path + ": cannot write: " + ec.message());
}

} // namespace falcon

#endif // FALCON_SUPPORT_OUTPUTSTREAM_H
