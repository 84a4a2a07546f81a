#===- cmake/FalconVersion.cmake - the version header ----------------------===#
#
# ${PROJECT_BINARY_DIR}/include/falcon/Version.h: PROJECT_VERSION and the git
# commit. Written at configure time, then refreshed by the `falcon-version`
# target at every build (a new commit needs no reconfigure); the targets that
# include it depend on `falcon-version`.
#
#===------------------------------------------------------------------------===#

find_package(Git QUIET)
set(FALCON_VERSION_HEADER ${PROJECT_BINARY_DIR}/include/falcon/Version.h)
set(_falcon_version_args
  -DFALCON_VERSION=${PROJECT_VERSION}
  -DFALCON_SOURCE_DIR=${PROJECT_SOURCE_DIR}
  -DGIT_EXECUTABLE=${GIT_EXECUTABLE}
  -DINPUT=${PROJECT_SOURCE_DIR}/include/falcon/Version.h.in
  -DOUTPUT=${FALCON_VERSION_HEADER})
execute_process(COMMAND ${CMAKE_COMMAND} ${_falcon_version_args}
                -P ${PROJECT_SOURCE_DIR}/cmake/FalconVersionHeader.cmake)
add_custom_target(falcon-version
  COMMAND ${CMAKE_COMMAND} ${_falcon_version_args}
          -P ${PROJECT_SOURCE_DIR}/cmake/FalconVersionHeader.cmake
  BYPRODUCTS ${FALCON_VERSION_HEADER}
  COMMENT "Checking the git commit for falcon/Version.h"
  VERBATIM)
