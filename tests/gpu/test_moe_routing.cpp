// GPU vs CPU twin: DeepSeekMoE routing, expert counts, permutation plan, combine
// (kernels/moe_routing.h) and the data-movement ops (kernels/tensor_ops.h).
//
// Fresh random inputs at the shapes of tests/gpu/moe_head_cases.h (DeepSeek-V3: 4096
// tokens x 256 experts in 8 groups, keep 4, top-8, x 2.5; V2 and V2-Lite softmax; small
// odd shapes), each twice: continuous logits, and logits on a coarse grid (multiples of
// 1/4, bias multiples of 1/64) so that many biased scores and group scores tie exactly
// and the tie rule (lower index first) decides. The V3 case also carries +-inf and
// saturated (+-100) logits. Every comparison checks NaN/Inf positions first, then:
// - topk_idx: the same experts in the same order, everywhere (required);
// - scores: |gpu - cpu| <= 6u|s| (u = 2^-24). Both sides evaluate the CPU's formula in
//   its order; only exp differs: the GPU's is correctly rounded (FP64, rounded once),
//   glibc's expf within 0.502 ulp, so they differ by 1 ulp (<= 2u relative) in rare
//   near-midpoint cases. Sigmoid: 1 + e then moves by <= 2u e + one rounding flip
//   (<= 2u), the division by <= 4u + one flip: 6u. Softmax: e by 2u, (float)(1/sum) by
//   one flip (its FP64 sum order differs), the product by one flip: 6u.
// - topk_w: bit for bit where the chosen scores are bit for bit (same operations, same
//   order); in general |gpu - cpu| <= 16u|w|: the scores' 2u each, the sum's 2u, and a
//   flip of each of the 4 roundings (sum, reciprocal, two products, 2u each).
// - backward dlogits (fed the CPU's scores and selection): bit for bit (the same FP64
//   operations in the same order, no FMA contraction).
// - counts, offsets, rows, position, gather_rows, combine, dexpert_out: bit for bit.
// - combine backward dtopk_w: an FP64 dot of H terms in another order, then rounded:
//   |gpu - cpu| <= 2u|dw| + H 2^-52 sum|dy o| (each side's FP64 error <= H 2^-53 sum|dy o|,
//   each side's final rounding <= u|dw|).
// The combine is also checked against model/moe.cpp's way of combining (a per-expert
// scatter_add_rows with the routing weights, experts ascending), on the CPU and the GPU:
// the same bits. Determinism: a second GPU routing run gives the same bits.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/device_memory.h"
#include "kernels/moe_routing.h"
#include "kernels/tensor_ops.h"
#include "tests/catch.h"
#include "tests/gpu/gpu_compare.h"
#include "tests/gpu/moe_head_cases.h"

using namespace crucible;
using namespace crucible::gpu_test;

namespace {

const Device kGpu = Device::cuda(0);

Tensor to_gpu(const Tensor& t) { return t.to(kGpu); }

Tensor i32_tensor(Shape shape, const char* name, std::int32_t value) {
  Tensor t(shape, DType::I32, Device::cpu(), name);
  for (std::int32_t& v : t.span<std::int32_t>()) v = value;
  return t;
}

// Identical i32 tensors; names the first difference.
void require_same_ints(const std::string& what, const Tensor& cpu, const Tensor& gpu) {
  INFO(what);
  REQUIRE(cpu.shape() == gpu.shape());
  const Tensor g = on_host(gpu);
  const std::int32_t* a = cpu.data<std::int32_t>();
  const std::int32_t* b = g.data<std::int32_t>();
  std::int64_t bad = 0, first = -1;
  for (std::int64_t i = 0; i < cpu.numel(); ++i)
    if (a[i] != b[i] && bad++ == 0) first = i;
  INFO(bad << " of " << cpu.numel() << " differ; first at " << first << ": cpu "
           << (first >= 0 ? a[first] : 0) << " gpu " << (first >= 0 ? b[first] : 0));
  REQUIRE(bad == 0);
}

std::int64_t count_bit_diffs(const Tensor& cpu, const Tensor& gpu) {
  const Tensor g = on_host(gpu);
  std::int64_t n = 0;
  for (std::int64_t i = 0; i < cpu.numel(); ++i)
    n += std::memcmp(cpu.data<float>() + i, g.data<float>() + i, 4) != 0;
  return n;
}

ops::RoutingParams params_of(const gpu_cases::RouteCase& c) {
  ops::RoutingParams p;
  p.top_k = c.top_k;
  p.n_group = c.n_group;
  p.topk_group = c.topk_group;
  p.sigmoid = c.sigmoid;
  p.group_limited = c.group_limited;
  p.norm_topk_prob = c.norm_topk_prob;
  p.routed_scaling_factor = c.routed_scaling_factor;
  return p;
}

// Logits uniform in [-4, 4) (softmax: [-2, 2)), bias in [-0.1, 0.1); `grid` rounds them
// to multiples of 1/4 and 1/64 (exact ties).
void make_inputs(const gpu_cases::RouteCase& c, bool grid, std::uint64_t seed, Tensor& logits, Tensor& bias) {
  const float r = c.sigmoid ? 4.0f : 2.0f;
  logits = uniform_tensor(Shape{c.tokens, c.experts}, seed, "logits", -r, r);
  bias = c.bias ? uniform_tensor(Shape{c.experts}, seed + 1, "bias", -0.1f, 0.1f) : Tensor();
  if (grid) {
    for (float& v : logits.span<float>()) v = std::round(v * 4.0f) / 4.0f;
    if (bias.defined())
      for (float& v : bias.span<float>()) v = std::round(v * 64.0f) / 64.0f;
  }
  if (c.sigmoid && c.tokens >= 2 && c.experts >= 8) {
    float* l = logits.data<float>();
    const float inf = std::numeric_limits<float>::infinity();
    l[3] = inf, l[7] = -inf, l[c.experts + 5] = 100.0f, l[c.experts + 6] = 100.0f, l[c.experts + 2] = -100.0f;
  }
}

}  // namespace

TEST_CASE("moe routing: CUDA forward and backward match the CPU twin", "[gpu][moe_routing]") {
  REQUIRE(cuda_device_count() > 0);
  std::uint64_t seed = 5000;
  for (const gpu_cases::RouteCase& c : gpu_cases::kRouteCases) {
    for (const bool grid : {false, true}) {
      const std::string name = std::string(c.name) + (grid ? " (tied grid)" : " (continuous)");
      const std::int64_t T = c.tokens, E = c.experts, K = c.top_k;
      const ops::RoutingParams p = params_of(c);
      Tensor logits, bias;
      make_inputs(c, grid, seed, logits, bias);
      seed += 2;

      Tensor scores(Shape{T, E}, DType::F32, Device::cpu(), "scores");
      Tensor idx = i32_tensor(Shape{T, K}, "topk_idx", -7);
      Tensor w(Shape{T, K}, DType::F32, Device::cpu(), "topk_w");
      ops::moe_route_forward(logits, bias, p, scores, idx, w);

      const Tensor lg = to_gpu(logits), bg = bias.defined() ? to_gpu(bias) : Tensor();
      Tensor sg = to_gpu(nan_tensor(Shape{T, E}, "scores")), ig = to_gpu(i32_tensor(Shape{T, K}, "topk_idx", -7)),
             wg = to_gpu(nan_tensor(Shape{T, K}, "topk_w"));
      ops::moe_route_forward(lg, bg, p, sg, ig, wg);

      require_same_ints(name + " topk_idx", idx, ig);
      const float* sp = scores.data<float>();
      const float* wp = w.data<float>();
      require_close(name + " scores", scores, sg, [&](std::int64_t i) { return 6 * kU * std::fabs(sp[i]); });
      require_close(name + " topk_w", w, wg, [&](std::int64_t i) { return 16 * kU * std::fabs(wp[i]); });
      const std::int64_t score_diffs = count_bit_diffs(scores, sg), w_diffs = count_bit_diffs(w, wg);
      std::printf("  %-58s scores differing in bits: %lld of %lld, weights: %lld of %lld\n", name.c_str(),
                  static_cast<long long>(score_diffs), static_cast<long long>(T * E),
                  static_cast<long long>(w_diffs), static_cast<long long>(T * K));
      if (score_diffs == 0) require_same_bits(name + " topk_w (equal scores: the CPU's bits)", w, wg);

      // Determinism: the same launch again.
      Tensor sg2 = to_gpu(nan_tensor(Shape{T, E}, "scores2")), ig2 = to_gpu(i32_tensor(Shape{T, K}, "idx2", -7)),
             wg2 = to_gpu(nan_tensor(Shape{T, K}, "w2"));
      ops::moe_route_forward(lg, bg, p, sg2, ig2, wg2);
      require_same_ints(name + " topk_idx, second run", on_host(ig), ig2);
      require_same_bits(name + " topk_w, second run", on_host(wg), wg2);

      // Backward on the CPU's scores and selection.
      const Tensor dw = uniform_tensor(Shape{T, K}, seed++, "dtopk_w");
      Tensor dl(Shape{T, E}, DType::F32, Device::cpu(), "dlogits");
      ops::moe_route_backward(dw, scores, idx, p, dl);
      Tensor dlg = to_gpu(nan_tensor(Shape{T, E}, "dlogits"));
      ops::moe_route_backward(to_gpu(dw), to_gpu(scores), to_gpu(idx), p, dlg);
      require_same_bits(name + " dlogits", dl, dlg);
    }
  }
}

TEST_CASE("moe permutation: CUDA counts, plan, gather and combine match the CPU twin bit for bit",
          "[gpu][moe_routing]") {
  REQUIRE(cuda_device_count() > 0);
  std::uint64_t seed = 6000;
  for (const gpu_cases::RouteCase& c : gpu_cases::kRouteCases) {
    const std::string name = c.name;
    const std::int64_t T = c.tokens, E = c.experts, K = c.top_k, H = c.hidden, N = T * K;
    Tensor logits, bias;
    make_inputs(c, false, seed, logits, bias);
    seed += 2;
    Tensor scores(Shape{T, E}, DType::F32, Device::cpu(), "scores"), idx(Shape{T, K}, DType::I32, Device::cpu(), "idx"),
        w(Shape{T, K}, DType::F32, Device::cpu(), "topk_w");
    ops::moe_route_forward(logits, bias, params_of(c), scores, idx, w);
    const Tensor idx_g = to_gpu(idx), w_g = to_gpu(w);

    Tensor counts = i32_tensor(Shape{E}, "counts", -1), counts_g = to_gpu(i32_tensor(Shape{E}, "counts", -1));
    ops::moe_expert_counts(idx, counts);
    ops::moe_expert_counts(idx_g, counts_g);
    require_same_ints(name + " counts", counts, counts_g);
    std::int64_t total = 0;
    for (const std::int32_t v : counts.span<std::int32_t>()) total += v;
    REQUIRE(total == N);

    Tensor off = i32_tensor(Shape{E + 1}, "offsets", -1), rows = i32_tensor(Shape{N}, "rows", -1),
           pos = i32_tensor(Shape{T, K}, "position", -1);
    Tensor off_g = to_gpu(off), rows_g = to_gpu(rows), pos_g = to_gpu(pos);
    ops::moe_permute_plan(idx, off, rows, pos);
    ops::moe_permute_plan(idx_g, off_g, rows_g, pos_g);
    require_same_ints(name + " offsets", off, off_g);
    require_same_ints(name + " rows", rows, rows_g);
    require_same_ints(name + " position", pos, pos_g);
    {  // the plan's own invariants: offsets = prefix sums of counts; tokens ascend per expert
      const std::int32_t* o = off.data<std::int32_t>();
      const std::int32_t* r = rows.data<std::int32_t>();
      for (std::int64_t e = 0; e < E; ++e) {
        REQUIRE(o[e + 1] - o[e] == counts.data<std::int32_t>()[e]);
        for (std::int32_t i = o[e] + 1; i < o[e + 1]; ++i) REQUIRE(r[i - 1] < r[i]);
      }
    }

    const Tensor x = uniform_tensor(Shape{T, H}, seed++, "x");
    Tensor xp(Shape{N, H}, DType::F32, Device::cpu(), "x_perm"), xp_g = to_gpu(nan_tensor(Shape{N, H}, "x_perm"));
    ops::gather_rows(x, rows, xp);
    ops::gather_rows(to_gpu(x), rows_g, xp_g);
    require_same_bits(name + " gather_rows (permute)", xp, xp_g);

    const Tensor out = uniform_tensor(Shape{N, H}, seed++, "expert_out"), out_g = to_gpu(out);
    const Tensor y0 = uniform_tensor(Shape{T, H}, seed++, "y0");
    Tensor y = y0.clone(), y_g = to_gpu(y0);
    ops::moe_unpermute_combine(out, pos, w, y);
    ops::moe_unpermute_combine(out_g, pos_g, w_g, y_g);
    require_same_bits(name + " combine", y, y_g);

    // model/moe.cpp's combine: per expert, ascending, scatter_add_rows with the weights.
    Tensor w_perm(Shape{N}, DType::F32, Device::cpu(), "w_perm");
    for (std::int64_t i = 0; i < N; ++i)
      w_perm.data<float>()[pos.data<std::int32_t>()[i]] = w.data<float>()[i];
    Tensor y_model = y0.clone(), y_model_g = to_gpu(y0);
    const Tensor w_perm_g = to_gpu(w_perm);
    for (std::int64_t e = 0; e < E; ++e) {
      const std::int32_t b = off.data<std::int32_t>()[e], f = off.data<std::int32_t>()[e + 1];
      if (b == f) continue;
      ops::scatter_add_rows(out.slice(b, f), rows.slice(b, f), w_perm.slice(b, f), y_model);
      ops::scatter_add_rows(out_g.slice(b, f), rows_g.slice(b, f), w_perm_g.slice(b, f), y_model_g);
    }
    require_same_bits(name + " combine = per-expert scatter_add_rows (cpu)", y, y_model);
    require_same_bits(name + " per-expert scatter_add_rows", y_model, y_model_g);

    const Tensor dy = uniform_tensor(Shape{T, H}, seed++, "dy");
    Tensor dout(Shape{N, H}, DType::F32, Device::cpu(), "dexpert_out"), dwt(Shape{T, K}, DType::F32, Device::cpu(), "dtopk_w");
    Tensor dout_g = to_gpu(nan_tensor(Shape{N, H}, "dexpert_out")), dwt_g = to_gpu(nan_tensor(Shape{T, K}, "dtopk_w"));
    ops::moe_unpermute_combine_backward(dy, out, pos, w, dout, dwt);
    ops::moe_unpermute_combine_backward(to_gpu(dy), out_g, pos_g, w_g, dout_g, dwt_g);
    require_same_bits(name + " combine backward dexpert_out", dout, dout_g);
    std::vector<double> mag(static_cast<std::size_t>(N), 0.0);  // sum |dy o| per (t, j)
    for (std::int64_t i = 0; i < N; ++i) {
      const std::int64_t t = i / K, r = pos.data<std::int32_t>()[i];
      for (std::int64_t h = 0; h < H; ++h)
        mag[i] += std::fabs(static_cast<double>(dy.data<float>()[t * H + h]) * out.data<float>()[r * H + h]);
    }
    const float* dwp = dwt.data<float>();
    require_close(name + " combine backward dtopk_w", dwt, dwt_g, [&](std::int64_t i) {
      return 2 * kU * std::fabs(dwp[i]) + static_cast<double>(H) * 0x1p-52 * mag[i];
    });
  }
}

// copy_columns (= and +=), axpy, fill, and scatter_add_rows with heavy duplicates and a
// scale: bit for bit (every element sees the same roundings in the same order).
TEST_CASE("tensor ops: CUDA copy_columns, repeat/sum_repeated_columns, axpy, fill, gather/scatter rows match the CPU bit for bit",
          "[gpu][tensor_ops]") {
  REQUIRE(cuda_device_count() > 0);
  struct Shp {
    std::int64_t rows, src_cols, dst_cols, src_col, dst_col, width;
  };
  const Shp shapes[] = {{4096, 576, 512 + 64, 512, 512, 64}, {3, 7, 5, 2, 1, 4}, {37, 130, 131, 0, 1, 130}};
  std::uint64_t seed = 7000;
  for (const Shp& s : shapes) {
    const std::string name = "[" + std::to_string(s.rows) + " x " + std::to_string(s.src_cols) + "]";
    const Tensor src = uniform_tensor(Shape{s.rows, s.src_cols}, seed++, "src");
    const Tensor dst0 = uniform_tensor(Shape{s.rows, s.dst_cols}, seed++, "dst");
    for (const bool acc : {false, true}) {
      Tensor d = dst0.clone(), dg = to_gpu(dst0);
      ops::copy_columns(src, s.src_col, d, s.dst_col, s.width, acc);
      ops::copy_columns(to_gpu(src), s.src_col, dg, s.dst_col, s.width, acc);
      require_same_bits(name + (acc ? " copy_columns +=" : " copy_columns ="), d, dg);
    }
    // The same columns repeated: MLA's shared rope key to all 16 heads (192 wide, the
    // rope part at 128) and its gradient summed back, onto nonzero values.
    const Tensor key = uniform_tensor(Shape{s.rows, 64}, seed++, "k_rope");
    const Tensor heads0 = uniform_tensor(Shape{s.rows, 16 * 192}, seed++, "k");
    Tensor heads = heads0.clone(), heads_g = to_gpu(heads0);
    ops::repeat_columns(key, 0, heads, 128, 64, 16, 192);
    ops::repeat_columns(to_gpu(key), 0, heads_g, 128, 64, 16, 192);
    require_same_bits(name + " repeat_columns 16 heads", heads, heads_g);
    Tensor kr = key.clone(), kr_g = to_gpu(key);
    ops::sum_repeated_columns(heads0, 128, 64, 16, 192, kr, 0);
    ops::sum_repeated_columns(to_gpu(heads0), 128, 64, 16, 192, kr_g, 0);
    require_same_bits(name + " sum_repeated_columns 16 heads", kr, kr_g);

    Tensor y = dst0.clone(), yg = to_gpu(dst0);
    const Tensor x = uniform_tensor(Shape{s.rows, s.dst_cols}, seed++, "x");
    ops::axpy(-0.37f, x, y);
    ops::axpy(-0.37f, to_gpu(x), yg);
    require_same_bits(name + " axpy", y, yg);
    ops::fill(y, 1.25f);
    ops::fill(yg, 1.25f);
    require_same_bits(name + " fill", y, yg);

    // scatter_add_rows: n source rows onto few destination rows (index 0 a third of the
    // time), with and without a scale.
    const std::int64_t n = 3 * s.rows + 1, dst_rows = s.rows / 3 + 1;
    Tensor index(Shape{n}, DType::I32, Device::cpu(), "index");
    SplitMix rng{seed++};
    for (std::int32_t& v : index.span<std::int32_t>())
      v = rng.below(3) == 0 ? 0 : static_cast<std::int32_t>(rng.below(dst_rows));
    const Tensor rows_src = uniform_tensor(Shape{n, s.dst_cols}, seed++, "rows_src");
    const Tensor scale = uniform_tensor(Shape{n}, seed++, "scale", -2.0f, 2.0f);
    const Tensor base = uniform_tensor(Shape{dst_rows, s.dst_cols}, seed++, "base");
    for (const bool scaled : {false, true}) {
      Tensor out = base.clone(), out_g = to_gpu(base);
      ops::scatter_add_rows(rows_src, index, scaled ? scale : Tensor(), out);
      ops::scatter_add_rows(to_gpu(rows_src), to_gpu(index), scaled ? to_gpu(scale) : Tensor(), out_g);
      require_same_bits(name + (scaled ? " scatter_add_rows, scaled" : " scatter_add_rows"), out, out_g);
    }
    Tensor gathered(Shape{n, s.dst_cols}, DType::F32, Device::cpu(), "gathered");
    Tensor gathered_g = to_gpu(nan_tensor(Shape{n, s.dst_cols}, "gathered"));
    ops::gather_rows(base, index, gathered);
    ops::gather_rows(to_gpu(base), to_gpu(index), gathered_g);
    require_same_bits(name + " gather_rows", gathered, gathered_g);
  }
}
