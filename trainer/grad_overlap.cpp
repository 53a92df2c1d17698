// trainer/grad_overlap.cpp: per-layer gradient buckets all-reduced during backward.
#include "trainer/grad_overlap.h"

#include <algorithm>
#include <charconv>
#include <string_view>

#include "core/error.h"
#include "dist/communicator.h"
#include "trainer/optimizer.h"

namespace crucible::trainer {

namespace {

// The decoder layer of a parameter named "model.layers.<l>.…", or -1.
std::int64_t layer_of(std::string_view name) {
  constexpr std::string_view kPrefix = "model.layers.";
  if (!name.starts_with(kPrefix)) return -1;
  name.remove_prefix(kPrefix.size());
  std::int64_t l = -1;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), l);
  if (ec != std::errc() || end == name.data() + name.size() || *end != '.') return -1;
  return l;
}

}  // namespace

GradOverlap::GradOverlap(ModelWeights& weights, dist::Communicator& comm)
    : w_(weights), comm_(comm), stream_(Stream::create_concurrent(weights.params().view(0).device())) {
  const std::int64_t L = w_.config().num_hidden_layers;
  const Layout& layout = w_.grads().layout();
  const std::int64_t total = flat_gradients(w_).numel();
  layer_.assign(static_cast<std::size_t>(L), Range{});
  done_.assign(static_cast<std::size_t>(L), false);
  // Each layer's span: from its first tensor's first element to its last's end.
  std::vector<Range> span(static_cast<std::size_t>(L), Range{total, 0});
  for (const Layout::Entry& e : layout.entries()) {
    CRUCIBLE_CHECK(e.dtype == DType::F32, "GradOverlap: gradient '", e.name, "' is ", dtype_name(e.dtype),
                   ", the flat gradient buffer is FP32");
    const std::int64_t l = layer_of(e.name);
    if (l < 0 || l >= L) continue;  // not a decoder layer (MTP layers are numbered from L)
    Range& s = span[static_cast<std::size_t>(l)];
    const auto begin = static_cast<std::int64_t>(e.offset / sizeof(float));
    s.begin = std::min(s.begin, begin);
    s.end = std::max(s.end, begin + e.shape.numel());
  }
  // A span is a bucket only if no other layer's or the model's tensor lies inside it.
  for (std::int64_t l = 0; l < L; ++l) {
    const Range s = span[static_cast<std::size_t>(l)];
    if (s.empty()) continue;
    const bool contiguous = std::none_of(layout.entries().begin(), layout.entries().end(), [&](const Layout::Entry& e) {
      const auto b = static_cast<std::int64_t>(e.offset / sizeof(float));
      return layer_of(e.name) != l && b < s.end && b + e.shape.numel() > s.begin;
    });
    if (contiguous) layer_[static_cast<std::size_t>(l)] = s;
  }
  // The rest: the complement of the buckets in [0, total).
  std::vector<Range> sorted;
  for (const Range& r : layer_)
    if (!r.empty()) sorted.push_back(r);
  std::sort(sorted.begin(), sorted.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
  std::int64_t at = 0;
  for (const Range& r : sorted) {
    if (r.begin > at) rest_.push_back({at, r.begin});
    at = r.end;
  }
  if (total > at) rest_.push_back({at, total});
}

std::int64_t GradOverlap::buckets() const {
  return std::count_if(layer_.begin(), layer_.end(), [](const Range& r) { return !r.empty(); });
}

void GradOverlap::reduce(const Range& r) {
  if (r.empty()) return;
  Tensor piece = flat_gradients(w_).slice(r.begin, r.end);
  comm_.all_reduce(piece, dist::ReduceOp::Sum, stream_);
}

std::function<void(std::int64_t)> GradOverlap::hook() {
  return [this](std::int64_t l) {
    CRUCIBLE_CHECK(l >= 0 && l < static_cast<std::int64_t>(layer_.size()), "GradOverlap: no layer ", l);
    const Range& r = layer_[static_cast<std::size_t>(l)];
    if (r.empty()) return;
    CRUCIBLE_CHECK(!done_[static_cast<std::size_t>(l)], "GradOverlap: layer ", l,
                   " reported twice in one update: a backward ran after the one armed as the last");
    done_[static_cast<std::size_t>(l)] = true;
    // Layer l's gradients are written on the default stream; reduce after them.
    stream_.wait_for(Stream::default_for(stream_.device()));
    reduce(r);
  };
}

void GradOverlap::finish() {
  stream_.wait_for(Stream::default_for(stream_.device()));
  for (std::int64_t l = static_cast<std::int64_t>(layer_.size()) - 1; l >= 0; --l)
    if (!done_[static_cast<std::size_t>(l)]) reduce(layer_[static_cast<std::size_t>(l)]);
  for (const Range& r : rest_) reduce(r);
  Stream::default_for(stream_.device()).wait_for(stream_);
  std::fill(done_.begin(), done_.end(), false);
}

}  // namespace crucible::trainer
