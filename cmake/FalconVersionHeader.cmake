#===- cmake/FalconVersionHeader.cmake - writes falcon/Version.h -----------===#
#
# Script mode (cmake -P), run at configure time and by the `falcon-version`
# target at every build:
#   -DFALCON_VERSION=X.Y.Z -DFALCON_SOURCE_DIR=... -DGIT_EXECUTABLE=...
#   -DINPUT=include/falcon/Version.h.in -DOUTPUT=build/include/falcon/Version.h
# configure_file rewrites OUTPUT only when its text changes, so a build with
# the same commit recompiles nothing.
#
#===------------------------------------------------------------------------===#

string(REPLACE "." ";" _parts "${FALCON_VERSION}")
list(GET _parts 0 FALCON_VERSION_MAJOR)
list(GET _parts 1 FALCON_VERSION_MINOR)
list(GET _parts 2 FALCON_VERSION_PATCH)

set(FALCON_GIT_COMMIT "unknown")
if(GIT_EXECUTABLE AND EXISTS "${FALCON_SOURCE_DIR}/.git")
  execute_process(
    COMMAND "${GIT_EXECUTABLE}" -C "${FALCON_SOURCE_DIR}" rev-parse --short=7 HEAD
    OUTPUT_VARIABLE _commit OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _rc ERROR_QUIET)
  if(_rc EQUAL 0 AND _commit)
    set(FALCON_GIT_COMMIT "${_commit}")
    # Tracked files only; --no-optional-locks: never takes the index lock
    # (other git commands may be running in the checkout).
    execute_process(
      COMMAND "${GIT_EXECUTABLE}" --no-optional-locks -C "${FALCON_SOURCE_DIR}"
              status --porcelain --untracked-files=no
      OUTPUT_VARIABLE _changes OUTPUT_STRIP_TRAILING_WHITESPACE
      RESULT_VARIABLE _rc ERROR_QUIET)
    if(_rc EQUAL 0 AND _changes)
      string(APPEND FALCON_GIT_COMMIT "+dirty")
    endif()
  endif()
endif()

configure_file("${INPUT}" "${OUTPUT}" @ONLY)
