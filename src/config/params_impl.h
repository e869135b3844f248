/* What the modules of the config layer share; callers use params.h only.
 *
 * The schema table (schema.c) is the single source of truth: YAML reading,
 * type and range checks, --print-params, the resolved dump and the MPI pack
 * format all walk it.  One module per concern:
 *   schema.c        the table, field access, choices, free and compare
 *   load.c          defaults, then the file, then -P overrides, then rules
 *   yaml_read.c     parameter files: documents, sections, syntax, tags
 *   yaml_value.c    one YAML node to the typed value of a key
 *   yaml_override.c one whole YAML value given as text (-P, defaults)
 *   rules.c         combinations of keys (check_forward, check_time, ...)
 *   suggest.c       the nearest key, section or word for a misspelt one
 *   report.c        one-line error messages ("WHERE: key 'K': ...")
 *   text.c          UTF-8, printable copies, shortest exact numbers
 *   strbuf.c        a growing string
 *   yaml_write.c    --print-params, the resolved file, params_value_yaml
 *   pack.c          params_pack / params_unpack for the MPI broadcast
 * The layer reads the parameter file and nothing else: it never prints
 * (except into a FILE it is handed), never exits and never creates a file;
 * errors come back as one message in the caller's buffer.
 *
 * Numbers are parsed and printed with strtod/snprintf, so the program must
 * run in the "C" locale (it never calls setlocale). */
#ifndef NRDIFF_CONFIG_PARAMS_IMPL_H
#define NRDIFF_CONFIG_PARAMS_IMPL_H

#include "config/params.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* ------------------------------------------------------------ the schema */

typedef enum {
  TYPE_INT,
  TYPE_DOUBLE,
  TYPE_STRING,
  TYPE_ENUM,
  TYPE_INT_LIST,
  TYPE_DOUBLE_LIST,
  TYPE_STRING_LIST,
} value_type;

typedef struct {
  const char *name; /* "section.key": the public name */
  value_type type;
  const char *default_yaml;   /* default value written as YAML */
  bool has_min, has_max;      /* bounds of a number, or of each list element */
  bool min_exclusive;         /* "> min" rather than ">= min" */
  double min, max;            /* exact for every integer bound used here */
  int min_length;             /* lists: elements; strings: characters */
  const char *const *choices; /* enum / list words, NULL-terminated, in the
                                 order of the matching C enum */
  bool distinct;              /* list elements may not repeat */
  const char *unit;           /* NULL when dimensionless */
  const char *doc;            /* what the value means, one sentence */
  bool restartable;           /* may change when a run is restarted */
  size_t offset;              /* of the value inside nrd_params */
} param_spec;

/* Entries of the table: a constant, so that per-entry arrays can live on
 * the stack; schema.c does not compile if the table has another length. */
enum { N_PARAMS = 49 };
extern const param_spec cfg_schema[];

/* Typed views of entry s inside p. */
static inline void *field_of(const nrd_params *p, const param_spec *s) {
  return (char *)p + s->offset;
}
#define LONG_AT(p, s) ((long *)field_of(p, s))
#define DOUBLE_AT(p, s) ((double *)field_of(p, s))
#define INT_AT(p, s) ((int *)field_of(p, s))
#define STRING_AT(p, s) ((char **)field_of(p, s))
#define ILIST_AT(p, s) ((nrd_ilist *)field_of(p, s))
#define DLIST_AT(p, s) ((nrd_dlist *)field_of(p, s))
#define SLIST_AT(p, s) ((nrd_slist *)field_of(p, s))

/* Words of an enum or word list: how many, and the index of word or -1. */
int cfg_count_choices(const char *const *choices);
int cfg_find_choice(const char *const *choices, const char *word);
/* Section of a dotted name: its length before the dot; and the key after
 * it.  Whether some entry is in section. */
size_t cfg_section_length(const char *name);
const char *cfg_key_part(const char *name);
bool cfg_is_section(const char *section);
/* Free the value of s in p (strings, lists) and leave it empty. */
void cfg_free_value(nrd_params *p, const param_spec *s);

/* ------------------------------------------------------------- loading */

/* Where each value was set while loading, for errors found only once all
 * values are known (combinations). */
typedef struct {
  size_t line, column;  /* 1-based, values from the file */
  const char *override; /* the override text, values from -P */
} value_origin;

typedef struct {
  const char *path;
  const nrd_params *p;
  const value_origin *origin;
  char *err;
  size_t errlen;
} combination_ctx;

/* The rules that involve more than one key (rules.c): the first broken
 * one, blamed on the key set last, as NRD_ERR_INPUT with its message. */
int cfg_check_combinations(const combination_ctx *c);

/* A message for an unknown "section.key" (section may be "") or an unknown
 * section, with the nearest name if one is close (suggest.c). */
void cfg_describe_unknown_key(const char *section, const char *key, char *out,
                              size_t outlen);
void cfg_describe_unknown_section(const char *section, char *out,
                                  size_t outlen);
/* The index of the choice closest to word, or -1 if none is close. */
int cfg_nearest_choice(const char *const *choices, const char *word);

/* ------------------------------------------------------------ messages */

/* Write "WHERE: key 'KEY': " (either may be NULL) and the formatted text
 * into err as one printable line (report.c). */
void cfg_vreport(char *err, size_t errlen, const char *where, const char *key,
                 const char *fmt, va_list ap);
/* "-P KEY=VALUE" for messages, a very long override cut. */
void cfg_override_where(char *where, size_t n, const char *override);
/* "out of memory for the parameters" into err; returns NRD_ERR_NOMEM. */
int cfg_out_of_memory(char *err, size_t errlen);

/* Text (text.c): decode one UTF-8 sequence (its length, 0 if invalid); a
 * one-line printable copy; the shortest text that reads back as x. */
int cfg_utf8_decode(const unsigned char *s, unsigned long *cp);
void cfg_copy_printable(char *out, size_t outlen, const char *text);
const char *cfg_shortest_double(char buf[32], double x);

/* ------------------------------------------------------------- writing */

/* A growing string (strbuf.c); start from {0}, free data. */
typedef struct {
  char *data;
  size_t len, cap;
  bool failed; /* out of memory: every later append is dropped */
} strbuf;

void cfg_sb_append(strbuf *b, const char *s, size_t n);
void cfg_sb_puts(strbuf *b, const char *s);
void cfg_sb_printf(strbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
