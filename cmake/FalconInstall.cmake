#===- cmake/FalconInstall.cmake - `cmake --install build --prefix P` ------===#
#
# Included last by the top-level CMakeLists.txt (every target exists by then).
#
#   P/bin/          falcon-compile, falcon-opt, falcon-run, falcon-tokenize
#   P/lib/          libfalcon_runtime.so.X.Y.Z, .so.X (SONAME), .so
#   P/include/falcon/            the runtime's public C headers
#   P/lib/cmake/FalconMLIR/      find_package(FalconMLIR): FalconMLIR::runtime
#   P/lib/pkgconfig/falcon-runtime.pc
#   P/share/doc/falcon-mlir/     LICENSE, README.md, CHANGELOG.md
#
# Everything is relative to the prefix: an installed tree can be moved. The
# tools find libfalcon_runtime.so through $ORIGIN/../lib and LLVM's, MLIR's
# and MPI's libraries through their absolute directories (RUNPATH); see
# docs/install.md.
#
#===------------------------------------------------------------------------===#

include(CMakePackageConfigHelpers)

set(FALCON_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/FalconMLIR)
set(FALCON_INSTALL_PKGCONFIGDIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# Tools.
foreach(tool falcon-compile falcon-opt falcon-run falcon-tokenize)
  set_target_properties(${tool} PROPERTIES
    INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}"
    # + the directories of libLLVM, libMLIR and libmpi (not the build tree).
    INSTALL_RPATH_USE_LINK_PATH ON)
  install(TARGETS ${tool} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endforeach()

# The runtime library, its headers and the CMake package.
install(TARGETS falcon_runtime EXPORT FalconMLIRTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/runtime/include/falcon/
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/falcon
  FILES_MATCHING PATTERN "*.h")
install(EXPORT FalconMLIRTargets
  NAMESPACE FalconMLIR::
  FILE FalconMLIRTargets.cmake
  DESTINATION ${FALCON_INSTALL_CMAKEDIR})
configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/FalconMLIRConfig.cmake.in
  ${PROJECT_BINARY_DIR}/lib/cmake/FalconMLIR/FalconMLIRConfig.cmake
  INSTALL_DESTINATION ${FALCON_INSTALL_CMAKEDIR}
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_LIBDIR CMAKE_INSTALL_BINDIR)
# 0.x: a new minor version may change the C API, so 0.4 satisfies only 0.4.
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/lib/cmake/FalconMLIR/FalconMLIRConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/lib/cmake/FalconMLIR/FalconMLIRConfig.cmake
  ${PROJECT_BINARY_DIR}/lib/cmake/FalconMLIR/FalconMLIRConfigVersion.cmake
  DESTINATION ${FALCON_INSTALL_CMAKEDIR})

# pkg-config, relocatable: the prefix is found from the .pc file's place.
file(RELATIVE_PATH FALCON_PC_PREFIX_FROM_PCFILEDIR
     /prefix/${FALCON_INSTALL_PKGCONFIGDIR} /prefix)
string(REGEX REPLACE "/$" "" FALCON_PC_PREFIX_FROM_PCFILEDIR "${FALCON_PC_PREFIX_FROM_PCFILEDIR}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/falcon-runtime.pc.in
               ${PROJECT_BINARY_DIR}/lib/pkgconfig/falcon-runtime.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/lib/pkgconfig/falcon-runtime.pc
        DESTINATION ${FALCON_INSTALL_PKGCONFIGDIR})

foreach(doc LICENSE README.md CHANGELOG.md)
  if(EXISTS ${PROJECT_SOURCE_DIR}/${doc})
    install(FILES ${PROJECT_SOURCE_DIR}/${doc} DESTINATION ${CMAKE_INSTALL_DOCDIR})
  endif()
endforeach()

# test/Install installs the build tree: what it installs must be built.
add_dependencies(falcon-test-depends falcon_runtime)
foreach(tool falcon-compile falcon-opt falcon-run falcon-tokenize)
  if(TARGET ${tool})
    add_dependencies(falcon-test-depends ${tool})
  endif()
endforeach()
