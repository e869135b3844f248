/* Loading the parameters: the built-in defaults, then the file (or a
 * text), then the -P overrides in order, then the rules between keys; the
 * result replaces the caller's parameters only when all of it is valid. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* strdup */
#endif
#include "config/yaml_read.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

int params_init_defaults(nrd_params *p) {
  memset(p, 0, sizeof *p);
  p->sources = calloc(N_PARAMS, sizeof *p->sources);
  p->source_lines = calloc(N_PARAMS, sizeof *p->source_lines);
  if (!p->sources || !p->source_lines) {
    params_free(p);
    return NRD_ERR_NOMEM;
  }
  /* Defaults go through the same reader as the file, so the table's text is
   * exactly what --print-params shows and what a file would give.  Only a
   * broken table (caught by the unit tests) or memory can make this fail. */
  char err[256];
  for (int i = 0; i < N_PARAMS; i++) {
    source_ctx c = {
        .path = "built-in default", .err = err, .errlen = sizeof err};
    int rc =
        cfg_read_value_text(&c, &cfg_schema[i], cfg_schema[i].default_yaml, p);
    if (rc != NRD_OK) {
      params_free(p);
      return NRD_FAIL(rc, "%s", err); /* which entry, and why */
    }
  }
  return NRD_OK;
}

/* params_load and params_load_text: the parameters of name (a file read
 * from disk, or text when text is not NULL; none if name is NULL), then the
 * overrides. */
static int load(nrd_params *p, const char *name, const char *text, size_t len,
                int n_overrides, char *const *overrides, char *err,
                size_t errlen) {
  char unused[1];
  if (!err || errlen == 0) err = unused, errlen = sizeof unused;
  err[0] = '\0';
  nrd_params q;
  int rc = params_init_defaults(&q);
  if (rc != NRD_OK) return cfg_out_of_memory(err, errlen);
  value_origin origin[N_PARAMS];
  memset(origin, 0, sizeof origin);
  if (text)
    rc = cfg_apply_text(&q, name, text, len, origin, err, errlen);
  else if (name)
    rc = cfg_apply_file(&q, name, origin, err, errlen);
  for (int k = 0; rc == NRD_OK && k < n_overrides; k++)
    rc = cfg_apply_override(&q, overrides[k], origin, err, errlen);
  if (rc == NRD_OK) {
    combination_ctx c = {name, &q, origin, err, errlen};
    rc = cfg_check_combinations(&c);
  }
  if (rc == NRD_OK && name) {
    q.source_file = strdup(name);
    if (!q.source_file) rc = cfg_out_of_memory(err, errlen);
  }
  if (rc != NRD_OK) {
    params_free(&q);
    return rc;
  }
  params_free(p);
  *p = q;
  return NRD_OK;
}

int params_load(nrd_params *p, const char *path, int n_overrides,
                char *const *overrides, char *err, size_t errlen) {
  return load(p, path, NULL, 0, n_overrides, overrides, err, errlen);
}

int params_load_text(nrd_params *p, const char *name, const char *text,
                     size_t len, char *err, size_t errlen) {
  return load(p, name ? name : "(parameters)", text ? text : "", text ? len : 0,
              0, NULL, err, errlen);
}
