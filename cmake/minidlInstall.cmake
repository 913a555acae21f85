# Installs the headers and a CMake package so that downstream projects can
# find_package(minidl [COMPONENTS ...]) and link minidl::minidl or the
# components they use. Each component has its own export file, which the
# package config loads, with the component's dependencies, only on request.
include(CMakePackageConfigHelpers)

set(minidl_package_dir ${CMAKE_INSTALL_DATADIR}/cmake/minidl)
install(DIRECTORY include/minidl DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
foreach(component IN LISTS MINIDL_COMPONENTS)
  install(TARGETS minidl_${component} EXPORT minidl-${component}-targets)
  install(EXPORT minidl-${component}-targets NAMESPACE minidl:: DESTINATION ${minidl_package_dir})
endforeach()
if(TARGET minidl)
  install(TARGETS minidl EXPORT minidl-all-in-one-targets)
  install(EXPORT minidl-all-in-one-targets NAMESPACE minidl:: DESTINATION ${minidl_package_dir})
endif()

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/minidlConfig.cmake.in
  ${PROJECT_BINARY_DIR}/minidlConfig.cmake
  INSTALL_DESTINATION ${minidl_package_dir})
# A header-only library fits any architecture.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/minidlConfigVersion.cmake
  COMPATIBILITY SameMajorVersion ARCH_INDEPENDENT)
install(FILES
  ${PROJECT_BINARY_DIR}/minidlConfig.cmake
  ${PROJECT_BINARY_DIR}/minidlConfigVersion.cmake
  ${PROJECT_SOURCE_DIR}/cmake/Findstb.cmake
  DESTINATION ${minidl_package_dir})
