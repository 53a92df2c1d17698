// kernels/cpu/elementwise.cpp: CPU reference of RMSNorm, SwiGLU, embedding and RoPE,
// forward and backward (kernels/elementwise.h).
//
// Invariant: FP32 throughout, single-threaded, every reduction in a fixed order, so
// results are bit-reproducible. Row reductions (RMSNorm's mean of squares and its
// backward dot product) sum in FP32 over kLanes interleaved lanes (element i goes to
// lane i % kLanes, rows ascending), then combine the lanes pairwise: a fixed order
// the compiler can vectorize, with error <= (D / kLanes + log2 kLanes) * 2^-24 * sum|terms|.
// Parameter gradients (RMSNorm dw) are summed over tokens ascending into a scratch
// vector and then added (+=); embedding's scatter adds token by token, ascending.
// Dtypes, shapes and devices are validated by the ops:: layer (kernels/elementwise.cpp);
// the checks here are those that read values (token ids, positions in range).
// Reference: RMSNorm (Zhang & Sennrich 2019) as in HF LlamaRMSNorm; SwiGLU (Shazeer
// 2020); RoPE (Su et al. 2021), interleaved pairs for DeepSeek (reference/
// deepseek_v3_fp8.md §2.3), rotate_half for Llama/Qwen (transformers apply_rotary_pos_emb).
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/elementwise_cpu.h"

namespace crucible::cpu {

namespace {

constexpr std::int64_t kLanes = 8;

std::string describe(const Tensor& t, const char* role) {
  return std::string(role) + " '" + (t.name().empty() ? "<unnamed>" : t.name()) + "' " +
         t.shape().str();
}

// sum_i a[i] * b[i] in the fixed lane order described at the top of the file.
float lane_dot(const float* a, const float* b, std::int64_t n) {
  float lane[kLanes] = {};
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (std::int64_t j = 0; j < kLanes; ++j) lane[j] += a[i + j] * b[i + j];
  for (std::int64_t j = 0; i < n; ++i, ++j) lane[j] += a[i] * b[i];
  for (std::int64_t w = kLanes / 2; w >= 1; w /= 2)
    for (std::int64_t j = 0; j < w; ++j) lane[j] += lane[j + w];
  return lane[0];
}

// RMSNorm's [rows, D] view: rank >= 1, leading dims flattened.
std::int64_t rows_of(const Tensor& x) { return x.dim(-1) == 0 ? 0 : x.numel() / x.dim(-1); }

float sigmoid(float g) { return 1.0f / (1.0f + std::exp(-g)); }

}  // namespace

// ---------------------------------------------------------------------------- RMSNorm

void rmsnorm_forward(const Tensor& x, const Tensor& w, float eps, Tensor& y, Tensor& rstd) {
  const std::int64_t D = x.dim(-1), T = rows_of(x);
  const float* xp = x.data<float>();
  const float* wp = w.data<float>();
  float* yp = y.data<float>();
  float* rp = rstd.data<float>();
  for (std::int64_t t = 0; t < T; ++t) {
    const float* xr = xp + t * D;
    float* yr = yp + t * D;
    const float mean_sq = lane_dot(xr, xr, D) / static_cast<float>(D);
    const float r = 1.0f / std::sqrt(mean_sq + eps);
    rp[t] = r;
    for (std::int64_t i = 0; i < D; ++i) yr[i] = (xr[i] * r) * wp[i];
  }
}

// y_i = x_i r w_i with r = (mean(x^2) + eps)^-1/2 and dr/dx_j = -r^3 x_j / D:
//   dx_i = r (dy_i w_i - x_i * r^2 / D * sum_j dy_j w_j x_j);  dw_i += sum_t dy_i x_i r.
void rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& rstd,
                      Tensor& dx, Tensor& dw) {
  const std::int64_t D = x.dim(-1), T = rows_of(x);
  const float* gp = dy.data<float>();
  const float* xp = x.data<float>();
  const float* wp = w.data<float>();
  const float* rp = rstd.data<float>();
  float* dxp = dx.data<float>();
  std::vector<float> gw(static_cast<std::size_t>(D));        // dy * w of one row
  std::vector<float> dw_sum(static_cast<std::size_t>(D), 0.0f);  // sum_t dy * x * r
  for (std::int64_t t = 0; t < T; ++t) {
    const float* gr = gp + t * D;
    const float* xr = xp + t * D;
    float* dxr = dxp + t * D;
    const float r = rp[t];
    for (std::int64_t i = 0; i < D; ++i) gw[i] = gr[i] * wp[i];
    const float k = lane_dot(gw.data(), xr, D) * (r * r) / static_cast<float>(D);
    for (std::int64_t i = 0; i < D; ++i) dxr[i] = r * (gw[i] - k * xr[i]);
    for (std::int64_t i = 0; i < D; ++i) dw_sum[i] += gr[i] * (xr[i] * r);
  }
  float* dwp = dw.data<float>();
  for (std::int64_t i = 0; i < D; ++i) dwp[i] += dw_sum[i];
}

// ----------------------------------------------------------------------------- SwiGLU

void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out) {
  const float* g = gate.data<float>();
  const float* u = up.data<float>();
  float* o = out.data<float>();
  for (std::int64_t i = 0; i < gate.numel(); ++i) o[i] = (g[i] * sigmoid(g[i])) * u[i];
}

// silu'(g) = s (1 + g (1 - s)) with s = sigmoid(g); finite for every finite g.
void swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, Tensor& dgate,
                     Tensor& dup) {
  const float* go = dout.data<float>();
  const float* g = gate.data<float>();
  const float* u = up.data<float>();
  float* dg = dgate.data<float>();
  float* du = dup.data<float>();
  for (std::int64_t i = 0; i < gate.numel(); ++i) {
    const float s = sigmoid(g[i]);
    du[i] = go[i] * (g[i] * s);
    dg[i] = (go[i] * u[i]) * (s * (1.0f + g[i] * (1.0f - s)));
  }
}

// -------------------------------------------------------------------------- Embedding

namespace {
// Every id of ids [T] in [0, V) of the table [V, D].
void check_ids(const char* op, const Tensor& ids, const Tensor& table, const char* table_role) {
  const std::int64_t T = ids.dim(0), V = table.dim(0);
  const std::int32_t* id = ids.data<std::int32_t>();
  for (std::int64_t t = 0; t < T; ++t)
    CRUCIBLE_CHECK(id[t] >= 0 && id[t] < V, op, ": token id ", id[t], " at position ", t, " of ",
                   describe(ids, "ids"), " is outside the vocabulary [0, ", V, ") of ",
                   describe(table, table_role));
}
}  // namespace

void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out) {
  check_ids("embedding_forward", ids, table, "table");
  const std::int64_t T = ids.dim(0), D = table.dim(1);
  const std::int32_t* id = ids.data<std::int32_t>();
  const float* tab = table.data<float>();
  float* o = out.data<float>();
  for (std::int64_t t = 0; t < T; ++t)
    std::memcpy(o + t * D, tab + static_cast<std::int64_t>(id[t]) * D,
                static_cast<std::size_t>(D) * sizeof(float));
}

void embedding_backward(const Tensor& dout, const Tensor& ids, Tensor& dtable) {
  check_ids("embedding_backward", ids, dtable, "dtable");
  const std::int64_t T = ids.dim(0), D = dtable.dim(1);
  const std::int32_t* id = ids.data<std::int32_t>();
  const float* g = dout.data<float>();
  float* dt = dtable.data<float>();
  // Tokens ascending: a repeated id accumulates in a fixed order (deterministic).
  for (std::int64_t t = 0; t < T; ++t) {
    float* row = dt + static_cast<std::int64_t>(id[t]) * D;
    const float* gr = g + t * D;
    for (std::int64_t i = 0; i < D; ++i) row[i] += gr[i];
  }
}

// ------------------------------------------------------------------------------- RoPE

// Pair (a, b) at frequency i rotates by angle theta_i(pos): with c = cos, s = sin,
//   forward  (a, b) -> (a c - b s, a s + b c)
//   inverse  (a, b) -> (a c + b s, b c - a s)   (the transpose; also when c, s carry
//                                                 YaRN's attention factor)
// interleaved: a = x[2i], b = x[2i + 1];  half-split: a = x[i], b = x[i + rot/2].
void rope_apply(Tensor& x, std::int64_t offset, const Tensor& pos, const Tensor& cos, const Tensor& sin,
                std::int64_t rot, bool interleaved, bool inverse) {
  const std::int64_t T = x.dim(0), H = x.dim(1), d = x.dim(2), half = rot / 2;
  const std::int64_t max_pos = cos.dim(0);
  const std::int32_t* pp = pos.data<std::int32_t>();
  for (std::int64_t t = 0; t < T; ++t)
    CRUCIBLE_CHECK(pp[t] >= 0 && pp[t] < max_pos, "rope_apply: position ", pp[t], " of token ", t,
                   " is outside the rope table [0, ", max_pos, ") of ", describe(cos, "cos"));

  // The inverse is the same rotation with sin negated.
  const float sign = inverse ? -1.0f : 1.0f;
  std::vector<float> sn(static_cast<std::size_t>(half));
  float* xp = x.data<float>();
  for (std::int64_t t = 0; t < T; ++t) {
    const float* c = cos.data<float>() + static_cast<std::int64_t>(pp[t]) * half;
    const float* s = sin.data<float>() + static_cast<std::int64_t>(pp[t]) * half;
    for (std::int64_t i = 0; i < half; ++i) sn[i] = sign * s[i];
    for (std::int64_t h = 0; h < H; ++h) {
      float* v = xp + (t * H + h) * d + offset;
      if (interleaved) {
        for (std::int64_t i = 0; i < half; ++i) {
          const float a = v[2 * i], b = v[2 * i + 1];
          v[2 * i] = a * c[i] - b * sn[i];
          v[2 * i + 1] = a * sn[i] + b * c[i];
        }
      } else {
        float* v2 = v + half;
        for (std::int64_t i = 0; i < half; ++i) {
          const float a = v[i], b = v2[i];
          v[i] = a * c[i] - b * sn[i];
          v2[i] = a * sn[i] + b * c[i];
        }
      }
    }
  }
}

}  // namespace crucible::cpu
