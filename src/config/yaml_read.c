/* Reading parameter files (and texts such as a run's /parameters/resolved)
 * with libyaml: one document, a mapping of sections, each a mapping of
 * keys; no key or section twice, no second document, no YAML tag.  Errors
 * point at FILE:LINE:COL (or at the -P override). */
#include "config/yaml_read.h"
#include "util/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cfg_fail(const source_ctx *c, const yaml_mark_t *mark, const param_spec *s,
             const char *fmt, ...) {
  char where[1200];
  if (c->override)
    cfg_override_where(where, sizeof where, c->override);
  else if (mark)
    snprintf(where, sizeof where, "%s:%zu:%zu", c->path, mark->line + 1,
             mark->column + 1);
  else
    snprintf(where, sizeof where, "%s", c->path);
  va_list ap;
  va_start(ap, fmt);
  cfg_vreport(c->err, c->errlen, where, s ? s->name : NULL, fmt, ap);
  va_end(ap);
  return NRD_ERR_INPUT;
}

/* YAML tags ("!!str 50", "!!binary ...", "!x", "!<...>") would make a
 * value mean something else than it reads, or be silently ignored, so none
 * is accepted.  libyaml's documents do not say whether a tag was written
 * (an untagged scalar gets !!str too), its events do: one pass over the
 * events of the first document finds the first tag.  A syntax error ends
 * the pass quietly; loading the document then reports it. */
void cfg_find_first_tag(source_ctx *c, const char *text, size_t len) {
  c->tagged = false;
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser)) return;
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  for (bool done = false; !done;) {
    yaml_event_t e;
    if (!yaml_parser_parse(&parser, &e)) break;
    const char *tag = NULL;
    yaml_node_type_t type = YAML_NO_NODE;
    if (e.type == YAML_SCALAR_EVENT) {
      tag = (const char *)e.data.scalar.tag;
      type = YAML_SCALAR_NODE;
    } else if (e.type == YAML_SEQUENCE_START_EVENT) {
      tag = (const char *)e.data.sequence_start.tag;
      type = YAML_SEQUENCE_NODE;
    } else if (e.type == YAML_MAPPING_START_EVENT) {
      tag = (const char *)e.data.mapping_start.tag;
      type = YAML_MAPPING_NODE;
    }
    done = e.type == YAML_DOCUMENT_END_EVENT || e.type == YAML_STREAM_END_EVENT;
    if (tag) {
      /* shown as written with libyaml's standard handles */
      static const char std[] = "tag:yaml.org,2002:";
      if (strncmp(tag, std, sizeof std - 1) == 0)
        snprintf(c->tag, sizeof c->tag, "!!%.60s", tag + sizeof std - 1);
      else if (tag[0] == '!')
        snprintf(c->tag, sizeof c->tag, "%.60s", tag);
      else
        snprintf(c->tag, sizeof c->tag, "!<%.60s>", tag);
      c->tagged = done = true;
      c->tag_node = type;
      c->tag_mark = e.start_mark;
    }
    yaml_event_delete(&e);
  }
  yaml_parser_delete(&parser);
}

/* Refuse node if it is the tagged one; what names it ("element 2 ", "the
 * section name 'run' "). */
int cfg_refuse_tag(const source_ctx *c, const yaml_node_t *node,
                   const param_spec *s, const char *what) {
  if (!c->tagged || node->type != c->tag_node ||
      node->start_mark.line != c->tag_mark.line ||
      node->start_mark.column != c->tag_mark.column)
    return NRD_OK;
  return cfg_fail(c, &node->start_mark, s,
                  "%shas a YAML tag ('%s'); tags are not accepted: remove it",
                  what, c->tag);
}

/* After reading: a tag on a node that was not read is refused all the same
 * (a safety net; every node that is read is checked where it is read). */
int cfg_refuse_any_tag(const source_ctx *c) {
  if (!c->tagged) return NRD_OK;
  return cfg_fail(c, &c->tag_mark, NULL,
                  "a YAML tag ('%s'); tags are not accepted: remove it",
                  c->tag);
}

/* Report a libyaml failure.  Reader errors (bad encoding) carry a byte
 * offset rather than a mark, so the position is recounted from the text. */
int cfg_syntax_error(const source_ctx *c, const yaml_parser_t *parser,
                     const char *text, size_t len) {
  if (parser->error == YAML_MEMORY_ERROR)
    return cfg_out_of_memory(c->err, c->errlen);
  yaml_mark_t mark = parser->problem_mark;
  if (parser->error == YAML_READER_ERROR) {
    mark.line = mark.column = 0;
    for (size_t k = 0; k < parser->problem_offset && k < len; k++) {
      if (text[k] == '\n') {
        mark.line++;
        mark.column = 0;
      } else if (((unsigned char)text[k] & 0xC0) != 0x80) {
        mark.column++;
      }
    }
  }
  const char *problem = parser->problem ? parser->problem : "unknown problem";
  if (parser->context && !c->override)
    return cfg_fail(c, &mark, NULL,
                    "YAML syntax error: %s (%s at line %zu, column %zu)",
                    problem, parser->context, parser->context_mark.line + 1,
                    parser->context_mark.column + 1);
  if (parser->context)
    return cfg_fail(c, &mark, NULL, "YAML syntax error: %s (%s)", problem,
                    parser->context);
  return cfg_fail(c, &mark, NULL, "YAML syntax error: %s", problem);
}

void cfg_record_origin(nrd_params *q, value_origin *origin, int i,
                       nrd_param_source source, const yaml_mark_t *mark,
                       const char *override) {
  q->sources[i] = source;
  q->source_lines[i] = mark ? (int)mark->line + 1 : 0;
  origin[i] = (value_origin){mark ? mark->line + 1 : 0,
                             mark ? mark->column + 1 : 0, override};
}

/* Reject a second YAML document: it would be silently ignored otherwise. */
static int expect_end_of_stream(const source_ctx *c, yaml_parser_t *parser,
                                const char *text, size_t len) {
  yaml_document_t doc;
  if (!yaml_parser_load(parser, &doc))
    return cfg_syntax_error(c, parser, text, len);
  int rc = NRD_OK;
  if (yaml_document_get_root_node(&doc))
    rc = cfg_fail(c, &doc.start_mark, NULL,
                  "a second YAML document; a parameter file holds exactly one");
  yaml_document_delete(&doc);
  return rc;
}

/* Index of an earlier pair of the mapping with the same scalar key, or -1. */
static const yaml_node_pair_t *earlier_pair(yaml_document_t *doc,
                                            const yaml_node_t *map,
                                            const yaml_node_pair_t *pair) {
  const char *name = cfg_scalar_text(yaml_document_get_node(doc, pair->key));
  for (const yaml_node_pair_t *e = map->data.mapping.pairs.start; e < pair;
       e++) {
    yaml_node_t *k = yaml_document_get_node(doc, e->key);
    if (k->type == YAML_SCALAR_NODE && strcmp(cfg_scalar_text(k), name) == 0)
      return e;
  }
  return NULL;
}

static int read_section(const source_ctx *c, yaml_document_t *doc,
                        const char *section, const yaml_node_t *map,
                        nrd_params *q, value_origin *origin) {
  for (yaml_node_pair_t *pair = map->data.mapping.pairs.start;
       pair < map->data.mapping.pairs.top; pair++) {
    yaml_node_t *key = yaml_document_get_node(doc, pair->key);
    yaml_node_t *value = yaml_document_get_node(doc, pair->value);
    if (key->type != YAML_SCALAR_NODE)
      return cfg_fail(c, &key->start_mark, NULL,
                      "in section '%s': keys must be plain names, not %s",
                      section, cfg_node_kind(key));
    char what[300];
    snprintf(what, sizeof what, "the key name '%s.%s' ", section,
             cfg_scalar_text(key));
    int rc = cfg_refuse_tag(c, key, NULL, what);
    if (rc != NRD_OK) return rc;
    char name[256];
    snprintf(name, sizeof name, "%s.%s", section, cfg_scalar_text(key));
    int i = params_schema_find(name);
    if (i < 0) {
      char msg[1024];
      cfg_describe_unknown_key(section, cfg_scalar_text(key), msg, sizeof msg);
      return cfg_fail(c, &key->start_mark, NULL, "%s", msg);
    }
    const yaml_node_pair_t *first = earlier_pair(doc, map, pair);
    if (first)
      return cfg_fail(c, &key->start_mark, &cfg_schema[i],
                      "set twice (first at line %zu); keep one",
                      yaml_document_get_node(doc, first->key)->start_mark.line +
                          1);
    rc = cfg_read_value(c, &cfg_schema[i], doc, value, q);
    if (rc != NRD_OK) return rc;
    cfg_record_origin(q, origin, i, PSRC_FILE, &value->start_mark, NULL);
  }
  return NRD_OK;
}

static bool is_empty_mapping(const yaml_node_t *node) {
  return node->type == YAML_MAPPING_NODE &&
         node->data.mapping.pairs.top == node->data.mapping.pairs.start;
}

static int read_document(const source_ctx *c, yaml_document_t *doc,
                         nrd_params *q, value_origin *origin) {
  yaml_node_t *root = yaml_document_get_root_node(doc);
  int rc = root ? cfg_refuse_tag(c, root, NULL, "the top level ") : NRD_OK;
  if (rc != NRD_OK) return rc;
  /* Nothing, only comments, "---", "~" or "{}": running every default
   * unasked would hide a wrong or truncated file. */
  if (!root || cfg_is_null(root) || is_empty_mapping(root)) {
    yaml_mark_t start = {.line = 0, .column = 0};
    return cfg_fail(
        c, &start, NULL,
        "the file holds no parameters; 'nrdiff --print-params > "
        "run.yml' writes a complete file (every key at its default) "
        "to edit");
  }
  if (root->type != YAML_MAPPING_NODE)
    return cfg_fail(c, &root->start_mark, NULL,
                    "the top level must be a mapping of sections ('grid:' then "
                    "indented 'dimension: [16]' lines), not %s",
                    cfg_node_kind(root));
  for (yaml_node_pair_t *pair = root->data.mapping.pairs.start;
       pair < root->data.mapping.pairs.top; pair++) {
    yaml_node_t *key = yaml_document_get_node(doc, pair->key);
    yaml_node_t *value = yaml_document_get_node(doc, pair->value);
    if (key->type != YAML_SCALAR_NODE)
      return cfg_fail(c, &key->start_mark, NULL,
                      "section names must be plain words, not %s",
                      cfg_node_kind(key));
    const char *section = cfg_scalar_text(key);
    char what[300];
    snprintf(what, sizeof what, "the section name '%s' ", section);
    rc = cfg_refuse_tag(c, key, NULL, what);
    if (rc != NRD_OK) return rc;
    if (!cfg_is_section(section)) {
      char msg[1024];
      cfg_describe_unknown_section(section, msg, sizeof msg);
      return cfg_fail(c, &key->start_mark, NULL, "%s", msg);
    }
    const yaml_node_pair_t *first = earlier_pair(doc, root, pair);
    if (first)
      return cfg_fail(
          c, &key->start_mark, NULL,
          "section '%s' appears twice (first at line %zu); merge them", section,
          yaml_document_get_node(doc, first->key)->start_mark.line + 1);
    snprintf(what, sizeof what, "section '%s' ", section);
    rc = cfg_refuse_tag(c, value, NULL, what);
    if (rc != NRD_OK) return rc;
    if (cfg_is_null(value) || is_empty_mapping(value))
      return cfg_fail(
          c, &value->start_mark, NULL,
          "section '%s' has no keys (add indented 'key: value' lines "
          "or remove it)",
          section);
    if (value->type != YAML_MAPPING_NODE)
      return cfg_fail(c, &value->start_mark, NULL,
                      "section '%s' must be a mapping of indented 'key: value' "
                      "lines, not %s",
                      section, cfg_node_kind(value));
    rc = read_section(c, doc, section, value, q, origin);
    if (rc != NRD_OK) return rc;
  }
  return NRD_OK;
}

/* Parameter files are a few kilobytes; the cap stops "nrdiff /dev/zero". */
enum { MAX_FILE_BYTES = 16 << 20 };

static int read_whole_file(const char *path, char **text, size_t *len,
                           char *err, size_t errlen) {
  source_ctx c = {.path = path, .err = err, .errlen = errlen};
  FILE *f = fopen(path, "rb");
  if (!f)
    return cfg_fail(&c, NULL, NULL, "cannot open parameter file: %s",
                    strerror(errno));
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  int rc = buf ? NRD_OK : cfg_out_of_memory(err, errlen);
  while (rc == NRD_OK) {
    if (n + 1 >= cap) {
      char *bigger = cap >= MAX_FILE_BYTES ? NULL : realloc(buf, cap * 2);
      if (!bigger) {
        rc = cap >= MAX_FILE_BYTES
                 ? cfg_fail(&c, NULL, NULL,
                            "parameter file is larger than %d MiB; is it the "
                            "right file?",
                            MAX_FILE_BYTES >> 20)
                 : cfg_out_of_memory(err, errlen);
        break;
      }
      buf = bigger;
      cap *= 2;
    }
    size_t got = fread(buf + n, 1, cap - 1 - n, f);
    n += got;
    if (got == 0) {
      if (ferror(f))
        rc = cfg_fail(&c, NULL, NULL, "cannot read parameter file: %s",
                      strerror(errno));
      break;
    }
  }
  fclose(f);
  if (rc != NRD_OK) {
    free(buf);
    return rc;
  }
  buf[n] = '\0';
  *text = buf;
  *len = n;
  return NRD_OK;
}

/* Read the parameters in text (len bytes), named name in messages. */
int cfg_apply_text(nrd_params *q, const char *name, const char *text,
                   size_t len, value_origin *origin, char *err, size_t errlen) {
  source_ctx c = {.path = name, .err = err, .errlen = errlen};
  cfg_find_first_tag(&c, text, len);
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser)) return cfg_out_of_memory(err, errlen);
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  yaml_document_t doc;
  int rc;
  if (!yaml_parser_load(&parser, &doc)) {
    rc = cfg_syntax_error(&c, &parser, text, len);
  } else {
    /* an empty first document before a second: report the second */
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    bool empty = !root || cfg_is_null(root) || is_empty_mapping(root);
    rc = empty ? expect_end_of_stream(&c, &parser, text, len) : NRD_OK;
    if (rc == NRD_OK) rc = read_document(&c, &doc, q, origin);
    if (rc == NRD_OK) rc = cfg_refuse_any_tag(&c);
    yaml_document_delete(&doc);
    if (rc == NRD_OK) rc = expect_end_of_stream(&c, &parser, text, len);
  }
  yaml_parser_delete(&parser);
  return rc;
}

int cfg_apply_file(nrd_params *q, const char *path, value_origin *origin,
                   char *err, size_t errlen) {
  char *text = NULL;
  size_t len = 0;
  int rc = read_whole_file(path, &text, &len, err, errlen);
  if (rc != NRD_OK) return rc;
  rc = cfg_apply_text(q, path, text, len, origin, err, errlen);
  free(text);
  return rc;
}
