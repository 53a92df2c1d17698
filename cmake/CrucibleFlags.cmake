# Compiler flags and the CUDA switch. Flags only; no targets besides the
# interface target crucible_flags that every folder library links.
include_guard(GLOBAL)

find_program(CCACHE_PROGRAM ccache)
if(CCACHE_PROGRAM)
  set(CMAKE_C_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
  set(CMAKE_CUDA_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
endif()

add_library(crucible_flags INTERFACE)
target_compile_options(crucible_flags INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>
  # __FILE__ relative to the source tree: error messages name "core/x.cpp:12".
  $<$<COMPILE_LANGUAGE:CXX>:-fmacro-prefix-map=${PROJECT_SOURCE_DIR}/=>
  $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<CONFIG:Release,RelWithDebInfo>>:-O2>)

# CUDA: ON requires nvcc, OFF never builds it, AUTO builds it when nvcc is found.
set(CRUCIBLE_WITH_CUDA OFF)
if(NOT CRUCIBLE_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER)
    find_program(_crucible_nvcc nvcc HINTS /usr/local/cuda/bin ENV CUDA_HOME PATH_SUFFIXES bin)
    if(_crucible_nvcc)
      set(CMAKE_CUDA_COMPILER ${_crucible_nvcc})
    endif()
  endif()
  if(CMAKE_CUDA_COMPILER)
    # NOTE: Hopper's wgmma and the FP8 block-scaled paths need sm_90a; PTX for
    # compute_90 keeps the binary loadable (JIT) on later architectures.
    set(CMAKE_CUDA_ARCHITECTURES OFF)
    enable_language(CUDA)
    # NOTE: CMake 3.25 does not know nvcc's C++20 flag (CUDA_STANDARD 20, which it
    # derives from CXX_STANDARD, fails to generate); nvcc 12+ accepts -std=c++20.
    set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA_STANDARD 20)
    string(APPEND CMAKE_CUDA_FLAGS
           " -gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_90,code=compute_90"
           " --expt-relaxed-constexpr -lineinfo"
           " -Xcompiler=-fmacro-prefix-map=${PROJECT_SOURCE_DIR}/=")
    set(CRUCIBLE_WITH_CUDA ON)
  elseif(CRUCIBLE_CUDA STREQUAL "ON")
    message(FATAL_ERROR "CRUCIBLE_CUDA=ON but nvcc was not found (set CUDA_HOME or PATH)")
  endif()
endif()
message(STATUS "crucible: CUDA backend ${CRUCIBLE_WITH_CUDA}")
