# Locates minidl's dependencies; used by the build and by the installed package.
include(CMakeFindDependencyMacro)
include(GNUInstallDirs)
find_package(Eigen3 3.3 REQUIRED NO_MODULE)
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(ZLIB REQUIRED)

# stb (stb_image, stb_image_write): Debian ships the headers in <stb/...> and
# the implementations compiled into libstb.
if(NOT TARGET minidl_stb)
  find_path(MINIDL_STB_INCLUDE_DIR stb/stb_image_write.h REQUIRED)
  find_library(MINIDL_STB_LIBRARY stb REQUIRED)
  add_library(minidl_stb INTERFACE IMPORTED)
  set_target_properties(minidl_stb PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${MINIDL_STB_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "${MINIDL_STB_LIBRARY}")
endif()
