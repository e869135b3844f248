/* What the YAML readers of the config layer share (yaml_read.c,
 * yaml_value.c, yaml_override.c and load.c): the source being read, its
 * failures, its tags, and reading a node or a text as the value of a key.
 * YAML is read with libyaml's document API. */
#ifndef NRDIFF_CONFIG_YAML_READ_H
#define NRDIFF_CONFIG_YAML_READ_H

#include "config/params_impl.h"

#include <yaml.h>

/* Where values come from while they are being read: a file (marks are
 * positions in it), an override (marks are meaningless to the user: quote
 * the override instead), or a built-in default. */
typedef struct {
  const char *path;
  const char *override;
  char *err;
  size_t errlen;
  /* The first node with a YAML tag in the text (cfg_find_first_tag),
   * refused when it is read, with the key it belongs to. */
  bool tagged;
  yaml_node_type_t tag_node;
  yaml_mark_t tag_mark;
  char tag[80];
} source_ctx;

/* ------------------------------------------------ yaml_read.c: sources */

/* One error about the value at mark (NULL: no position) of key s (NULL: not
 * about a key).  Always returns NRD_ERR_INPUT. */
int cfg_fail(const source_ctx *c, const yaml_mark_t *mark, const param_spec *s,
             const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Report a libyaml failure of parser on text. */
int cfg_syntax_error(const source_ctx *c, const yaml_parser_t *parser,
                     const char *text, size_t len);
/* Tags are refused: find the first one in text, refuse node if it is that
 * one ("what" names it: "element 2 "), refuse it anyway after reading. */
void cfg_find_first_tag(source_ctx *c, const char *text, size_t len);
int cfg_refuse_tag(const source_ctx *c, const yaml_node_t *node,
                   const param_spec *s, const char *what);
int cfg_refuse_any_tag(const source_ctx *c);
/* Entry i of q was set from source, at mark (NULL: none) or by override. */
void cfg_record_origin(nrd_params *q, value_origin *origin, int i,
                       nrd_param_source source, const yaml_mark_t *mark,
                       const char *override);
/* Read the parameters of a text (len bytes, named name in messages) or of
 * the file at path into q. */
int cfg_apply_text(nrd_params *q, const char *name, const char *text,
                   size_t len, value_origin *origin, char *err, size_t errlen);
int cfg_apply_file(nrd_params *q, const char *path, value_origin *origin,
                   char *err, size_t errlen);

/* ------------------------------------------------ yaml_value.c: values */

const char *cfg_scalar_text(const yaml_node_t *node);
/* "key:" with nothing after it, or an explicit YAML null. */
bool cfg_is_null(const yaml_node_t *node);
/* "a list", "a mapping" or "a single value", for messages. */
const char *cfg_node_kind(const yaml_node_t *node);
/* The error of a key given no value. */
int cfg_no_value(const source_ctx *c, const yaml_mark_t *mark,
                 const param_spec *s);
/* Store the YAML node as the value of s in dst (dst keeps its old value on
 * failure). */
int cfg_read_value(const source_ctx *c, const param_spec *s,
                   yaml_document_t *doc, const yaml_node_t *node,
                   nrd_params *dst);

/* ------------------------------------------- yaml_override.c: -P values */

/* Parse text as one YAML document holding the value of s (overrides and
 * built-in defaults). */
int cfg_read_value_text(const source_ctx *ctx, const param_spec *s,
                        const char *text, nrd_params *dst);
/* Apply one "section.key=value" override to q. */
int cfg_apply_override(nrd_params *q, const char *text, value_origin *origin,
                       char *err, size_t errlen);

#endif
