/* One YAML node read as the value of a key: integers, numbers, words of
 * an enum, text and lists, with their bounds; quoted numbers, leading zeros,
 * NaN and infinity, and values that do not fit are refused with the
 * spelling to use. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* strdup */
#endif
#include "config/yaml_read.h"
#include "util/error.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *cfg_scalar_text(const yaml_node_t *node) {
  return (const char *)node->data.scalar.value;
}

bool cfg_is_null(const yaml_node_t *node) {
  if (node->type != YAML_SCALAR_NODE ||
      node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    return false;
  const char *t = cfg_scalar_text(node);
  return !*t || !strcmp(t, "~") || !strcmp(t, "null") || !strcmp(t, "Null") ||
         !strcmp(t, "NULL");
}

const char *cfg_node_kind(const yaml_node_t *node) {
  switch (node->type) {
  case YAML_SEQUENCE_NODE:
    return "a list";
  case YAML_MAPPING_NODE:
    return "a mapping";
  default:
    return "a single value";
  }
}

static bool is_quoted(const yaml_node_t *node) {
  return node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
}

static bool is_integer_literal(const char *t) {
  if (*t == '+' || *t == '-') t++;
  if (!*t) return false;
  for (; *t; t++)
    if (*t < '0' || *t > '9') return false;
  return true;
}

/* NaN and infinity in any spelling strtod or YAML knows ("nan", ".inf",
 * "-Infinity", ...), so they get their own message. */
static bool names_non_finite(const char *t) {
  if (*t == '+' || *t == '-') t++;
  if (*t == '.') t++;
  char word[16];
  size_t n = 0;
  for (; t[n] && n + 1 < sizeof word; n++)
    word[n] = (char)tolower((unsigned char)t[n]);
  if (t[n]) return false;
  word[n] = '\0';
  return !strcmp(word, "nan") || !strcmp(word, "inf") ||
         !strcmp(word, "infinity");
}

static bool is_decimal_number(const char *t, double *x) {
  bool digit = false;
  for (const char *c = t; *c; c++) {
    if (*c >= '0' && *c <= '9')
      digit = true;
    else if (!strchr("+-.eE", *c))
      return false;
  }
  char *end;
  errno = 0;
  *x = strtod(t, &end);
  return digit && end != t && *end == '\0';
}

/* "010", "-007", "01.5": YAML 1.1 reads a leading zero as octal (010 is 8),
 * YAML 1.2 does not (10), other tools differ again, so such a number is
 * refused with the spelling to use.  "0", "0.5", "-0.25", "1e05" are fine. */
static int refuse_leading_zero(const source_ctx *c, const yaml_mark_t *mark,
                               const param_spec *s, const char *what,
                               const char *t) {
  const char *digits = t + (*t == '+' || *t == '-');
  if (!(digits[0] == '0' && digits[1] >= '0' && digits[1] <= '9'))
    return NRD_OK;
  while (digits[0] == '0' && digits[1] >= '0' && digits[1] <= '9')
    digits++;
  return cfg_fail(
      c, mark, s,
      "%smust not have leading zeros, which YAML readers disagree on "
      "(got %s; write %s%s)",
      what, t, *t == '-' ? "-" : "", digits);
}

/* "%s" of a bound: integers without a decimal point. */
static const char *bound_text(char buf[32], double x) {
  return cfg_shortest_double(buf, x);
}

/* Check x (text as written) against the bounds of s; what is "" or
 * "element 3 " so the message reads "key 'k': element 3 must be ...". */
static int check_bounds(const source_ctx *c, const yaml_mark_t *mark,
                        const param_spec *s, const char *what, double x,
                        const char *text) {
  char b[32];
  if (s->has_min && (s->min_exclusive ? !(x > s->min) : !(x >= s->min)))
    return cfg_fail(c, mark, s, "%smust be %s %s (got %s)", what,
                    s->min_exclusive ? ">" : ">=", bound_text(b, s->min), text);
  if (s->has_max && !(x <= s->max))
    return cfg_fail(c, mark, s, "%smust be <= %s (got %s)", what,
                    bound_text(b, s->max), text);
  return NRD_OK;
}

static int read_long(const source_ctx *c, const param_spec *s,
                     const yaml_node_t *node, const char *what, long *out) {
  const char *t = cfg_scalar_text(node);
  const yaml_mark_t *mark = &node->start_mark;
  if (is_quoted(node))
    return cfg_fail(
        c, mark, s,
        "%smust be an integer, not the quoted text '%s' (remove the "
        "quotes)",
        what, t);
  if (!is_integer_literal(t)) {
    double x;
    if (is_decimal_number(t, &x) && isfinite(x) && x == floor(x) &&
        fabs(x) < 1e18)
      return cfg_fail(c, mark, s,
                      "%smust be an integer literal (got %s; write %.0f)", what,
                      t, x);
    return cfg_fail(c, mark, s, "%smust be an integer (got '%s')", what, t);
  }
  int rc = refuse_leading_zero(c, mark, s, what, t);
  if (rc != NRD_OK) return rc;
  errno = 0;
  long long v = strtoll(t, NULL, 10);
  if (errno == ERANGE) {
    char b[32];
    if (*t == '-' && s->has_min)
      return cfg_fail(c, mark, s, "%smust be >= %s (got %s)", what,
                      bound_text(b, s->min), t);
    if (s->has_max)
      return cfg_fail(c, mark, s, "%smust be <= %s (got %s)", what,
                      bound_text(b, s->max), t);
    return cfg_fail(c, mark, s, "%sis too large for an integer (got %s)", what,
                    t);
  }
  rc = check_bounds(c, mark, s, what, (double)v, t);
  if (rc == NRD_OK) *out = (long)v;
  return rc;
}

static int read_double(const source_ctx *c, const param_spec *s,
                       const yaml_node_t *node, const char *what, double *out) {
  const char *t = cfg_scalar_text(node);
  const yaml_mark_t *mark = &node->start_mark;
  if (is_quoted(node))
    return cfg_fail(c, mark, s,
                    "%smust be a number, not the quoted text '%s' (remove the "
                    "quotes)",
                    what, t);
  if (names_non_finite(t))
    return cfg_fail(c, mark, s, "%smust be a finite number (got '%s')", what,
                    t);
  double x;
  if (!is_decimal_number(t, &x))
    return cfg_fail(c, mark, s, "%smust be a number (got '%s')", what, t);
  int range = errno == ERANGE; /* strtod's, before anything else sets it */
  int rc = refuse_leading_zero(c, mark, s, what, t);
  if (rc != NRD_OK) return rc;
  if (!isfinite(x))
    return cfg_fail(c, mark, s, "%smust be a finite number (got %s)", what, t);
  /* a non-zero number below the doubles' range would be read as 0
   * (strtod: ERANGE; subnormals such as 5e-324 are kept) */
  if (range && x == 0)
    return cfg_fail(c, mark, s,
                    "%sis too small for a double (got %s, which would be read "
                    "as 0; the smallest is 4.9e-324)",
                    what, t);
  /* -0.0 (or -0, -0e5) is stored as 0, so that nothing downstream prints
   * or records "-0" */
  if (x == 0) x = 0.0;
  rc = check_bounds(c, mark, s, what, x, t);
  if (rc == NRD_OK) *out = x;
  return rc;
}

static int read_choice(const source_ctx *c, const param_spec *s,
                       const yaml_node_t *node, const char *what, int *out) {
  const char *t = cfg_scalar_text(node);
  int k = cfg_find_choice(s->choices, t);
  if (k >= 0) {
    *out = k;
    return NRD_OK;
  }
  char list[256] = "";
  for (int i = 0; s->choices[i]; i++) {
    size_t used = strlen(list);
    snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
             s->choices[i]);
  }
  int near = cfg_nearest_choice(s->choices, t);
  if (near >= 0)
    return cfg_fail(c, &node->start_mark, s,
                    "%smust be one of %s (got '%s'; did you mean '%s'?)", what,
                    list, t, s->choices[near]);
  return cfg_fail(c, &node->start_mark, s, "%smust be one of %s (got '%s')",
                  what, list, t);
}

/* A copy of the text of a string value; YAML escapes can put a NUL inside,
 * which a C string cannot hold. */
static int read_string(const source_ctx *c, const param_spec *s,
                       const yaml_node_t *node, const char *what, char **out) {
  const char *t = cfg_scalar_text(node);
  if (strlen(t) != node->data.scalar.length)
    return cfg_fail(c, &node->start_mark, s,
                    "%smust not contain a NUL character", what);
  if (s->type == TYPE_STRING && (int)strlen(t) < s->min_length)
    return cfg_fail(c, &node->start_mark, s, "%smust not be empty", what);
  *out = strdup(t);
  return *out ? NRD_OK : cfg_out_of_memory(c->err, c->errlen);
}

int cfg_no_value(const source_ctx *c, const yaml_mark_t *mark,
                 const param_spec *s) {
  return cfg_fail(
      c, mark, s,
      "has no value (give one, or remove the key to use the default "
      "%s)",
      s->default_yaml);
}

static int read_scalar_value(const source_ctx *c, const param_spec *s,
                             const yaml_node_t *node, nrd_params *dst) {
  if (node->type != YAML_SCALAR_NODE)
    return cfg_fail(c, &node->start_mark, s, "must be a single value, not %s",
                    cfg_node_kind(node));
  if (cfg_is_null(node)) return cfg_no_value(c, &node->start_mark, s);
  switch (s->type) {
  case TYPE_INT:
    return read_long(c, s, node, "", LONG_AT(dst, s));
  case TYPE_DOUBLE:
    return read_double(c, s, node, "", DOUBLE_AT(dst, s));
  case TYPE_ENUM:
    return read_choice(c, s, node, "", INT_AT(dst, s));
  default: {
    char *text = NULL;
    int rc = read_string(c, s, node, "", &text);
    if (rc != NRD_OK) return rc;
    cfg_free_value(dst, s);
    *STRING_AT(dst, s) = text;
    return NRD_OK;
  }
  }
}

/* Whether a lone scalar would be a valid element, to decide whether
 * "write [x]" is good advice. */
static bool element_is_valid(const param_spec *s, const yaml_node_t *node) {
  char scratch[256];
  source_ctx quiet = {.path = "", .err = scratch, .errlen = sizeof scratch};
  long l;
  double x;
  int k;
  switch (s->type) {
  case TYPE_INT_LIST:
    return read_long(&quiet, s, node, "", &l) == NRD_OK;
  case TYPE_DOUBLE_LIST:
    return read_double(&quiet, s, node, "", &x) == NRD_OK;
  default:
    return !s->choices || read_choice(&quiet, s, node, "", &k) == NRD_OK;
  }
}

static int read_list_value(const source_ctx *c, const param_spec *s,
                           yaml_document_t *doc, const yaml_node_t *node,
                           nrd_params *dst) {
  const yaml_mark_t *mark = &node->start_mark;
  if (node->type == YAML_SCALAR_NODE) {
    if (cfg_is_null(node)) return cfg_no_value(c, mark, s);
    if (element_is_valid(s, node))
      return cfg_fail(c, mark, s, "must be a list (write [%s])",
                      cfg_scalar_text(node));
    return cfg_fail(c, mark, s, "must be a list like %s (got '%s')",
                    s->min_length ? s->default_yaml : "[1, 2]",
                    cfg_scalar_text(node));
  }
  if (node->type != YAML_SEQUENCE_NODE)
    return cfg_fail(c, mark, s, "must be a list like [1, 2], not %s",
                    cfg_node_kind(node));
  yaml_node_item_t *items = node->data.sequence.items.start;
  int n = (int)(node->data.sequence.items.top - items);
  if (n < s->min_length)
    return cfg_fail(c, mark, s, "must have at least %d element%s (got %d)",
                    s->min_length, s->min_length == 1 ? "" : "s", n);
  size_t elem = s->type == TYPE_INT_LIST      ? sizeof(long)
                : s->type == TYPE_DOUBLE_LIST ? sizeof(double)
                                              : sizeof(char *);
  void *v = n ? calloc((size_t)n, elem) : NULL;
  if (n && !v) return cfg_out_of_memory(c->err, c->errlen);
  int rc = NRD_OK, filled = 0;
  for (int k = 0; k < n && rc == NRD_OK; k++) {
    yaml_node_t *item = yaml_document_get_node(doc, items[k]);
    char what[32];
    snprintf(what, sizeof what, "element %d ", k + 1);
    rc = cfg_refuse_tag(c, item, s, what);
    if (rc != NRD_OK) break;
    if (item->type != YAML_SCALAR_NODE) {
      rc = cfg_fail(c, &item->start_mark, s, "%smust be a single value, not %s",
                    what, cfg_node_kind(item));
    } else if (cfg_is_null(item)) {
      rc = cfg_fail(c, &item->start_mark, s, "%shas no value", what);
    } else if (s->type == TYPE_INT_LIST) {
      rc = read_long(c, s, item, what, (long *)v + k);
    } else if (s->type == TYPE_DOUBLE_LIST) {
      rc = read_double(c, s, item, what, (double *)v + k);
    } else {
      char **words = v;
      int choice;
      if (s->choices) rc = read_choice(c, s, item, what, &choice);
      if (rc == NRD_OK) rc = read_string(c, s, item, what, &words[k]);
      if (rc == NRD_OK) filled = k + 1;
      for (int j = 0; rc == NRD_OK && s->distinct && j < k; j++)
        if (strcmp(words[j], words[k]) == 0)
          rc = cfg_fail(c, &item->start_mark, s,
                        "%s'%s' repeats element %d (each may appear once)",
                        what, words[k], j + 1);
    }
  }
  if (rc != NRD_OK) {
    if (s->type == TYPE_STRING_LIST)
      for (int k = 0; k < filled; k++)
        free(((char **)v)[k]);
    free(v);
    return rc;
  }
  cfg_free_value(dst, s);
  if (s->type == TYPE_INT_LIST)
    *ILIST_AT(dst, s) = (nrd_ilist){n, v};
  else if (s->type == TYPE_DOUBLE_LIST)
    *DLIST_AT(dst, s) = (nrd_dlist){n, v};
  else
    *SLIST_AT(dst, s) = (nrd_slist){n, v};
  return NRD_OK;
}

int cfg_read_value(const source_ctx *c, const param_spec *s,
                   yaml_document_t *doc, const yaml_node_t *node,
                   nrd_params *dst) {
  int rc = cfg_refuse_tag(c, node, s, "");
  if (rc != NRD_OK) return rc;
  switch (s->type) {
  case TYPE_INT_LIST:
  case TYPE_DOUBLE_LIST:
  case TYPE_STRING_LIST:
    return read_list_value(c, s, doc, node, dst);
  default:
    return read_scalar_value(c, s, node, dst);
  }
}
