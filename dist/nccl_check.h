// dist/nccl_check.h: CHECK_NCCL (CUDA builds only), in the family of core/error.h.
#pragma once

#ifdef CRUCIBLE_WITH_CUDA
#include <nccl.h>

#include "core/error.h"

#define CHECK_NCCL(call)                                                                  \
  do {                                                                                    \
    ncclResult_t crucible_nccl_rc_ = (call);                                              \
    if (crucible_nccl_rc_ != ncclSuccess) [[unlikely]]                                    \
      ::crucible::fail(::crucible::detail::concat("NCCL call failed: " #call ": ",        \
                                                  ncclGetErrorString(crucible_nccl_rc_), " (", \
                                                  ncclGetLastError(nullptr), ")"),         \
                       __FILE__, __LINE__);                                               \
  } while (0)
#endif
