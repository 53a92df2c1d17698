# Finds the card's packages (DESIGN.md §1): Threads, BLAS (OpenBLAS), MPI, HDF5,
# toml++, Catch2 and, in CUDA builds, the CUDA toolkit, cuDNN and NCCL.
include_guard(GLOBAL)

find_package(Threads REQUIRED)

set(BLA_VENDOR OpenBLAS)
find_package(BLAS REQUIRED)
# cblas.h: OpenBLAS ships it in its own include folder on Debian.
find_path(CRUCIBLE_CBLAS_INCLUDE cblas.h PATH_SUFFIXES openblas openblas-pthread
          HINTS /usr/include/x86_64-linux-gnu /usr/include/x86_64-linux-gnu/openblas-pthread)
if(NOT CRUCIBLE_CBLAS_INCLUDE)
  message(FATAL_ERROR "cblas.h not found: install libopenblas-dev (scripts/setup.sh)")
endif()
set_property(TARGET BLAS::BLAS APPEND PROPERTY INTERFACE_INCLUDE_DIRECTORIES ${CRUCIBLE_CBLAS_INCLUDE})

find_package(MPI REQUIRED COMPONENTS CXX)
find_package(HDF5 REQUIRED COMPONENTS C)
if(NOT TARGET hdf5::hdf5)
  add_library(hdf5::hdf5 INTERFACE IMPORTED)
  target_include_directories(hdf5::hdf5 INTERFACE ${HDF5_INCLUDE_DIRS})
  target_link_libraries(hdf5::hdf5 INTERFACE ${HDF5_LIBRARIES})
  target_compile_definitions(hdf5::hdf5 INTERFACE ${HDF5_DEFINITIONS})
endif()

find_package(tomlplusplus 3 QUIET)
if(NOT tomlplusplus_FOUND)
  # A header-only copy (e.g. extracted for a machine without the package).
  find_path(CRUCIBLE_TOMLPP_INCLUDE toml++/toml.h REQUIRED)
  add_library(tomlplusplus::tomlplusplus INTERFACE IMPORTED)
  target_include_directories(tomlplusplus::tomlplusplus INTERFACE ${CRUCIBLE_TOMLPP_INCLUDE})
endif()

if(CRUCIBLE_WITH_CUDA)
  find_package(CUDAToolkit REQUIRED)
  find_library(CRUCIBLE_NCCL_LIB nccl HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/lib/x86_64-linux-gnu)
  find_path(CRUCIBLE_NCCL_INCLUDE nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/include)
  find_library(CRUCIBLE_CUDNN_LIB cudnn HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/lib/x86_64-linux-gnu)
  find_path(CRUCIBLE_CUDNN_INCLUDE cudnn.h HINTS ${CUDAToolkit_INCLUDE_DIRS}
            /usr/include/x86_64-linux-gnu /usr/include)
  if(NOT CRUCIBLE_NCCL_LIB OR NOT CRUCIBLE_NCCL_INCLUDE)
    message(FATAL_ERROR "NCCL not found beside the CUDA toolkit (${CUDAToolkit_LIBRARY_DIR})")
  endif()
  if(NOT CRUCIBLE_CUDNN_LIB OR NOT CRUCIBLE_CUDNN_INCLUDE)
    message(FATAL_ERROR "cuDNN not found beside the CUDA toolkit (${CUDAToolkit_LIBRARY_DIR})")
  endif()
  add_library(crucible::nccl INTERFACE IMPORTED)
  target_include_directories(crucible::nccl INTERFACE ${CRUCIBLE_NCCL_INCLUDE})
  target_link_libraries(crucible::nccl INTERFACE ${CRUCIBLE_NCCL_LIB})
  add_library(crucible::cudnn INTERFACE IMPORTED)
  target_include_directories(crucible::cudnn INTERFACE ${CRUCIBLE_CUDNN_INCLUDE})
  target_link_libraries(crucible::cudnn INTERFACE ${CRUCIBLE_CUDNN_LIB})
endif()

if(CRUCIBLE_TESTS)
  find_package(Catch2 REQUIRED)
  if(Catch2_VERSION VERSION_GREATER_EQUAL 3)
    set(CRUCIBLE_CATCH2_V3 ON)
  else()
    set(CRUCIBLE_CATCH2_V3 OFF)
  endif()
  message(STATUS "crucible: Catch2 ${Catch2_VERSION}")
endif()
