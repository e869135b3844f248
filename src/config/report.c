/* One-line error messages of the parameters: "WHERE: key 'KEY': what is
 * wrong", WHERE being FILE:LINE:COL, FILE, or the -P override. */
#include "config/params_impl.h"
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cfg_out_of_memory(char *err, size_t errlen) {
  if (err && errlen) snprintf(err, errlen, "out of memory for the parameters");
  return NRD_ERR_NOMEM;
}

void cfg_vreport(char *err, size_t errlen, const char *where, const char *key,
                 const char *fmt, va_list ap) {
  if (!err || errlen == 0) return;
  char head[1600] = "";
  if (where && key)
    snprintf(head, sizeof head, "%s: key '%s': ", where, key);
  else if (where)
    snprintf(head, sizeof head, "%s: ", where);
  else if (key)
    snprintf(head, sizeof head, "key '%s': ", key);
  va_list copy;
  va_copy(copy, ap);
  int n = vsnprintf(NULL, 0, fmt, copy);
  va_end(copy);
  size_t body_len = n > 0 ? (size_t)n : 0, head_len = strlen(head);
  char *whole = malloc(head_len + body_len + 1);
  if (!whole) {
    cfg_out_of_memory(err, errlen);
    return;
  }
  memcpy(whole, head, head_len + 1);
  vsnprintf(whole + head_len, body_len + 1, fmt, ap);
  cfg_copy_printable(err, errlen, whole);
  free(whole);
}

/* "-P KEY=VALUE" for messages; a very long override is cut after its first
 * 200 bytes, so that what is wrong with it still fits in the message. */
void cfg_override_where(char *where, size_t n, const char *override) {
  enum { SHOWN = 200 };
  size_t len = strlen(override);
  if (len <= SHOWN + 40) {
    snprintf(where, n, "-P %s", override);
    return;
  }
  size_t cut = SHOWN;
  while (cut > 0 && ((unsigned char)override[cut] & 0xC0) == 0x80)
    cut--;
  snprintf(where, n, "-P %.*s... (%zu bytes in all)", (int)cut, override, len);
}
