# Finds stb (stb_image, stb_image_write) as Debian's libstb-dev ships it: the
# headers in <stb/...> and their implementations compiled into libstb.
# Defines stb::stb. Used by the build and installed with the package.
find_path(stb_INCLUDE_DIR stb/stb_image_write.h)
find_library(stb_LIBRARY stb)
mark_as_advanced(stb_INCLUDE_DIR stb_LIBRARY)

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(stb REQUIRED_VARS stb_INCLUDE_DIR stb_LIBRARY)

if(stb_FOUND AND NOT TARGET stb::stb)
  add_library(stb::stb UNKNOWN IMPORTED)
  set_target_properties(stb::stb PROPERTIES
    IMPORTED_LOCATION "${stb_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${stb_INCLUDE_DIR}")
endif()
