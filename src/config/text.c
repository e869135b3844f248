/* Text helpers of the config layer: UTF-8 decoding, one-line printable
 * copies of any input (for messages), and the shortest decimal text that
 * reads back as a double exactly (messages and the YAML writer). */
#include "config/params_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Decode one UTF-8 sequence; returns its length (0 if invalid). */
int cfg_utf8_decode(const unsigned char *s, unsigned long *cp) {
  if (s[0] < 0x80) return *cp = s[0], 1;
  int n = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
  if (n == 0 || s[0] > 0xF4) return 0;
  unsigned long v = s[0] & (0x3F >> (n - 1));
  for (int k = 1; k < n; k++) {
    if ((s[k] & 0xC0) != 0x80) return 0;
    v = (v << 6) | (s[k] & 0x3F);
  }
  static const unsigned long smallest[] = {0, 0, 0x80, 0x800, 0x10000};
  if (v < smallest[n] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return n;
}

/* Copy text into out (always terminated, cut at a whole character) so that
 * a message is one line of valid UTF-8 whatever the input held: line breaks,
 * tabs and other control characters become \n, \t, \xNN (bytes that are
 * not UTF-8 too), line separators and the invisible BOM \uNNNN. */
void cfg_copy_printable(char *out, size_t outlen, const char *text) {
  size_t used = 0;
  const unsigned char *s = (const unsigned char *)text;
  while (*s) {
    unsigned long cp = 0;
    int n = cfg_utf8_decode(s, &cp);
    char esc[8];
    const char *piece = (const char *)s;
    size_t len = (size_t)n;
    if (n == 0) {
      snprintf(esc, sizeof esc, "\\x%02X", (unsigned)*s);
      n = 1;
    } else if (cp == '\n' || cp == '\r' || cp == '\t') {
      char letter = cp == '\n' ? 'n' : cp == '\r' ? 'r' : 't';
      snprintf(esc, sizeof esc, "\\%c", letter);
    } else if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F)) {
      snprintf(esc, sizeof esc, "\\x%02lX", cp);
    } else if (cp == 0x2028 || cp == 0x2029 || cp == 0xFEFF) {
      snprintf(esc, sizeof esc, "\\u%04lX", cp);
    } else {
      esc[0] = '\0';
    }
    if (esc[0]) {
      piece = esc;
      len = strlen(esc);
    }
    if (used + len + 1 > outlen) break;
    memcpy(out + used, piece, len);
    used += len;
    s += n;
  }
  out[used] = '\0';
}

/* Shortest text that reads back as exactly x: integers in full ("1000000",
 * not "1e+06"), anything else with the fewest digits (at most 17). */
const char *cfg_shortest_double(char buf[32], double x) {
  if (x == floor(x) && fabs(x) < 1e15) {
    snprintf(buf, 32, "%.0f", x);
    if (x == 0 && signbit(x)) snprintf(buf, 32, "-0");
    return buf;
  }
  for (int digits = 1; digits <= 17; digits++) {
    snprintf(buf, 32, "%.*g", digits, x);
    if (strtod(buf, NULL) == x) break;
  }
  return buf;
}
