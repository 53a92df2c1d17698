// core/rng.h: counter-based random numbers (Philox-4x32-10).
//
// Philox (Salmon et al., "Parallel Random Numbers: As Easy as 1, 2, 3", SC'11) maps
// (key, counter) to 128 random bits with no state beyond the counter, so the CPU and
// CUDA backends can draw the same numbers in any order, and a checkpoint only needs
// (seed, offset) to resume a stream bit-identically.
#pragma once

#include <array>
#include <cstdint>

namespace crucible {

// One Philox-4x32-10 block: 4 random 32-bit words for (key, counter).
std::array<std::uint32_t, 4> philox4x32(std::array<std::uint32_t, 4> counter,
                                        std::array<std::uint32_t, 2> key);

// A stream over Philox blocks: seed (key) + 64-bit stream id + position.
class Rng {
 public:
  explicit Rng(std::uint64_t seed = 0, std::uint64_t stream = 0) : seed_(seed), stream_(stream) {}

  std::uint32_t next_u32();
  std::uint64_t next_u64();
  float uniform();          // [0, 1) with 24 random bits
  double uniform_double();  // [0, 1) with 53 random bits
  float normal();           // standard normal (Box-Muller; 4 words each)
  std::uint64_t below(std::uint64_t n);  // uniform in [0, n), unbiased

  // Resumable state: (seed, stream, position in 32-bit words).
  std::uint64_t seed() const { return seed_; }
  std::uint64_t stream() const { return stream_; }
  std::uint64_t position() const { return position_; }
  void set_position(std::uint64_t words);

 private:
  std::uint64_t seed_, stream_;
  std::uint64_t position_ = 0;  // words drawn so far
  std::array<std::uint32_t, 4> block_{};
};

}  // namespace crucible
