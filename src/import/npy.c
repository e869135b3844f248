/* Reading NumPy .npy files (see npy.h): the header dict parsed strictly,
 * the way numpy.lib.format writes it, anything else refused. */
#include "import/npy.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_HEADER = 1 << 20 }; /* numpy's own headers are < 1 KiB */

/* A cursor over the header text; bad: the first syntax error seen. */
typedef struct {
  const char *p, *end;
  const char *bad;
} cursor;

static void skip_space(cursor *c) {
  while (c->p < c->end && isspace((unsigned char)*c->p))
    c->p++;
}

/* The next character, if it is ch (after spaces). */
static int take(cursor *c, char ch) {
  skip_space(c);
  if (c->p < c->end && *c->p == ch) {
    c->p++;
    return 1;
  }
  return 0;
}

static void fail(cursor *c, const char *what) {
  if (!c->bad) c->bad = what;
}

/* A quoted string without escapes ('...' or "..."). */
static void string(cursor *c, char *out, size_t cap) {
  skip_space(c);
  out[0] = 0;
  if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
    return fail(c, "a quoted string expected");
  char q = *c->p++;
  size_t n = 0;
  while (c->p < c->end && *c->p != q) {
    if (*c->p == '\\' || n + 1 >= cap) return fail(c, "a string too long");
    out[n++] = *c->p++;
  }
  out[n] = 0;
  if (c->p >= c->end) return fail(c, "an unterminated string");
  c->p++;
}

static int word(cursor *c, const char *w) {
  skip_space(c);
  size_t n = strlen(w);
  if ((size_t)(c->end - c->p) >= n && !memcmp(c->p, w, n)) {
    c->p += n;
    return 1;
  }
  return 0;
}

/* (d0, d1, ...): decimal integers, an optional trailing comma, () for a
 * scalar, Python 2's 'L' suffix allowed. */
static void shape(cursor *c, imp_array *a) {
  if (!take(c, '(')) return fail(c, "a tuple expected for 'shape'");
  a->ndim = 0;
  for (;;) {
    if (take(c, ')')) return;
    skip_space(c);
    if (c->p >= c->end || !isdigit((unsigned char)*c->p))
      return fail(c, "a non-negative integer expected in 'shape'");
    if (a->ndim == IMP_MAX_DIMS) return fail(c, "more than 32 dimensions");
    uint64_t v = 0;
    while (c->p < c->end && isdigit((unsigned char)*c->p)) {
      if (v > (UINT64_MAX - 9) / 10) return fail(c, "a dimension too large");
      v = 10 * v + (uint64_t)(*c->p++ - '0');
    }
    if (c->p < c->end && *c->p == 'L') c->p++;
    a->dims[a->ndim++] = v;
    if (!take(c, ',')) {
      if (!take(c, ')')) fail(c, "',' or ')' expected in 'shape'");
      return;
    }
  }
}

/* descr: byte order ('<', '>', '|', '='), kind letter, size in bytes.
 * Returns 0 or the reason it is refused (in why). */
static int parse_descr(const char *descr, imp_kind *k, char *why, size_t len) {
  static const union {
    unsigned short s;
    unsigned char b[2];
  } host = {1};
  const char *p = descr;
  char order = *p && strchr("<>|=", *p) ? *p++ : '=';
  char kind = *p ? *p++ : 0;
  char *rest;
  long size = strtol(p, &rest, 10);
  int plain = *p && isdigit((unsigned char)*p) && !*rest;
  if (kind == 'O') {
    snprintf(why, len, "an object array (pickled Python objects)");
    return -1;
  }
  if (kind == 'c') {
    snprintf(why, len, "complex numbers");
    return -1;
  }
  int ok = plain && ((kind == 'f' && (size == 4 || size == 8)) ||
                     ((kind == 'i' || kind == 'u') &&
                      (size == 1 || size == 2 || size == 4 || size == 8)));
  if (!ok) {
    snprintf(why, len,
             kind == 'b'   ? "booleans"
             : kind == 'f' ? "a floating-point size other than 4 or 8 bytes"
                           : "not a plain number type");
    return -1;
  }
  k->cls = kind == 'f' ? IMP_FLOAT : kind == 'i' ? IMP_INT : IMP_UINT;
  k->size = (int)size;
  k->big_endian = order == '>' || (order == '=' && host.b[0] == 0);
  if (order == '|' && size > 1) {
    snprintf(why, len, "no byte order for a multi-byte type");
    return -1;
  }
  return 0;
}

/* The header dict: exactly the keys descr, fortran_order and shape. */
static int parse_header(imp_source *s, const char *text, size_t n, imp_array *a,
                        int *fortran) {
  cursor c = {text, text + n, NULL};
  char key[32], descr[64] = "";
  int seen = 0; /* bits: descr, fortran_order, shape */
  if (!take(&c, '{')) fail(&c, "'{' expected");
  while (!c.bad && !take(&c, '}')) {
    string(&c, key, sizeof key);
    if (!c.bad && !take(&c, ':')) fail(&c, "':' expected");
    if (c.bad) break;
    if (!strcmp(key, "descr")) {
      skip_space(&c);
      if (c.p < c.end && *c.p == '[')
        return imp_error(s->path, IMP_BAD,
                         "a structured dtype (record array) is not "
                         "supported: save a plain numeric array");
      string(&c, descr, sizeof descr);
      seen |= 1;
    } else if (!strcmp(key, "fortran_order")) {
      if (word(&c, "True"))
        *fortran = 1;
      else if (word(&c, "False"))
        *fortran = 0;
      else
        fail(&c, "True or False expected for 'fortran_order'");
      seen |= 2;
    } else if (!strcmp(key, "shape")) {
      shape(&c, a);
      seen |= 4;
    } else {
      return imp_error(s->path, IMP_BAD, "unexpected key '%s' in the header",
                       key);
    }
    if (c.bad || take(&c, ',')) continue;
    if (!take(&c, '}')) fail(&c, "',' or '}' expected");
    break;
  }
  if (!c.bad) {
    skip_space(&c);
    if (c.p != c.end) fail(&c, "text after the dict");
  }
  if (c.bad)
    return imp_error(s->path, IMP_BAD,
                     "bad .npy header: %s at byte %ld of %.200s", c.bad,
                     (long)(c.p - text), text);
  if (seen != 7)
    return imp_error(s->path, IMP_BAD,
                     "bad .npy header: it lacks '%s' (%.200s)",
                     !(seen & 1)   ? "descr"
                     : !(seen & 2) ? "fortran_order"
                                   : "shape",
                     text);
  char why[96];
  if (parse_descr(descr, &a->kind, why, sizeof why))
    return imp_error(s->path, IMP_BAD,
                     "dtype '%s' is not supported: %s (nrdiff-import reads "
                     "integers, float32 and float64)",
                     descr, why);
  snprintf(a->dtype, sizeof a->dtype, "'%s'", descr);
  return IMP_OK;
}

/* Fortran order (the first index fastest) to C order, the first `rows`
 * of dims[0] = n rows only: walk the destination in order, keeping the
 * source offset of its multi-index. */
static void transpose(const unsigned char *src, unsigned char *dst,
                      const imp_array *a, uint64_t n) {
  uint64_t idx[IMP_MAX_DIMS] = {0}, stride[IMP_MAX_DIMS];
  size_t es = (size_t)a->kind.size;
  stride[0] = 1;
  for (int i = 1; i < a->ndim; i++)
    stride[i] = stride[i - 1] * (i == 1 ? n : a->dims[i - 1]);
  uint64_t count = a->nbytes / es, off = 0;
  for (uint64_t k = 0; k < count; k++) {
    memcpy(dst + k * es, src + off * es, es);
    for (int i = a->ndim - 1; i >= 0; i--) { /* the next C-order index */
      off += stride[i];
      if (++idx[i] < a->dims[i]) break;
      off -= stride[i] * idx[i];
      idx[i] = 0;
    }
  }
}

int npy_read(imp_source *s, uint64_t limit, imp_array *a) {
  unsigned char v[4];
  int rc = imp_read(s, v, 4); /* "PY", then the version */
  if (rc) return rc;
  if (memcmp(v, "PY", 2))
    return imp_error(s->path, IMP_BAD, "not a .npy file: bad magic");
  if (v[2] < 1 || v[2] > 3)
    return imp_error(s->path, IMP_BAD,
                     ".npy format version %u.%u is not supported (1.0 to "
                     "3.0 are)",
                     v[2], v[3]);
  unsigned char l[4] = {0};
  rc = imp_read(s, l, v[2] == 1 ? 2 : 4);
  if (rc) return rc;
  size_t hlen =
      l[0] | (size_t)l[1] << 8 | (size_t)l[2] << 16 | (size_t)l[3] << 24;
  if (hlen > MAX_HEADER)
    return imp_error(s->path, IMP_BAD, ".npy header of %zu bytes: too long",
                     hlen);
  char *text = malloc(hlen + 1);
  if (!text) return imp_error(s->path, IMP_IO, "out of memory");
  rc = imp_read(s, text, hlen);
  int fortran = 0;
  if (!rc) {
    text[hlen] = 0;
    if (strlen(text) != hlen) {
      rc = imp_error(s->path, IMP_BAD, "bad .npy header: a NUL byte in it");
    } else {
      /* one-line messages: the header's newline (and any control
       * character) is shown as a space, which it parses as anyway, or '?' */
      for (char *p = text; *p; p++)
        if ((unsigned char)*p < 0x20)
          *p = isspace((unsigned char)*p) ? ' ' : '?';
      while (hlen > 0 && text[hlen - 1] == ' ')
        text[--hlen] = 0;
      rc = parse_header(s, text, hlen, a, &fortran);
    }
  }
  free(text);
  if (rc) return rc;
  if (!fortran || a->ndim < 2) return imp_read_body(s, a, limit);
  /* Fortran order: the rows are not contiguous; read all, keep the first */
  rc = imp_read_body(s, a, 0);
  if (rc) return rc;
  uint64_t n = a->dims[0];
  if (limit > 0 && limit < n) {
    a->dims[0] = limit;
    a->nbytes = (size_t)imp_count(a->dims, a->ndim, a->kind.size);
  }
  unsigned char *c = malloc(a->nbytes);
  if (!c) return imp_error(s->path, IMP_IO, "out of memory (transposing)");
  transpose(a->data, c, a, n);
  free(a->data);
  a->data = c;
  return IMP_OK;
}
