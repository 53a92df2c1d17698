// rollout/kv_cache.cpp: cache allocation.
#include "rollout/kv_cache.h"

#include "core/error.h"

namespace crucible::rollout {

KvCache::KvCache(const ModelConfig& c, std::int64_t slots_, std::int64_t capacity_, Device device, DType dtype)
    : mla(c.is_mla()), slots(slots_), capacity(capacity_), len(static_cast<std::size_t>(slots_), 0) {
  CRUCIBLE_CHECK(slots > 0 && capacity > 0, "KV cache needs slots and capacity > 0");
  CRUCIBLE_CHECK(dtype == DType::F32 || dtype == DType::BF16, "KV cache dtype must be f32 or bf16, got ",
                 dtype_name(dtype));
  CRUCIBLE_CHECK(capacity < (std::int64_t{1} << 31), "KV cache capacity ", capacity, " exceeds the i32 positions");
  for (std::int64_t l = 0; l < c.num_hidden_layers; ++l) {
    if (mla) {
      ckv.emplace_back(Shape{slots, capacity, c.kv_lora_rank}, dtype, device, "cache.ckv");
      kpe.emplace_back(Shape{slots, capacity, c.qk_rope_head_dim}, dtype, device, "cache.kpe");
    } else {
      k.emplace_back(Shape{slots, capacity, c.kv_heads(), c.attn_head_dim()}, dtype, device, "cache.k");
      v.emplace_back(Shape{slots, capacity, c.kv_heads(), c.attn_head_dim()}, dtype, device, "cache.v");
    }
  }
}

std::int64_t KvCache::bytes() const {
  std::int64_t b = 0;
  for (const auto* list : {&k, &v, &ckv, &kpe})
    for (const Tensor& t : *list) b += static_cast<std::int64_t>(t.nbytes());
  return b;
}

}  // namespace crucible::rollout
