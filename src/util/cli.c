/* Command-line options from a table (see cli.h). */
#define _GNU_SOURCE /* getopt_long */
#include "util/cli.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* getopt_long returns a long option as LONG_ID + its table index, above
 * every short letter, so that the two never mix. */
enum { LONG_ID = 256 };

void nrd_cli_begin(nrd_cli *cli, const nrd_cli_option *table, int argc,
                   char **argv) {
  memset(cli, 0, sizeof *cli);
  cli->table = table;
  cli->argc = argc;
  cli->argv = argv;
  cli->first_operand = argc;
  /* ':' first: a missing value is ':', told apart from an unknown option */
  size_t n = 0;
  cli->shortopts[n++] = ':';
  int i = 0;
  for (; table[i].name; i++) {
    assert(i < NRD_CLI_MAX_OPTIONS && table[i].id > 0);
    cli->longopts[i] = (struct option){
        table[i].name, table[i].value ? required_argument : no_argument, NULL,
        LONG_ID + i};
    if (table[i].letter) {
      assert(table[i].letter != ':' && table[i].letter != '?');
      cli->shortopts[n++] = table[i].letter;
      if (table[i].value) cli->shortopts[n++] = ':';
    }
  }
  cli->longopts[i] = (struct option){NULL, 0, NULL, 0};
  cli->shortopts[n] = 0;
  opterr = 0; /* the messages are ours */
  optind = 0; /* glibc: start afresh (a previous parse may have stopped) */
}

/* The table index of a short letter or of a long option's getopt id. */
static int option_index(const nrd_cli *cli, int c) {
  if (c >= LONG_ID) return c - LONG_ID;
  for (int i = 0; cli->table[i].name; i++)
    if (cli->table[i].letter == c) return i;
  return -1;
}

/* The option as the user spelled it: "-x" or "--name" (its "=VALUE"
 * left off). */
static void spelled(const nrd_cli *cli, int c, char *buf, size_t len) {
  if (c >= LONG_ID) {
    snprintf(buf, len, "--%s", cli->table[c - LONG_ID].name);
  } else if (c > 0) {
    snprintf(buf, len, "-%c", c);
  } else { /* an unknown long option: the argument getopt_long passed */
    const char *a = cli->argv[optind - 1];
    snprintf(buf, len, "%.*s", (int)strcspn(a, "="), a);
  }
}

/* The usage error of an unknown long option: unknown, or the prefix of
 * several names. */
static void unknown_long(nrd_cli *cli) {
  char opt[96];
  spelled(cli, 0, opt, sizeof opt);
  size_t len = strlen(opt) > 2 ? strlen(opt) - 2 : 0, n = 0;
  char names[160] = "";
  int matches = 0;
  for (int i = 0; len && cli->table[i].name; i++)
    if (!strncmp(cli->table[i].name, opt + 2, len)) {
      n += (size_t)snprintf(names + n, n < sizeof names ? sizeof names - n : 0,
                            "%s--%s", matches ? ", " : "", cli->table[i].name);
      matches++;
    }
  if (matches > 1)
    snprintf(cli->error, sizeof cli->error,
             "option '%s' is ambiguous: %s (see --help)", opt, names);
  else
    snprintf(cli->error, sizeof cli->error, "unknown option '%s' (see --help)",
             opt);
}

int nrd_cli_next(nrd_cli *cli) {
  cli->value = NULL;
  int c =
      getopt_long(cli->argc, cli->argv, cli->shortopts, cli->longopts, NULL);
  char opt[96];
  if (c == -1) {
    cli->first_operand = optind;
    return NRD_CLI_END;
  }
  if (c == ':') { /* optopt: the letter, or the long option's id */
    spelled(cli, optopt, opt, sizeof opt);
    snprintf(cli->error, sizeof cli->error,
             "option '%s' needs an argument (see --help)", opt);
    return NRD_CLI_ERROR;
  }
  if (c == '?' && optopt >= LONG_ID) { /* --name=VALUE, name takes none */
    spelled(cli, optopt, opt, sizeof opt);
    snprintf(cli->error, sizeof cli->error,
             "option '%s' takes no value (see --help)", opt);
    return NRD_CLI_ERROR;
  }
  if (c == '?' && optopt) { /* an unknown letter */
    spelled(cli, optopt, opt, sizeof opt);
    snprintf(cli->error, sizeof cli->error, "unknown option '%s' (see --help)",
             opt);
    return NRD_CLI_ERROR;
  }
  if (c == '?') {
    unknown_long(cli);
    return NRD_CLI_ERROR;
  }
  int i = option_index(cli, c);
  assert(i >= 0);
  cli->value = cli->table[i].value ? optarg : NULL;
  return cli->table[i].id;
}

/* "  -x, --name VALUE" or "      --name VALUE"; its length. */
static int head_text(char *buf, size_t len, const nrd_cli_option *o) {
  char letter[8] = "    ";
  if (o->letter) snprintf(letter, sizeof letter, "-%c, ", o->letter);
  return snprintf(buf, len, "  %s--%s%s%s", letter, o->name,
                  o->value ? " " : "", o->value ? o->value : "");
}

void nrd_cli_print_help(FILE *out, const nrd_cli_option *table) {
  char head[128];
  int column = 0;
  for (int i = 0; table[i].name; i++) {
    int w = head_text(head, sizeof head, &table[i]);
    if (w > column) column = w;
  }
  column += 2; /* the descriptions' column: two spaces after the longest */
  for (int i = 0; table[i].name; i++) {
    int w = head_text(head, sizeof head, &table[i]);
    fputs(head, out);
    for (const char *line = table[i].help; line; w = 0) {
      const char *nl = strchr(line, '\n');
      fprintf(out, "%*s%.*s\n", column - w, "",
              nl ? (int)(nl - line) : (int)strlen(line), line);
      line = nl ? nl + 1 : NULL;
    }
  }
}

int nrd_cli_long(const char *text, long *v) {
  char *end;
  errno = 0;
  long x = strtol(text, &end, 10);
  if (end == text || *end || errno == ERANGE) return -1;
  *v = x;
  return 0;
}

int nrd_cli_number(const char *text, double *v) {
  char *end;
  double x = strtod(text, &end);
  if (end == text || *end || !isfinite(x)) return -1;
  *v = x;
  return 0;
}
