/* params_pack / params_unpack: the parameters as portable text, so that
 * rank 0 parses the file and every rank gets exactly its values. */
#include "config/params_impl.h"
#include "util/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Text, one line per entry: "<name> <source> <line> <value>", doubles in C99
 * hex (exact), strings as "<length>:<bytes>" (any bytes).  Portable across
 * ranks of different endianness; a few kilobytes at most. */
static const char PACK_MAGIC[] = "nrdiff-params 1";

static void sb_blob(strbuf *b, const char *s) {
  if (!s) {
    cfg_sb_puts(b, "-");
    return;
  }
  cfg_sb_printf(b, "%zu:", strlen(s));
  cfg_sb_puts(b, s);
}

int params_pack(const nrd_params *p, char **buf, size_t *len) {
  strbuf b = {0};
  cfg_sb_printf(&b, "%s %d\n", PACK_MAGIC, N_PARAMS);
  sb_blob(&b, p->source_file);
  cfg_sb_puts(&b, "\n");
  for (int i = 0; i < N_PARAMS; i++) {
    const param_spec *s = &cfg_schema[i];
    cfg_sb_printf(&b, "%s %d %d", s->name, p->sources ? (int)p->sources[i] : 0,
                  p->source_lines ? p->source_lines[i] : 0);
    switch (s->type) {
    case TYPE_INT:
      cfg_sb_printf(&b, " %ld", *LONG_AT(p, s));
      break;
    case TYPE_DOUBLE:
      cfg_sb_printf(&b, " %a", *DOUBLE_AT(p, s));
      break;
    case TYPE_ENUM:
      cfg_sb_printf(&b, " %d", *INT_AT(p, s));
      break;
    case TYPE_STRING:
      cfg_sb_puts(&b, " ");
      sb_blob(&b, *STRING_AT(p, s));
      break;
    case TYPE_INT_LIST: {
      const nrd_ilist *l = ILIST_AT(p, s);
      cfg_sb_printf(&b, " %d", l->n);
      for (int k = 0; k < l->n; k++)
        cfg_sb_printf(&b, " %ld", l->v[k]);
      break;
    }
    case TYPE_DOUBLE_LIST: {
      const nrd_dlist *l = DLIST_AT(p, s);
      cfg_sb_printf(&b, " %d", l->n);
      for (int k = 0; k < l->n; k++)
        cfg_sb_printf(&b, " %a", l->v[k]);
      break;
    }
    case TYPE_STRING_LIST: {
      const nrd_slist *l = SLIST_AT(p, s);
      cfg_sb_printf(&b, " %d", l->n);
      for (int k = 0; k < l->n; k++) {
        cfg_sb_puts(&b, " ");
        sb_blob(&b, l->v[k]);
      }
      break;
    }
    }
    cfg_sb_puts(&b, "\n");
  }
  if (b.failed) {
    free(b.data);
    return NRD_ERR_NOMEM;
  }
  *buf = b.data;
  *len = b.len;
  return NRD_OK;
}

typedef struct {
  const char *s;
  size_t len, pos;
  bool bad; /* malformed: every later read fails */
  bool nomem;
} pack_reader;

static bool rd_char(pack_reader *r, char c) {
  if (r->bad || r->pos >= r->len || r->s[r->pos] != c) return !(r->bad = true);
  r->pos++;
  return true;
}

/* The next space- or newline-terminated word, preceded by one space. */
static bool rd_word(pack_reader *r, char *word, size_t cap) {
  if (!rd_char(r, ' ')) return false;
  size_t n = 0;
  while (r->pos < r->len && r->s[r->pos] != ' ' && r->s[r->pos] != '\n') {
    if (n + 1 >= cap) return !(r->bad = true);
    word[n++] = r->s[r->pos++];
  }
  word[n] = '\0';
  if (n == 0) r->bad = true;
  return !r->bad;
}

static long long rd_integer(pack_reader *r) {
  char word[64], *end;
  if (!rd_word(r, word, sizeof word)) return 0;
  errno = 0;
  long long v = strtoll(word, &end, 10);
  if (*end || errno) r->bad = true;
  return v;
}

static double rd_double(pack_reader *r) {
  char word[64], *end;
  if (!rd_word(r, word, sizeof word)) return 0;
  double v = strtod(word, &end);
  if (*end) r->bad = true;
  return v;
}

/* "-" (NULL) or "<length>:<bytes>"; leading space already consumed. */
static char *rd_blob(pack_reader *r) {
  if (r->bad || r->pos >= r->len) return (r->bad = true), NULL;
  if (r->s[r->pos] == '-') {
    r->pos++;
    return NULL;
  }
  size_t n = 0;
  bool digits = false;
  while (r->pos < r->len && r->s[r->pos] >= '0' && r->s[r->pos] <= '9') {
    n = n * 10 + (size_t)(r->s[r->pos++] - '0');
    digits = true;
    if (n > r->len) return (r->bad = true), NULL;
  }
  if (!digits || !rd_char(r, ':') || n > r->len - r->pos)
    return (r->bad = true), NULL;
  char *s = malloc(n + 1);
  if (!s) return (r->nomem = r->bad = true), NULL;
  memcpy(s, r->s + r->pos, n);
  s[n] = '\0';
  r->pos += n;
  return s;
}

/* A list length that the rest of the buffer can actually hold. */
static int rd_count(pack_reader *r) {
  long long n = rd_integer(r);
  if (n < 0 || (size_t)n > r->len - r->pos) r->bad = true;
  return r->bad ? 0 : (int)n;
}

/* Room for n elements of size bytes (NULL for none or out of memory). */
static void *rd_array(pack_reader *r, int n, size_t size) {
  void *v = n ? calloc((size_t)n, size) : NULL;
  if (n && !v) r->nomem = r->bad = true;
  return v;
}

static void unpack_value(pack_reader *r, nrd_params *q, const param_spec *s) {
  switch (s->type) {
  case TYPE_INT:
    *LONG_AT(q, s) = (long)rd_integer(r);
    break;
  case TYPE_DOUBLE:
    *DOUBLE_AT(q, s) = rd_double(r);
    break;
  case TYPE_ENUM: {
    long long k = rd_integer(r);
    if (k < 0 || k >= cfg_count_choices(s->choices)) r->bad = true;
    *INT_AT(q, s) = (int)k;
    break;
  }
  case TYPE_STRING:
    if (rd_char(r, ' ')) *STRING_AT(q, s) = rd_blob(r);
    break;
  case TYPE_INT_LIST: {
    nrd_ilist *l = ILIST_AT(q, s);
    int n = rd_count(r);
    l->v = rd_array(r, n, sizeof *l->v);
    for (; !r->bad && l->n < n; l->n++)
      l->v[l->n] = (long)rd_integer(r);
    break;
  }
  case TYPE_DOUBLE_LIST: {
    nrd_dlist *l = DLIST_AT(q, s);
    int n = rd_count(r);
    l->v = rd_array(r, n, sizeof *l->v);
    for (; !r->bad && l->n < n; l->n++)
      l->v[l->n] = rd_double(r);
    break;
  }
  case TYPE_STRING_LIST: {
    nrd_slist *l = SLIST_AT(q, s);
    int n = rd_count(r);
    l->v = rd_array(r, n, sizeof *l->v);
    while (!r->bad && l->n < n && rd_char(r, ' ')) {
      l->v[l->n] = rd_blob(r);
      if (l->v[l->n])
        l->n++;
      else
        r->bad = true;
    }
    break;
  }
  }
}

int params_unpack(nrd_params *p, const char *buf, size_t len) {
  nrd_params q;
  memset(&q, 0, sizeof q);
  q.sources = calloc(N_PARAMS, sizeof *q.sources);
  q.source_lines = calloc(N_PARAMS, sizeof *q.source_lines);
  pack_reader r = {.s = buf, .len = buf ? len : 0};
  if (!q.sources || !q.source_lines) r.nomem = r.bad = true;
  size_t magic = strlen(PACK_MAGIC);
  if (r.len < magic || memcmp(buf, PACK_MAGIC, magic) != 0) r.bad = true;
  r.pos = magic;
  if (rd_integer(&r) != N_PARAMS || !rd_char(&r, '\n')) r.bad = true;
  if (!r.bad) q.source_file = rd_blob(&r);
  rd_char(&r, '\n');
  const char *entry = "the header"; /* being read, for the failure trace */
  for (int i = 0; i < N_PARAMS && !r.bad; i++) {
    const param_spec *s = &cfg_schema[i];
    entry = s->name;
    size_t n = strlen(s->name);
    if (r.len - r.pos < n || memcmp(buf + r.pos, s->name, n) != 0) {
      r.bad = true;
      break;
    }
    r.pos += n;
    long long source = rd_integer(&r), line = rd_integer(&r);
    if (source < PSRC_DEFAULT || source > PSRC_OVERRIDE || line < 0 ||
        line > 1 << 30)
      r.bad = true;
    q.sources[i] = (nrd_param_source)source;
    q.source_lines[i] = (int)line;
    unpack_value(&r, &q, s);
    rd_char(&r, '\n');
  }
  if (r.pos != r.len) r.bad = true;
  if (r.bad) {
    params_free(&q);
    if (r.nomem)
      return NRD_FAIL(NRD_ERR_NOMEM, "unpacking %zu bytes of parameters", len);
    return NRD_FAIL(NRD_ERR_INPUT,
                    "not a pack of these %d parameters (at %s, byte %zu of "
                    "%zu)",
                    N_PARAMS, entry, r.pos < r.len ? r.pos : r.len, r.len);
  }
  params_free(p);
  *p = q;
  return NRD_OK;
}
