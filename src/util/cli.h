/* The programs' command lines: a table of options, parsed by getopt_long,
 * and the help text made from the same table.
 *
 * A program describes each option once (long name, short letter, the name
 * of its value if it takes one, the help text, an id) and reads its
 * command line in order:
 *
 *   static const nrd_cli_option opts[] = {
 *       {"output", 'o', "PREFIX", "write PREFIX.summary.csv", OPT_OUTPUT},
 *       {"quiet", 'q', NULL, "no table on stdout", OPT_QUIET},
 *       NRD_CLI_LAST_OPTIONS("versions")};
 *   nrd_cli cli;
 *   nrd_cli_begin(&cli, opts, argc, argv);
 *   for (int id; (id = nrd_cli_next(&cli)) != NRD_CLI_END;)
 *     switch (id) { case OPT_OUTPUT: ... cli.value ...;
 *                   case NRD_CLI_ERROR: ... cli.error ...; }
 *   operands: argv[cli.first_operand .. argc - 1]
 *
 * Spellings accepted (getopt_long's): --name VALUE, --name=VALUE, an
 * unambiguous prefix of a long name, -x VALUE, -xVALUE, short options
 * bundled (-nv); options and operands in any order (operands keep theirs),
 * "--" ends the options.  Usage errors are one message for the program to
 * print, the same in every program: "unknown option '--x' (see --help)",
 * "option '--x' needs an argument (see --help)", "option '--x' takes no
 * value (see --help)", "option '--x' is ambiguous: --xa, --xb (see
 * --help)". */
#ifndef NRDIFF_CLI_H
#define NRDIFF_CLI_H

#include <getopt.h>
#include <stdio.h>

/* One option.  value: the value's name in the help ("PREFIX"), NULL for an
 * option without value.  help: its description, lines separated by '\n'
 * (the help indents them).  id: > 0, what nrd_cli_next returns for it. */
typedef struct {
  const char *name; /* long name, without "--"; NULL ends a table */
  char letter;      /* short option, or 0 */
  const char *value;
  const char *help;
  int id;
} nrd_cli_option;

enum {
  NRD_CLI_END = 0,    /* no more options */
  NRD_CLI_ERROR = -1, /* a usage error: the message is in error */
  NRD_CLI_MAX_OPTIONS = 32,
  /* the ids of the options every program has, above a program's own */
  NRD_CLI_VERSION = 1000,
  NRD_CLI_HELP,
};

/* The end of every table: the options every program has, spelled and
 * described alike, -V, --version (its description: what it prints) and
 * -h, --help, then the table's end. */
/* clang-format off */
#define NRD_CLI_LAST_OPTIONS(version_help)                        \
  {"version", 'V', NULL, (version_help), NRD_CLI_VERSION},        \
  {"help", 'h', NULL, "this help", NRD_CLI_HELP},                 \
  {0}
/* clang-format on */

/* A parse in progress (getopt_long's state is global: one at a time). */
typedef struct {
  const nrd_cli_option *table;
  int argc;
  char **argv;
  const char *value; /* the option's value (NULL: it takes none) */
  int first_operand; /* after NRD_CLI_END: argv[first_operand ..] */
  char error[256];
  struct option longopts[NRD_CLI_MAX_OPTIONS + 1];
  char shortopts[2 + 2 * NRD_CLI_MAX_OPTIONS + 1];
} nrd_cli;

/* Start parsing argv (getopt_long may permute it: operands move after the
 * options, in their order). */
void nrd_cli_begin(nrd_cli *cli, const nrd_cli_option *table, int argc,
                   char **argv);

/* The next option on the command line: its id (its value in cli->value);
 * NRD_CLI_END after the last (the operands are then argv[first_operand
 * ..]); NRD_CLI_ERROR on a usage error (the message in cli->error). */
int nrd_cli_next(nrd_cli *cli);

/* The table's options as help text: one "  -x, --name VALUE  help" entry
 * each, descriptions aligned in one column. */
void nrd_cli_print_help(FILE *out, const nrd_cli_option *table);

/* A value that is all of a decimal integer (0) or not (-1). */
int nrd_cli_long(const char *text, long *v);
/* A value that is all of a finite number (0) or not (-1). */
int nrd_cli_number(const char *text, double *v);

#endif
