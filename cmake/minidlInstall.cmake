# Installs the headers and a CMake package so that downstream projects can
# find_package(minidl) and link minidl::minidl.
include(CMakePackageConfigHelpers)

install(DIRECTORY include/minidl DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS minidl EXPORT minidlTargets)
install(EXPORT minidlTargets NAMESPACE minidl:: DESTINATION ${CMAKE_INSTALL_DATADIR}/cmake/minidl)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/minidlConfig.cmake.in
  ${PROJECT_BINARY_DIR}/minidlConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_DATADIR}/cmake/minidl)
# A header-only library fits any architecture.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/minidlConfigVersion.cmake
  COMPATIBILITY SameMajorVersion ARCH_INDEPENDENT)
install(FILES
  ${PROJECT_BINARY_DIR}/minidlConfig.cmake
  ${PROJECT_BINARY_DIR}/minidlConfigVersion.cmake
  ${PROJECT_SOURCE_DIR}/cmake/minidlDependencies.cmake
  DESTINATION ${CMAKE_INSTALL_DATADIR}/cmake/minidl)
