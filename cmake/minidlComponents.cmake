# minidl's components: INTERFACE targets over the same include folder, each
# adding only the dependencies of its part, so that a program that only
# trains needs OpenMP and nothing else.
#
#   minidl::core        core/ kernels/ layers/ loss/ optim/ train/ models/,   OpenMP
#                       minidl.hpp, io/atomic_file.hpp
#   minidl::checkpoint  io/safetensors.hpp, io/checkpoint.hpp, io/json.hpp  nlohmann_json, zlib (CRC-32)
#   minidl::data        data/: IDX reader (raw and gzip), MNIST, batches     zlib
#   minidl::image       io/image.hpp: loading images for prediction          stb
#   minidl::viz         viz/: charts, heatmaps and image grids as PNG        stb
#   minidl::eigen       eigen.hpp: Eigen::Map views of tensors               Eigen3
#   minidl::onnx        onnx/: ONNX export and import                        ONNX (onnx_proto), Protobuf
#   minidl::mpi         mpi/: data-parallel training over MPI                MPI (optional)
#   minidl::minidl      core, checkpoint, data, image and viz in one target
#
# Each component links minidl::core. The main project needs every
# dependency (its tests use every part); as a subproject, a component whose
# dependency is missing is left out, with a note.
include(GNUInstallDirs)

if(MINIDL_MAIN_PROJECT)
  set(minidl_dependency_required REQUIRED)
else()
  set(minidl_dependency_required QUIET)
endif()
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(nlohmann_json 3 ${minidl_dependency_required})
find_package(ZLIB ${minidl_dependency_required})
find_package(stb ${minidl_dependency_required})  # cmake/Findstb.cmake
find_package(Eigen3 3.3 ${minidl_dependency_required} NO_MODULE)
# ONNX is optional even for the main project: the ONNX project's generated protobuf classes
# (Debian's libonnx-dev, which needs libprotobuf-dev). Without them minidl::onnx is left out.
find_package(Protobuf QUIET)
if(Protobuf_FOUND)
  find_package(ONNX CONFIG QUIET)
endif()

add_library(minidl_core INTERFACE)
add_library(minidl::core ALIAS minidl_core)
set_target_properties(minidl_core PROPERTIES EXPORT_NAME core)
target_compile_features(minidl_core INTERFACE cxx_std_17)
target_include_directories(minidl_core INTERFACE
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_link_libraries(minidl_core INTERFACE OpenMP::OpenMP_CXX)
set(MINIDL_COMPONENTS core)

# minidl_add_component(NAME DEPENDENCY_FOUND TARGET...): minidl::NAME, which
# links minidl::core and TARGET..., when DEPENDENCY_FOUND is true.
function(minidl_add_component name found)
  if(NOT ${found})
    message(STATUS "minidl: minidl::${name} left out (${found} is false)")
    return()
  endif()
  add_library(minidl_${name} INTERFACE)
  add_library(minidl::${name} ALIAS minidl_${name})
  set_target_properties(minidl_${name} PROPERTIES EXPORT_NAME ${name})
  target_link_libraries(minidl_${name} INTERFACE minidl_core ${ARGN})
  set(MINIDL_COMPONENTS ${MINIDL_COMPONENTS} ${name} PARENT_SCOPE)
endfunction()

if(nlohmann_json_FOUND AND ZLIB_FOUND)
  set(minidl_checkpoint_dependencies_found TRUE)
endif()
minidl_add_component(checkpoint minidl_checkpoint_dependencies_found
                     nlohmann_json::nlohmann_json ZLIB::ZLIB)
minidl_add_component(data ZLIB_FOUND ZLIB::ZLIB)
minidl_add_component(image stb_FOUND stb::stb)
minidl_add_component(viz stb_FOUND stb::stb)
minidl_add_component(eigen Eigen3_FOUND Eigen3::Eigen)
if(TARGET onnx_proto)
  set(minidl_onnx_dependencies_found TRUE)
endif()
minidl_add_component(onnx minidl_onnx_dependencies_found onnx_proto)

# Optional even here: without MPI the commands train in one process only.
find_package(MPI COMPONENTS CXX QUIET)
minidl_add_component(mpi MPI_CXX_FOUND MPI::MPI_CXX)

# The all-in-one target of earlier releases: everything but Eigen (and ONNX, which came later).
set(MINIDL_ALL_IN_ONE core checkpoint data image viz)
set(minidl_all_in_one_complete TRUE)
foreach(component IN LISTS MINIDL_ALL_IN_ONE)
  if(NOT component IN_LIST MINIDL_COMPONENTS)
    set(minidl_all_in_one_complete FALSE)
  endif()
endforeach()
if(minidl_all_in_one_complete)
  add_library(minidl INTERFACE)
  add_library(minidl::minidl ALIAS minidl)
  list(TRANSFORM MINIDL_ALL_IN_ONE PREPEND minidl_ OUTPUT_VARIABLE minidl_all_in_one_targets)
  target_link_libraries(minidl INTERFACE ${minidl_all_in_one_targets})
else()
  message(STATUS "minidl: minidl::minidl left out (it needs ${MINIDL_ALL_IN_ONE})")
endif()
