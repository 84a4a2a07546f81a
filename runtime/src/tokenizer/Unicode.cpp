//===- Unicode.cpp - UTF-8 and character classes for the tokenizer --------===//
//
// The class tables come from tools/gen_unicode_tables.py; ASCII is answered
// from a 128-entry table, everything else by binary search over ranges.
//
//===----------------------------------------------------------------------===//

#include "tokenizer/Unicode.h"

#include <algorithm>
#include <array>
#include <iterator>

namespace falcon::tokenizer {
namespace {

struct CodePointRange {
  uint32_t first;
  uint32_t last;
};

#include "tokenizer/UnicodeTables.inc"

template <size_t N>
bool inRanges(const CodePointRange (&ranges)[N], uint32_t cp) {
  const CodePointRange *it = std::upper_bound(
      std::begin(ranges), std::end(ranges), cp,
      [](uint32_t value, const CodePointRange &r) { return value < r.first; });
  return it != std::begin(ranges) && cp <= std::prev(it)->last;
}

uint8_t classifySlow(uint32_t cp) {
  uint8_t bits = 0;
  if (inRanges(kLetterRanges, cp))
    bits |= kLetter;
  if (inRanges(kNumberRanges, cp))
    bits |= kNumber;
  if (inRanges(kWhiteSpaceRanges, cp))
    bits |= kWhiteSpace;
  if (inRanges(kPunctuationRanges, cp))
    bits |= kPunctuation;
  return bits;
}

// Latin-1 is where byte-level tokens live (every byte maps to a code point
// below U+0144), so it gets the table.
const std::array<uint8_t, 512> &latinTable() {
  static const std::array<uint8_t, 512> table = [] {
    std::array<uint8_t, 512> t{};
    for (uint32_t cp = 0; cp < t.size(); ++cp)
      t[cp] = classifySlow(cp);
    return t;
  }();
  return table;
}

} // namespace

uint8_t classify(uint32_t cp) {
  if (cp < 512)
    return latinTable()[cp];
  return classifySlow(cp);
}

size_t decodeUtf8(llvm::StringRef text, size_t offset, uint32_t &cp) {
  auto byte = [&](size_t i) -> uint32_t {
    return static_cast<unsigned char>(text[i]);
  };
  size_t size = text.size();
  uint32_t lead = byte(offset);
  if (lead < 0x80) {
    cp = lead;
    return 1;
  }
  size_t width;
  uint32_t low = 0x80, high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    width = 2;
    cp = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    width = 3;
    cp = lead & 0x0F;
    if (lead == 0xE0)
      low = 0xA0;
    else if (lead == 0xED)
      high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    width = 4;
    cp = lead & 0x07;
    if (lead == 0xF0)
      low = 0x90;
    else if (lead == 0xF4)
      high = 0x8F;
  } else {
    return 0;
  }
  if (offset + width > size)
    return 0;
  for (size_t i = 1; i < width; ++i) {
    uint32_t b = byte(offset + i);
    if (b < (i == 1 ? low : 0x80) || b > (i == 1 ? high : 0xBF))
      return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  return width;
}

size_t findInvalidUtf8(llvm::StringRef text) {
  size_t offset = 0;
  uint32_t cp;
  while (offset < text.size()) {
    // ASCII runs dominate real text.
    if (static_cast<unsigned char>(text[offset]) < 0x80) {
      ++offset;
      continue;
    }
    size_t length = decodeUtf8(text, offset, cp);
    if (length == 0)
      return offset;
    offset += length;
  }
  return llvm::StringRef::npos;
}

void appendUtf8(uint32_t cp, std::string &out) {
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

void appendUtf8Lossy(llvm::StringRef bytes, std::string &out) {
  static constexpr char kReplacement[] = "\xEF\xBF\xBD";
  size_t i = 0, size = bytes.size();
  auto byte = [&](size_t k) -> uint32_t {
    return static_cast<unsigned char>(bytes[k]);
  };
  while (i < size) {
    uint32_t lead = byte(i);
    if (lead < 0x80) {
      out.push_back(static_cast<char>(lead));
      ++i;
      continue;
    }
    size_t width;
    uint32_t low = 0x80, high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      width = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      width = 3;
      low = lead == 0xE0 ? 0xA0 : 0x80;
      high = lead == 0xED ? 0x9F : 0xBF;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      width = 4;
      low = lead == 0xF0 ? 0x90 : 0x80;
      high = lead == 0xF4 ? 0x8F : 0xBF;
    } else {
      out += kReplacement;
      ++i;
      continue;
    }
    // The longest prefix of a valid sequence is replaced as one unit.
    size_t end = i + 1;
    bool valid = true;
    for (size_t k = 1; k < width; ++k, ++end) {
      uint32_t lo = k == 1 ? low : 0x80, hi = k == 1 ? high : 0xBF;
      if (end >= size || byte(end) < lo || byte(end) > hi) {
        valid = false;
        break;
      }
    }
    if (valid)
      out.append(bytes.data() + i, width);
    else
      out += kReplacement;
    i = end;
  }
}

} // namespace falcon::tokenizer
