/* YAML written from the schema: --print-params (every key at its default,
 * documented), the resolved parameters of a run (each value with where it
 * came from) and params_value_yaml; every string is written so that libyaml
 * reads it back byte for byte. */
#include "config/params_impl.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* As shortest_double, but always reads as a floating-point number in YAML
 * ("1.0", not "1"), so a printed file shows which keys take decimals. */
static const char *yaml_double(char buf[32], double x) {
  cfg_shortest_double(buf, x);
  if (!strpbrk(buf, ".eEni")) strcat(buf, ".0");
  return buf;
}

/* A YAML double-quoted scalar that libyaml reads back byte for byte: every
 * character libyaml would refuse or fold (controls, line separators, BOM) is
 * escaped.  Bytes that are not UTF-8 cannot come from a YAML file; they are
 * written as \xNN, which reads back as a different character. */
static void sb_yaml_string(strbuf *b, const char *text) {
  cfg_sb_puts(b, "\"");
  const unsigned char *s = (const unsigned char *)(text ? text : "");
  while (*s) {
    unsigned long cp;
    int n = cfg_utf8_decode(s, &cp);
    if (n == 0) {
      cfg_sb_printf(b, "\\x%02X", *s++);
      continue;
    }
    if (cp == '"' || cp == '\\')
      cfg_sb_printf(b, "\\%c", (char)cp);
    else if (cp == '\n')
      cfg_sb_puts(b, "\\n");
    else if (cp == '\t')
      cfg_sb_puts(b, "\\t");
    else if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
      cfg_sb_printf(b, "\\x%02lX", cp);
    else if (cp == 0x2028 || cp == 0x2029 || cp == 0xFEFF || cp == 0xFFFE ||
             cp == 0xFFFF)
      cfg_sb_printf(b, "\\u%04lX", cp);
    else
      cfg_sb_append(b, (const char *)s, (size_t)n);
    s += n;
  }
  cfg_sb_puts(b, "\"");
}

static void sb_yaml_value(strbuf *b, const nrd_params *p, const param_spec *s) {
  char num[32];
  switch (s->type) {
  case TYPE_INT:
    cfg_sb_printf(b, "%ld", *LONG_AT(p, s));
    break;
  case TYPE_DOUBLE:
    cfg_sb_puts(b, yaml_double(num, *DOUBLE_AT(p, s)));
    break;
  case TYPE_ENUM: {
    int k = *INT_AT(p, s);
    cfg_sb_puts(b, k >= 0 && k < cfg_count_choices(s->choices) ? s->choices[k]
                                                               : "?");
    break;
  }
  case TYPE_STRING:
    sb_yaml_string(b, *STRING_AT(p, s));
    break;
  case TYPE_INT_LIST: {
    const nrd_ilist *l = ILIST_AT(p, s);
    cfg_sb_puts(b, "[");
    for (int k = 0; k < l->n; k++)
      cfg_sb_printf(b, "%s%ld", k ? ", " : "", l->v[k]);
    cfg_sb_puts(b, "]");
    break;
  }
  case TYPE_DOUBLE_LIST: {
    const nrd_dlist *l = DLIST_AT(p, s);
    cfg_sb_puts(b, "[");
    for (int k = 0; k < l->n; k++)
      cfg_sb_printf(b, "%s%s", k ? ", " : "", yaml_double(num, l->v[k]));
    cfg_sb_puts(b, "]");
    break;
  }
  case TYPE_STRING_LIST: {
    const nrd_slist *l = SLIST_AT(p, s);
    cfg_sb_puts(b, "[");
    for (int k = 0; k < l->n; k++) {
      cfg_sb_puts(b, k ? ", " : "");
      if (s->choices && cfg_find_choice(s->choices, l->v[k]) >= 0)
        cfg_sb_puts(b, l->v[k]);
      else
        sb_yaml_string(b, l->v[k]);
    }
    cfg_sb_puts(b, "]");
    break;
  }
  }
}

/* "(integer, 1 .. 256)", "(one of: a, b)", ... built from the schema so the
 * documentation cannot drift from the checks. */
static void sb_allowed(strbuf *b, const param_spec *s) {
  char lo[32], hi[32];
  bool list = s->type == TYPE_INT_LIST || s->type == TYPE_DOUBLE_LIST ||
              s->type == TYPE_STRING_LIST;
  bool integer = s->type == TYPE_INT || s->type == TYPE_INT_LIST;
  cfg_sb_puts(b, "(");
  if (list) cfg_sb_puts(b, "list; each ");
  if (s->choices) {
    cfg_sb_puts(b, "one of ");
    for (int k = 0; s->choices[k]; k++)
      cfg_sb_printf(b, "%s%s", k ? ", " : "", s->choices[k]);
  } else if (s->type == TYPE_STRING || s->type == TYPE_STRING_LIST) {
    cfg_sb_puts(b, s->min_length ? "non-empty text" : "text, may be empty");
  } else {
    cfg_sb_puts(b, integer ? "integer" : "number");
    cfg_shortest_double(lo, s->min);
    cfg_shortest_double(hi, s->max);
    if (s->has_min && s->has_max && !s->min_exclusive)
      cfg_sb_printf(b, ", %s .. %s", lo, hi);
    else if (s->has_min && s->has_max)
      cfg_sb_printf(b, ", > %s and <= %s", lo, hi);
    else if (s->has_min)
      cfg_sb_printf(b, ", %s %s", s->min_exclusive ? ">" : ">=", lo);
    else if (s->has_max)
      cfg_sb_printf(b, ", <= %s", hi);
  }
  if (list && s->min_length)
    cfg_sb_printf(b, "; at least %d element%s", s->min_length,
                  s->min_length == 1 ? "" : "s");
  if (list && s->distinct) cfg_sb_puts(b, "; no repeats");
  if (s->restartable) cfg_sb_puts(b, "; may change on restart");
  cfg_sb_puts(b, ")");
}

/* Comment lines, wrapped at 79 columns. */
static void sb_comment(strbuf *b, const char *indent, const char *text) {
  enum { WIDTH = 79 };
  size_t prefix = strlen(indent) + 2;
  while (*text) {
    size_t room = WIDTH - prefix, n = strlen(text);
    if (n > room) {
      n = room;
      while (n > 0 && text[n] != ' ')
        n--;
      if (n == 0) /* one long word */
        for (n = room; text[n] && text[n] != ' '; n++)
          continue;
    }
    cfg_sb_printf(b, "%s# %.*s\n", indent, (int)n, text);
    text += n;
    while (*text == ' ')
      text++;
  }
}

/* Comments must stay on one line whatever the file name holds. */
static void sb_comment_safe(strbuf *b, const char *text) {
  for (const char *c = text; *c; c++)
    cfg_sb_append(b, (unsigned char)*c < 0x20 ? "?" : c, 1);
}

static void write_yaml(const nrd_params *p, FILE *out, bool resolved) {
  strbuf b = {0};
  if (resolved) {
    cfg_sb_puts(&b, "# nrdiff resolved parameters: every key with the value "
                    "this run used.\n# parameter file: ");
    sb_comment_safe(&b, p->source_file ? p->source_file : "(none)");
    cfg_sb_puts(&b,
                "\n# After each value, where it came from: default, "
                "file FILE:LINE,\n# or override (-P on the command line).\n");
  } else {
    cfg_sb_puts(
        &b, "# nrdiff parameter file with every key at its default value,\n"
            "# written by 'nrdiff --print-params'.  Run it with 'nrdiff FILE'\n"
            "# (or check it with 'nrdiff --dry-run FILE').\n"
            "#\n"
            "# Values are YAML: lists are written [a, b], text \"quoted\".  "
            "A key left\n"
            "# out keeps its default; any key can also be set on the "
            "command line\n"
            "# with -P SECTION.KEY=VALUE.  Above each key: what it means, "
            "[unit]\n"
            "# and (allowed values).\n");
  }
  size_t section_len = 0;
  const char *section = NULL;
  for (int i = 0; i < N_PARAMS; i++) {
    const param_spec *s = &cfg_schema[i];
    size_t n = cfg_section_length(s->name);
    if (!section || n != section_len || strncmp(section, s->name, n) != 0) {
      section = s->name;
      section_len = n;
      cfg_sb_printf(&b, "\n%.*s:\n", (int)n, s->name);
    }
    /* meaning [unit] (allowed values): one line if it fits, else the
     * allowed values on a line of their own */
    strbuf doc = {0}, allowed = {0};
    cfg_sb_puts(&doc, s->doc);
    if (s->unit) cfg_sb_printf(&doc, " [%s]", s->unit);
    sb_allowed(&allowed, s);
    if (doc.failed || allowed.failed) {
      b.failed = true;
    } else if (strlen("  # ") + doc.len + 1 + allowed.len <= 79) {
      cfg_sb_printf(&b, "  # %s %s\n", doc.data, allowed.data);
    } else {
      sb_comment(&b, "  ", doc.data);
      sb_comment(&b, "  ", allowed.data);
    }
    free(doc.data);
    free(allowed.data);
    cfg_sb_printf(&b, "  %s: ", cfg_key_part(s->name));
    sb_yaml_value(&b, p, s);
    if (resolved) {
      nrd_param_source src = p->sources ? p->sources[i] : PSRC_DEFAULT;
      if (src == PSRC_FILE) {
        cfg_sb_puts(&b, "  # file ");
        sb_comment_safe(&b, p->source_file ? p->source_file : "?");
        cfg_sb_printf(&b, ":%d", p->source_lines ? p->source_lines[i] : 0);
      } else {
        cfg_sb_puts(&b, src == PSRC_OVERRIDE ? "  # override" : "  # default");
      }
    }
    cfg_sb_puts(&b, "\n");
  }
  if (!b.failed && b.data) fwrite(b.data, 1, b.len, out);
  free(b.data);
}

void params_print_defaults(FILE *out) {
  nrd_params p;
  if (params_init_defaults(&p) != NRD_OK) return;
  write_yaml(&p, out, false);
  params_free(&p);
}

void params_write_resolved(const nrd_params *p, FILE *out) {
  write_yaml(p, out, true);
}

char *params_value_yaml(const nrd_params *p, int i) {
  if (i < 0 || i >= N_PARAMS) return NULL;
  strbuf b = {0};
  sb_yaml_value(&b, p, &cfg_schema[i]);
  if (b.failed) {
    free(b.data);
    return NULL;
  }
  return b.data ? b.data : calloc(1, 1);
}
