/* Suggestions for misspelt names: the nearest key, section or enum word
 * by edit distance, or else the list of what there is. */
#include "config/params_impl.h"

#include <stdio.h>
#include <string.h>

/* Optimal-string-alignment distance: Levenshtein plus adjacent swaps, so
 * "gird" is one edit from "grid". */
static int edit_distance(const char *a, const char *b) {
  enum { MAXLEN = 63 };
  size_t n = strlen(a), m = strlen(b);
  if (n > MAXLEN || m > MAXLEN) return 1000;
  int d[MAXLEN + 1][MAXLEN + 1];
  for (size_t i = 0; i <= n; i++)
    d[i][0] = (int)i;
  for (size_t j = 0; j <= m; j++)
    d[0][j] = (int)j;
  for (size_t i = 1; i <= n; i++)
    for (size_t j = 1; j <= m; j++) {
      int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
          d[i - 2][j - 2] + 1 < best)
        best = d[i - 2][j - 2] + 1;
      d[i][j] = best;
    }
  return d[n][m];
}

/* Suggest only close names: a wild guess is worse than the list. */
static int suggestion_limit(const char *word) {
  int n = (int)strlen(word) / 3;
  return n < 2 ? 2 : n;
}

/* The choice closest to word, or -1 if nothing is close; a word that
 * starts a choice counts as one edit ("diag" finds "diagonal"). */
int cfg_nearest_choice(const char *const *choices, const char *word) {
  int best = 0, best_distance = 1 << 30;
  for (int i = 0; choices[i]; i++) {
    int d = edit_distance(word, choices[i]);
    if (*word && strncmp(choices[i], word, strlen(word)) == 0) d = 1;
    if (d < best_distance) best = i, best_distance = d;
  }
  return best_distance <= suggestion_limit(word) ? best : -1;
}

/* The schema entry closest to "section.key" (either part may be wrong), or
 * -1 if nothing is close.  A right key in the wrong section counts as one
 * edit, so "grid.particles" finds "ensemble.particles". */
static int nearest_key(const char *section, const char *key) {
  char dotted[160];
  snprintf(dotted, sizeof dotted, "%s.%s", section, key);
  int best = -1, best_distance = 1 << 30;
  for (int i = 0; i < N_PARAMS; i++) {
    const char *name = cfg_schema[i].name;
    bool same_section = cfg_section_length(name) == strlen(section) &&
                        strncmp(name, section, strlen(section)) == 0;
    int d = edit_distance(dotted, name);
    int d_key = edit_distance(key, cfg_key_part(name)) + (same_section ? 0 : 1);
    if (d_key < d) d = d_key;
    if (d < best_distance) best = i, best_distance = d;
  }
  return best_distance <= suggestion_limit(key) ? best : -1;
}

/* Append "a, b, c" (the keys of one section, or all sections) to out. */
static void list_section_keys(const char *section, char *out, size_t outlen) {
  size_t n = strlen(section), used = strlen(out);
  const char *sep = "";
  for (int i = 0; i < N_PARAMS && used < outlen; i++) {
    const char *name = cfg_schema[i].name;
    if (cfg_section_length(name) != n || strncmp(name, section, n) != 0)
      continue;
    snprintf(out + used, outlen - used, "%s%s", sep, cfg_key_part(name));
    used = strlen(out);
    sep = ", ";
  }
}

static void list_sections(char *out, size_t outlen) {
  size_t used = strlen(out);
  for (int i = 0; i < N_PARAMS && used < outlen; i++) {
    if (i > 0 &&
        cfg_section_length(cfg_schema[i].name) ==
            cfg_section_length(cfg_schema[i - 1].name) &&
        strncmp(cfg_schema[i].name, cfg_schema[i - 1].name,
                cfg_section_length(cfg_schema[i].name)) == 0)
      continue;
    snprintf(out + used, outlen - used, "%s%.*s", i ? ", " : "",
             (int)cfg_section_length(cfg_schema[i].name), cfg_schema[i].name);
    used = strlen(out);
  }
}

void cfg_describe_unknown_key(const char *section, const char *key, char *out,
                              size_t outlen) {
  int near = nearest_key(section, key);
  if (*section)
    snprintf(out, outlen, "unknown key '%s.%s'; ", section, key);
  else
    snprintf(out, outlen, "unknown key '%s'; ", key);
  size_t used = strlen(out);
  if (near >= 0) {
    snprintf(out + used, outlen - used, "did you mean '%s'?",
             cfg_schema[near].name);
  } else if (cfg_is_section(section)) {
    snprintf(out + used, outlen - used, "the keys of '%s' are ", section);
    list_section_keys(section, out, outlen);
  } else {
    snprintf(out + used, outlen - used,
             "keys are SECTION.KEY, the sections being ");
    list_sections(out, outlen);
  }
}

void cfg_describe_unknown_section(const char *section, char *out,
                                  size_t outlen) {
  snprintf(out, outlen, "unknown section '%s'; ", section);
  size_t used = strlen(out);
  /* A key written at the top level, outside its section? */
  for (int i = 0; i < N_PARAMS; i++)
    if (strcmp(cfg_key_part(cfg_schema[i].name), section) == 0) {
      snprintf(out + used, outlen - used,
               "did you mean '%s'? (keys go inside their section: '%.*s:' "
               "then an indented '%s: ...')",
               cfg_schema[i].name, (int)cfg_section_length(cfg_schema[i].name),
               cfg_schema[i].name, section);
      return;
    }
  int best = -1, best_distance = 1 << 30;
  for (int i = 0; i < N_PARAMS; i++) {
    char name[64];
    snprintf(name, sizeof name, "%.*s",
             (int)cfg_section_length(cfg_schema[i].name), cfg_schema[i].name);
    int d = edit_distance(section, name);
    if (d < best_distance) best = i, best_distance = d;
  }
  if (best_distance <= suggestion_limit(section))
    snprintf(out + used, outlen - used, "did you mean '%.*s'?",
             (int)cfg_section_length(cfg_schema[best].name),
             cfg_schema[best].name);
  else {
    snprintf(out + used, outlen - used, "the sections are ");
    list_sections(out, outlen);
  }
}
