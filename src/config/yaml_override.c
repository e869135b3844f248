/* A value given as text: a -P override "section.key=value", or a built-in
 * default.  The text is one YAML document holding exactly the value: for an
 * override nothing after it (a comment, a second value) and no line break,
 * which a YAML reader would silently drop. */
#include "config/yaml_read.h"
#include "util/error.h"

#include <stdio.h>
#include <string.h>

/* Byte offset in text (one line, possibly followed by blank lines) of a
 * mark, which counts characters; len when the mark is past the text. */
static size_t offset_of_mark(const char *text, size_t len,
                             const yaml_mark_t *mark) {
  size_t k = len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
  for (size_t column = 0; k < len && mark->line == 0; column++) {
    if (column == mark->column) return k;
    if (text[k] == '\n' || text[k] == '\r') break;
    k++;
    while (k < len && ((unsigned char)text[k] & 0xC0) == 0x80)
      k++;
  }
  return len;
}

static bool is_blank(const char *t) {
  return t[strspn(t, " \t\r\n")] == '\0';
}

/* The first line break of t (any that YAML knows: LF, CR, NEL, LS, PS)
 * and its length in bytes, or NULL. */
static const char *line_break(const char *t, size_t *n) {
  for (; *t; t++) {
    if (*t == '\n' || *t == '\r') return *n = 1, t;
    if (strncmp(t, "\xC2\x85", 2) == 0) return *n = 2, t;
    if (strncmp(t, "\xE2\x80\xA8", 3) == 0 ||
        strncmp(t, "\xE2\x80\xA9", 3) == 0)
      return *n = 3, t;
  }
  return NULL;
}

/* The start of t, for quoting in a message: at most 40 bytes (whole
 * characters) of its first line, "..." when cut. */
static const char *excerpt(char buf[64], const char *t) {
  size_t n = strcspn(t, "\r\n");
  while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t'))
    n--;
  bool cut = n > 40;
  if (cut) {
    n = 40;
    while (n > 0 && ((unsigned char)t[n] & 0xC0) == 0x80)
      n--;
  }
  snprintf(buf, 64, "%.*s%s", (int)n, t, cut ? "..." : "");
  return buf;
}

/* An override value is one YAML value on one line: a line break, or text
 * after the value (a second value, a stray bracket, a comment), would be
 * silently dropped by a YAML reader, so it is refused. */
static int check_one_line(const source_ctx *c, const param_spec *s,
                          const char *text) {
  size_t n;
  const char *brk = line_break(text, &n);
  if (!brk) return NRD_OK;
  const char *rest = brk + n;
  rest += strspn(rest, " \t\r\n");
  if (!*rest) return NRD_OK; /* blank lines at the end */
  char b[64];
  return cfg_fail(
      c, NULL, s,
      "a line break in the value, then '%s' (a -P value is one YAML "
      "value on one line; give each key its own -P)",
      excerpt(b, rest));
}

static int check_nothing_after(const source_ctx *c, const param_spec *s,
                               const char *text, size_t len,
                               const yaml_node_t *root) {
  const char *rest = text + offset_of_mark(text, len, &root->end_mark);
  if (is_blank(rest)) return NRD_OK;
  rest += strspn(rest, " \t");
  char b[64];
  if (*rest == '#')
    return cfg_fail(
        c, NULL, s,
        "a comment after the value: '%s' (quote the value if '#' is "
        "part of it)",
        excerpt(b, rest));
  return cfg_fail(c, NULL, s,
                  "text after the value: '%s' (a -P value is exactly one YAML "
                  "value: a number, a word, \"quoted text\" or a list [a, b])",
                  excerpt(b, rest));
}

/* Parse text as one YAML document holding the value of s (overrides and
 * built-in defaults).  An override must be exactly that value: nothing
 * after it, all on one line. */
int cfg_read_value_text(const source_ctx *ctx, const param_spec *s,
                        const char *text, nrd_params *dst) {
  int rc = ctx->override ? check_one_line(ctx, s, text) : NRD_OK;
  if (rc != NRD_OK) return rc;
  size_t len = strlen(text);
  source_ctx tagged = *ctx, *c = &tagged;
  cfg_find_first_tag(c, text, len);
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser))
    return cfg_out_of_memory(c->err, c->errlen);
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  yaml_document_t doc;
  if (!yaml_parser_load(&parser, &doc)) {
    rc = cfg_syntax_error(c, &parser, text, len);
  } else {
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root)
      rc = cfg_no_value(c, NULL, s);
    else if (c->override)
      rc = check_nothing_after(c, s, text, len, root);
    if (root && rc == NRD_OK) rc = cfg_read_value(c, s, &doc, root, dst);
    if (rc == NRD_OK) rc = cfg_refuse_any_tag(c);
    yaml_document_delete(&doc);
  }
  yaml_parser_delete(&parser);
  return rc;
}

int cfg_apply_override(nrd_params *q, const char *text, value_origin *origin,
                       char *err, size_t errlen) {
  source_ctx c = {.override = text, .err = err, .errlen = errlen};
  const char *eq = strchr(text, '=');
  if (!eq)
    return cfg_fail(
        &c, NULL, NULL,
        "expected SECTION.KEY=VALUE (e.g. -P grid.dimension=[8,16])");
  char name[256];
  snprintf(name, sizeof name, "%.*s", (int)(eq - text), text);
  int i = params_schema_find(name);
  if (i < 0) {
    char section[256], msg[1024];
    const char *dot = strchr(name, '.');
    snprintf(section, sizeof section, "%.*s", dot ? (int)(dot - name) : 0,
             name);
    cfg_describe_unknown_key(section, dot ? dot + 1 : name, msg, sizeof msg);
    return cfg_fail(&c, NULL, NULL, "%s", msg);
  }
  int rc = cfg_read_value_text(&c, &cfg_schema[i], eq + 1, q);
  if (rc == NRD_OK) cfg_record_origin(q, origin, i, PSRC_OVERRIDE, NULL, text);
  return rc;
}
