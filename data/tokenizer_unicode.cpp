// data/tokenizer_unicode.cpp: UTF-8 helpers, the code point property table and NFC.
//
// The property table is a two-stage lookup built once from the generated category runs
// and NFC data: one byte per code point = general category (5 bits) + "NFC-unstable"
// (the code point has a non-zero combining class, decomposes under NFC, or can combine
// with what precedes it). NFC then only reworks the short segments between stable code
// points that contain an unstable one; everything else is copied byte for byte.
// Invariant: nfc_append(x) equals tokenizers' NFC of x (tests/data/test_tokenizer_unicode.cpp
// checks the goldens). Reference: UAX #15 §3 (D117 canonical composition), §9 (quick check).
#include "data/tokenizer_unicode.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace crucible::data::unicode {

namespace {

constexpr char32_t kMaxCodePoint = 0x10FFFF;
// Hangul syllables (UAX #15 §3.12 / Unicode §3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr int kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
              kSCount = kLCount * kNCount;

const Decomposition* find_decomposition(char32_t cp) {
  const Decomposition* end = kDecompositions + kDecompositionCount;
  const Decomposition* it = std::lower_bound(kDecompositions, end, cp,
                                             [](const Decomposition& d, char32_t c) { return d.cp < c; });
  return it != end && it->cp == cp ? it : nullptr;
}

std::uint64_t pair_key(char32_t a, char32_t b) { return (static_cast<std::uint64_t>(a) << 21) | b; }

struct Tables {
  std::vector<std::uint16_t> stage1;
  std::vector<std::uint8_t> stage2;
  detail::PropertyTable view{};
  std::unordered_map<std::uint64_t, char32_t> compositions;  // (first, second) -> primary composite
};

const Tables& tables() {
  static const Tables* t = [] {
    auto* tb = new Tables();
    // Per code point: category, then the unstable bit.
    std::vector<std::uint8_t> props(kMaxCodePoint + 1, 0);
    for (std::size_t i = 0; i < kCategoryRunCount; ++i) {
      const std::uint32_t first = kCategoryRuns[i].first;
      const std::uint32_t end = i + 1 < kCategoryRunCount ? kCategoryRuns[i + 1].first : kMaxCodePoint + 1;
      std::memset(props.data() + first, static_cast<int>(kCategoryRuns[i].category), end - first);
    }
    for (std::size_t i = 0; i < kCombiningClassRangeCount; ++i)
      for (std::uint32_t c = kCombiningClassRanges[i].first; c <= kCombiningClassRanges[i].last; ++c)
        props[c] |= detail::kNfcUnstable;
    for (std::size_t i = 0; i < kDecompositionCount; ++i) {
      const Decomposition& d = kDecompositions[i];
      if (d.composes) {
        tb->compositions.emplace(pair_key(d.first, d.second), d.cp);
        props[d.second] |= detail::kNfcUnstable;  // may combine with the code point before it
      } else {
        props[d.cp] |= detail::kNfcUnstable;  // singleton or excluded: NFC changes it
      }
    }
    for (char32_t c = kVBase; c < kVBase + kVCount; ++c) props[c] |= detail::kNfcUnstable;
    for (char32_t c = kTBase + 1; c < kTBase + kTCount; ++c) props[c] |= detail::kNfcUnstable;
    // Two stages: identical 256-entry blocks are stored once.
    constexpr std::size_t kBlocks = (kMaxCodePoint + 1) >> 8;
    tb->stage1.resize(kBlocks);
    std::unordered_map<std::string, std::uint16_t> seen;
    for (std::size_t b = 0; b < kBlocks; ++b) {
      std::string key(reinterpret_cast<const char*>(props.data() + (b << 8)), 256);
      auto [it, fresh] = seen.emplace(std::move(key), static_cast<std::uint16_t>(seen.size()));
      if (fresh) tb->stage2.insert(tb->stage2.end(), props.begin() + (b << 8), props.begin() + ((b + 1) << 8));
      tb->stage1[b] = it->second;
    }
    tb->view = {tb->stage1.data(), tb->stage2.data()};
    return tb;
  }();
  return *t;
}

char32_t compose_pair(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount)
    return a + (b - kTBase);
  const auto& m = tables().compositions;
  auto it = m.find(pair_key(a, b));
  return it == m.end() ? 0 : it->second;
}

void decompose(char32_t cp, std::vector<char32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  if (cp >= 0xC0) {
    if (const Decomposition* d = find_decomposition(cp)) {
      decompose(d->first, out);
      if (d->second != 0) decompose(d->second, out);
      return;
    }
  }
  out.push_back(cp);
}

// NFC of one segment (valid UTF-8): decompose, order the marks, recompose.
void normalize_segment(std::string_view seg, std::string& out) {
  std::vector<char32_t> buf;
  buf.reserve(seg.size() + 8);
  const auto* p = reinterpret_cast<const unsigned char*>(seg.data());
  const auto* end = p + seg.size();
  while (p < end) {
    char32_t cp;
    p += utf8_decode(p, cp);
    decompose(cp, buf);
  }
  // Canonical ordering: a stable insertion sort of every run of non-starters by class.
  std::vector<std::uint8_t> cls(buf.size());
  for (std::size_t i = 0; i < buf.size(); ++i) cls[i] = combining_class(buf[i]);
  for (std::size_t i = 1; i < buf.size(); ++i) {
    for (std::size_t j = i; j > 0 && cls[j] != 0 && cls[j - 1] > cls[j]; --j) {
      std::swap(buf[j], buf[j - 1]);
      std::swap(cls[j], cls[j - 1]);
    }
  }
  // Canonical composition (UAX #15 D117): a mark joins the last starter unless blocked.
  if (!buf.empty()) {
    std::size_t starter = 0, kept = 1;
    int last_class = cls[0] == 0 ? 0 : 256;  // 256: a leading mark has no starter to join
    for (std::size_t i = 1; i < buf.size(); ++i) {
      const char32_t ch = buf[i];
      const int c = cls[i];
      if (last_class < c || last_class == 0) {
        if (const char32_t composite = compose_pair(buf[starter], ch)) {
          buf[starter] = composite;
          continue;
        }
      }
      if (c == 0) starter = kept;
      last_class = c;
      buf[kept++] = ch;
    }
    buf.resize(kept);
  }
  for (char32_t c : buf) utf8_append(out, c);
}

}  // namespace

const detail::PropertyTable& detail::property_table() { return tables().view; }

std::uint8_t combining_class(char32_t cp) {
  if (cp < 0x300) return 0;
  const CombiningClassRange* end = kCombiningClassRanges + kCombiningClassRangeCount;
  const CombiningClassRange* it = std::upper_bound(
      kCombiningClassRanges, end, cp, [](char32_t c, const CombiningClassRange& r) { return c < r.first; });
  if (it == kCombiningClassRanges) return 0;
  --it;
  return cp <= it->last ? it->ccc : 0;
}

std::size_t utf8_invalid_at(std::string_view s) {
  const auto* b = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    if (i + 8 <= n) {  // ASCII fast path, 8 bytes at a time
      std::uint64_t w;
      std::memcpy(&w, b + i, 8);
      if ((w & 0x8080808080808080ull) == 0) {
        i += 8;
        continue;
      }
    }
    const unsigned c = b[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len;
    unsigned lo = 0x80, hi = 0xBF;  // the allowed range of the second byte (RFC 3629 §4)
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) len = 3, lo = 0xA0;
    else if (c >= 0xE1 && c <= 0xEC) len = 3;
    else if (c == 0xED) len = 3, hi = 0x9F;
    else if (c >= 0xEE && c <= 0xEF) len = 3;
    else if (c == 0xF0) len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) len = 4, hi = 0x8F;
    else return i;
    if (i + static_cast<std::size_t>(len) > n) return i;
    if (b[i + 1] < lo || b[i + 1] > hi) return i;
    for (int k = 2; k < len; ++k)
      if ((b[i + k] & 0xC0) != 0x80) return i;
    i += static_cast<std::size_t>(len);
  }
  return std::string_view::npos;
}

void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool nfc_quick_check(std::string_view in) {
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  const auto* end = p + in.size();
  while (p < end) {
    if (*p < 0xCC) {  // below U+0300 (or a continuation byte): always stable
      ++p;
      continue;
    }
    char32_t cp;
    p += utf8_decode(p, cp);
    if (properties(cp) & detail::kNfcUnstable) return false;
  }
  return true;
}

void nfc_append(std::string_view in, std::string& out) {
  const auto* begin = reinterpret_cast<const unsigned char*>(in.data());
  const auto* end = begin + in.size();
  const auto* p = begin;
  const auto* seg = begin;  // start of the current segment (at a stable code point)
  bool unstable = false;
  auto flush = [&](const unsigned char* to) {
    const std::string_view s(reinterpret_cast<const char*>(seg), static_cast<std::size_t>(to - seg));
    if (unstable) normalize_segment(s, out);
    else out.append(s);
  };
  while (p < end) {
    if (*p < 0xCC) {  // stable (ASCII, Latin-1, ... up to U+02FF) or a continuation byte
      if ((*p & 0xC0) != 0x80 && unstable) {
        flush(p);
        seg = p;
        unstable = false;
      }
      ++p;
      continue;
    }
    char32_t cp;
    const int len = utf8_decode(p, cp);
    if (properties(cp) & detail::kNfcUnstable) {
      unstable = true;
    } else if (unstable) {
      flush(p);
      seg = p;
      unstable = false;
    }
    p += len;
  }
  flush(end);
}

std::string utf8_lossy(std::string bytes) {
  if (utf8_invalid_at(bytes) == std::string::npos) return bytes;
  std::string out;
  out.reserve(bytes.size() + 8);
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  std::size_t i = 0;
  while (i < n) {
    const std::size_t bad = utf8_invalid_at(std::string_view(bytes).substr(i));
    if (bad == std::string::npos) {
      out.append(bytes, i, std::string::npos);
      break;
    }
    out.append(bytes, i, bad);
    i += bad;
    // The maximal subpart of a well-formed sequence starting at i is replaced by one U+FFFD.
    const unsigned c = s[i];
    std::size_t len = 1;
    unsigned lo = 0x80, hi = 0xBF;
    int need = 0;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c >= 0xE0 && c <= 0xEF) need = 2, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4) need = 3, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    for (int k = 0; k < need && i + len < n; ++k) {
      const unsigned d = s[i + len];
      if (k == 0 ? (d < lo || d > hi) : (d & 0xC0) != 0x80) break;
      ++len;
    }
    out.append("\xEF\xBF\xBD");
    i += len;
  }
  return out;
}

}  // namespace crucible::data::unicode
