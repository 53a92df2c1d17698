// model/mtp.cpp: MTP forward/backward (mirrored).
#include "model/mtp.h"

#include "kernels/elementwise.h"
#include "kernels/tensor_ops.h"

namespace crucible {

std::vector<Tensor> Mtp::forward(Transformer& model, const Batch& batch, ForwardState& st, MtpState& ms) {
  const ModelConfig& c = model.config();
  const ModelWeights& w = model.weights();
  const std::int64_t T = batch.tokens(), H = c.hidden_size, L = c.num_hidden_layers;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const Device dev = model.device();
  const Tensor ids_host = on_host(batch.ids), cu_host = on_host(batch.cu_seqlens);
  const std::int32_t* ids = ids_host.data<std::int32_t>();
  const std::int32_t* cu = cu_host.data<std::int32_t>();
  std::vector<Tensor> out;
  ms.depths.assign(static_cast<std::size_t>(c.num_nextn_predict_layers), MtpDepth());
  Tensor h_prev = st.h_last;
  for (std::int64_t k = 1; k <= c.num_nextn_predict_layers; ++k) {
    MtpDepth& d = ms.depths[k - 1];
    const std::string p = "model.layers." + std::to_string(L + k - 1) + ".";
    // Shifted ids, targets and the mask are built on the host, then moved.
    d.ids = Tensor(Shape{T}, DType::I32, Device::cpu(), "mtp.ids");
    d.targets = Tensor(Shape{T}, DType::I32, Device::cpu(), "mtp.targets");
    d.mask = Tensor(Shape{T}, DType::F32, Device::cpu(), "mtp.mask");
    for (std::int64_t b = 0; b + 1 < batch.cu_seqlens.numel(); ++b)
      for (std::int64_t i = cu[b]; i < cu[b + 1]; ++i) {
        const bool in = i + k < cu[b + 1], target = i + k + 1 < cu[b + 1];
        d.ids.data<std::int32_t>()[i] = in ? ids[i + k] : ids[i];
        d.targets.data<std::int32_t>()[i] = target ? ids[i + k + 1] : ids[i];
        d.mask.data<float>()[i] = target ? 1.0f : 0.0f;
      }
    d.ids = d.ids.to(dev);
    d.targets = d.targets.to(dev);
    d.h_prev = h_prev;
    d.e = activation(dev, T, H, "mtp.emb");
    ops::embedding_forward(d.ids, w.param("model.embed_tokens.weight"), d.e);
    d.e_n = activation(dev, T, H, "mtp.enorm");
    d.e_rstd = Tensor(Shape{T}, DType::F32, dev);
    ops::rmsnorm_forward(d.e, w.param(p + "enorm.weight"), eps, d.e_n, d.e_rstd);
    d.h_n = activation(dev, T, H, "mtp.hnorm");
    d.h_rstd = Tensor(Shape{T}, DType::F32, dev);
    ops::rmsnorm_forward(h_prev, w.param(p + "hnorm.weight"), eps, d.h_n, d.h_rstd);
    d.cat = activation(dev, T, 2 * H, "mtp.cat");
    ops::copy_columns(d.e_n, 0, d.cat, 0, H);
    ops::copy_columns(d.h_n, 0, d.cat, H, H);
    Tensor x = activation(dev, T, H, "mtp.x");
    ops::linear_forward(d.cat, w.param(p + "eh_proj.weight"), Tensor(), x, ops::GemmPrecision::Fp32);
    d.h = model.layer_forward(L + k - 1, c.n_routed_experts > 0, x, d.block, st);
    d.hk = activation(dev, T, H, "mtp.head_norm");
    d.hk_rstd = Tensor(Shape{T}, DType::F32, dev);
    ops::rmsnorm_forward(d.h, w.param(p + "shared_head.norm.weight"), eps, d.hk, d.hk_rstd);
    Tensor logp(Shape{T}, DType::F32, dev, "mtp.logp"), none;
    d.lse = Tensor(Shape{T}, DType::F32, dev);
    ops::logprob_head_forward(d.hk, model.head_weight(), d.targets, logp, d.lse, none, model.head_options());
    out.push_back(logp);
    h_prev = d.h;
  }
  return out;
}

void Mtp::backward(Transformer& model, const std::vector<Tensor>& dlogp, ForwardState& st, MtpState& ms,
                   Tensor& dh_last) {
  const ModelConfig& c = model.config();
  ModelWeights& w = model.weights();
  const std::int64_t H = c.hidden_size, L = c.num_hidden_layers;
  const std::int64_t T = st.h_last.dim(0);
  const Device dev = model.device();
  const std::string head_name = c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
  Tensor carry(Shape{T, H}, DType::F32, dev, "mtp.d_next");  // gradient into h_k from depth k+1: none (0) at the last
  for (std::int64_t k = c.num_nextn_predict_layers; k >= 1; --k) {
    MtpDepth& d = ms.depths[k - 1];
    const std::string p = "model.layers." + std::to_string(L + k - 1) + ".";
    Tensor masked = dlogp[k - 1].to(Device::cpu());  // [T]: masked on the host
    for (std::int64_t i = 0; i < T; ++i) masked.data<float>()[i] *= d.mask.data<float>()[i];
    masked = masked.to(dev);
    Tensor dhk = activation(dev, T, H, "mtp.d_head_norm");
    Tensor dhead = w.grad(head_name);
    ops::logprob_head_backward(masked, d.hk, model.head_weight(), d.targets, d.lse, dhk, dhead, model.head_options());
    Tensor dh = activation(dev, T, H, "mtp.d_h");
    Tensor gnorm = w.grad(p + "shared_head.norm.weight");
    ops::rmsnorm_backward(dhk, d.h, w.param(p + "shared_head.norm.weight"), d.hk_rstd, dh, gnorm);
    ops::axpy(1.0f, carry, dh);
    model.layer_backward(L + k - 1, d.block, st, dh);  // dh: now d(x)
    Tensor dcat = activation(dev, T, 2 * H, "mtp.d_cat"), none;
    Tensor geh = w.grad(p + "eh_proj.weight");
    ops::linear_backward(dh, d.cat, w.param(p + "eh_proj.weight"), dcat, geh, none, ops::GemmPrecision::Fp32);
    Tensor de_n = activation(dev, T, H, "mtp.d_enorm"), dh_n = activation(dev, T, H, "mtp.d_hnorm");
    ops::copy_columns(dcat, 0, de_n, 0, H);
    ops::copy_columns(dcat, H, dh_n, 0, H);
    Tensor de = activation(dev, T, H, "mtp.d_emb");
    Tensor ge = w.grad(p + "enorm.weight");
    ops::rmsnorm_backward(de_n, d.e, w.param(p + "enorm.weight"), d.e_rstd, de, ge);
    Tensor gemb = w.grad("model.embed_tokens.weight");
    ops::embedding_backward(de, d.ids, gemb);
    Tensor gh = w.grad(p + "hnorm.weight");
    carry = activation(dev, T, H, "mtp.d_prev");
    ops::rmsnorm_backward(dh_n, d.h_prev, w.param(p + "hnorm.weight"), d.h_rstd, carry, gh);
  }
  dh_last = carry;
}

}  // namespace crucible
