/* nrdiff: command line, parameter loading (rank 0 parses, all ranks get a
 * copy), run plan, and dispatch to the simulation driver. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>
#include <mpi.h>

#include "run/checkpoint.h"
#include "run/runctx.h"
#include "run/memory.h"
#include "util/blaskernel.h"
#include "util/cli.h"
#include "core/diagnose.h"
#include "util/error.h"
#include "core/grid.h"
#include "io/output_target.h"
#include "core/integrate.h"
#include "util/log.h"
#include "core/model.h"
#include "io/matrix_file.h"
#include "config/params.h"
#include "run/params_mpi.h"
#include "run/run.h"
#include "util/version.h"

enum {
  OPT_SET = 1,
  OPT_DRY_RUN,
  OPT_RESTART,
  OPT_AUTO_RESTART,
  OPT_PRINT_OUTPUT,
  OPT_OVERWRITE,
  OPT_BLAS_KERNEL,
  OPT_GRID_INDEX,
  OPT_PRINT_PARAMS,
  OPT_VERBOSE
};

/* nrdiff's options, in the order of --help. */
static const nrd_cli_option options[] = {
    {"set", 'P', "SECTION.KEY=VALUE",
     "override one parameter (repeatable);\n"
     "VALUE is YAML, e.g. -P grid.dimension=[8,16]",
     OPT_SET},
    {"dry-run", 'n', NULL, "validate, print the run plan, write nothing",
     OPT_DRY_RUN},
    {"restart", 'r', NULL,
     "continue from the newest valid checkpoint\n"
     "(output.file + .ckpt, else .ckpt.prev)",
     OPT_RESTART},
    {"auto-restart", 0, NULL,
     "--restart if a checkpoint exists, else start\n"
     "(for batch jobs that may be resumed)",
     OPT_AUTO_RESTART},
    {"print-output-file", 0, NULL, "print the resolved output.file and exit",
     OPT_PRINT_OUTPUT},
    {"overwrite", 0, NULL,
     "replace an existing output and checkpoints\n"
     "(same as -P output.overwrite=true)",
     OPT_OVERWRITE},
    /* taken out of argv by blas_kernel_select before MPI_Init */
    {"blas-kernel", 0, "K",
     "OpenBLAS kernels: auto (AVX-512 ones on an AVX-512\n"
     "CPU), default (OpenBLAS's own choice) or a core\n"
     "name such as SkylakeX; precedence: this option,\n"
     "NRDIFF_BLAS_KERNEL, OPENBLAS_CORETYPE, auto",
     OPT_BLAS_KERNEL},
    {"grid-index", 0, "I",
     "run grid point I only (0-based, as in the\n"
     "plan), e.g. one per Slurm array task",
     OPT_GRID_INDEX},
    {"print-params", 0, NULL,
     "print a complete parameter file with every\n"
     "key at its default, then exit",
     OPT_PRINT_PARAMS},
    {"verbose", 'v', NULL, "debug messages; every rank prints", OPT_VERBOSE},
    NRD_CLI_LAST_OPTIONS("versions of nrdiff and its libraries")};

static void usage(FILE *out) {
  fputs(
      "Usage: nrdiff [OPTIONS] PARAMETER_FILE\n"
      "       mpirun -n N nrdiff [OPTIONS] PARAMETER_FILE\n"
      "\n"
      "Exact simulation of generative diffusion (reverse Ornstein-Uhlenbeck)\n"
      "dynamics on Gaussian-mixture data, with forward drift A = (I + gQ)U\n"
      "that may break detailed balance.\n"
      "\n"
      "Options:\n",
      out);
  nrd_cli_print_help(out, options);
  fputs(
      "\n"
      "Exit status: 0 success (OUTPUT.done written), 1 runtime failure, 2 bad\n"
      "command line or parameters (nothing is written then), 3 stopped on\n"
      "request (SIGTERM, SIGUSR1, checkpoint.stop_file, run.max_wall_time)\n"
      "after writing a checkpoint: continue with --restart.\n"
      "Documentation: doc/user-guide.md, doc/parameters.md.\n",
      out);
}

typedef struct {
  const char *param_file;
  char **overrides;
  int n_overrides;
  int dry_run, print_params, verbose, version, help, restart, overwrite;
  int auto_restart, print_output;
  long grid_index; /* -1: every grid point */
} cli_options;

/* Parse argv; on a usage error return a message (same on every rank since
 * every rank sees the same argv). */
static const char *parse_cli(int argc, char **argv, cli_options *o, char *err,
                             size_t errlen) {
  memset(o, 0, sizeof *o);
  o->grid_index = -1;
  o->overrides = NRD_XCALLOC((size_t)argc + 1, sizeof *o->overrides);
  nrd_cli cli;
  nrd_cli_begin(&cli, options, argc, argv);
  for (int id; (id = nrd_cli_next(&cli)) != NRD_CLI_END;) {
    switch (id) {
    case NRD_CLI_ERROR:
      snprintf(err, errlen, "%s", cli.error);
      return err;
    case OPT_SET:
      o->overrides[o->n_overrides++] = (char *)cli.value; /* argv's own */
      break;
    case OPT_DRY_RUN:
      o->dry_run = 1;
      break;
    case OPT_RESTART:
      o->restart = 1;
      break;
    case OPT_OVERWRITE:
      o->overwrite = 1;
      break;
    case OPT_AUTO_RESTART:
      o->auto_restart = 1;
      break;
    case OPT_PRINT_OUTPUT:
      o->print_output = 1;
      break;
    case OPT_PRINT_PARAMS:
      o->print_params = 1;
      break;
    case OPT_BLAS_KERNEL:
      /* blas_kernel_select took "--blas-kernel K" and "--blas-kernel=K"; one
       * that reaches here with a value was abbreviated, and too late */
      snprintf(err, errlen,
               "an abbreviation of --blas-kernel (value '%s'): write "
               "--blas-kernel in full, it is read before MPI starts",
               cli.value);
      return err;
    case OPT_GRID_INDEX:
      if (nrd_cli_long(cli.value, &o->grid_index) != 0 || o->grid_index < 0) {
        snprintf(err, errlen,
                 "--grid-index needs a grid point number >= 0, got '%s'",
                 cli.value);
        return err;
      }
      break;
    case OPT_VERBOSE:
      o->verbose = 1;
      break;
    case NRD_CLI_VERSION:
      o->version = 1;
      break;
    case NRD_CLI_HELP:
      o->help = 1;
      break;
    }
  }
  if (o->help || o->version || o->print_params) return NULL;
  int first = cli.first_operand;
  if (first == argc) {
    snprintf(err, errlen,
             "no parameter file given (see --help; "
             "'nrdiff --print-params > run.yml' makes one)");
    return err;
  }
  if (argc - first > 1) {
    snprintf(err, errlen, "more than one parameter file given ('%s', '%s')",
             argv[first], argv[first + 1]);
    return err;
  }
  o->param_file = argv[first];
  return NULL;
}

/* Rank 0 parses the file and everyone gets the result, so a bad file fails
 * every rank with the same message and status 2, having written nothing. */
static void load_params(const cli_options *o, nrd_params *p) {
  char err[2048] = "";
  int status =
      params_load_collective(p, o->param_file, o->n_overrides, o->overrides,
                             MPI_COMM_WORLD, err, sizeof err);
  if (status != NRD_OK)
    nrd_fatal(status == NRD_ERR_INPUT ? NRD_EXIT_USAGE : NRD_EXIT_RUNTIME, "%s",
              err[0] ? err : nrd_strerror(status));
}

/* Whether OUTPUT.ckpt or OUTPUT.ckpt.prev exists (rank 0 looks). */
static int checkpoint_exists(const nrd_params *p) {
  int found = 0;
  if (nrd_log_rank() == 0)
    for (int prev = 0; prev < 2; prev++) {
      char *path = checkpoint_path(p, prev);
      found |= access(path, F_OK) == 0;
      free(path);
    }
  NRD_MPI_CHECK(MPI_Bcast(&found, 1, MPI_INT, 0, MPI_COMM_WORLD));
  if (found) nrd_info("a checkpoint exists: restarting from it");
  return found;
}

/* The eigenvalues of a U that is diagonal by its parameters (any but a
 * file), or 0. */
static int diagonal_u(const nrd_params *p, int d, double *u) {
  if (p->forward.u == U_FILE) return 0;
  if (p->forward.u == U_DIAGONAL && p->forward.u_diagonal.n != d) return 0;
  for (int i = 0; i < d; i++)
    u[i] = p->forward.u == U_ISOTROPIC ? p->forward.u_scale
           : p->forward.u == U_DIAGONAL
               ? p->forward.u_diagonal.v[i]
               : p->forward.u_min *
                     pow(p->forward.u_max / p->forward.u_min,
                         d > 1 ? (double)i / (d - 1) : 0.0);
  return 1;
}

/* --dry-run: the step-size and no-op checks of every grid point
 * (diagnose.h) that a dry run can afford: a diagonal operator without
 * rotation from the parameters at any d, a dense one (built from U and Q,
 * which also checks U and Q files) up to d = NRD_DRY_RUN_MAX_DENSE.
 * Collective: rank 0 checks; a bad operator is a usage error for all. */
enum { NRD_DRY_RUN_MAX_DENSE = 2048 };
static void dry_run_checks(const nrd_params *p, const run_plan *plan) {
  char err[1024] = "";
  int status = NRD_OK;
  if (nrd_log_rank() == 0) {
    long n = plan->steps;
    double *t = calloc((size_t)n + 1, sizeof *t);
    step_check *sc = calloc((size_t)plan->n_points, sizeof *sc);
    if (!t || !sc ||
        timegrid_build(p->time.spacing, p->time.T, p->time.t_min, n, t) !=
            NRD_OK)
      NRD_ABORT(NRD_EXIT_RUNTIME, "cannot build the time grid");
    double h = p->time.spacing == SPACING_UNIFORM
                   ? (p->time.T - p->time.t_min) / (double)n
                   : t[0] - t[1];
    for (int i = 0; i < plan->n_points && status == NRD_OK; i++) {
      const grid_point *g = &plan->points[i];
      int d = (int)g->dimension;
      int rotates = p->forward.q != Q_NONE && g->strength != 0 && d > 1;
      double *u = malloc((size_t)d * sizeof *u);
      if (!u) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
      if (!rotates && diagonal_u(p, d, u)) {
        diagnose_diagonal(d, u, p->integrator.scheme, h, &sc[i]);
      } else if (d <= NRD_DRY_RUN_MAX_DENSE) {
        ou_op op;
        status = model_build_operator(&op, p, g, matrix_file_read, err,
                                      sizeof err);
        if (status == NRD_OK)
          status = diagnose_operator(&op, p->integrator.scheme, h, n, &sc[i]);
        ou_free(&op);
      } else {
        nrd_info("grid point %d: the step size is checked when the run "
                 "starts (a dense operator at d = %d)", i, d);
      }
      free(u);
    }
    char *text = status == NRD_OK
                     ? diagnose_summary_text(sc, plan->n_points, p)
                     : NULL;
    nrd_warn_lines(text);
    free(text);
    free(sc);
    free(t);
  }
  NRD_MPI_CHECK(MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD));
  if (status == NRD_OK) return;
  NRD_MPI_CHECK(MPI_Bcast(err, sizeof err, MPI_CHAR, 0, MPI_COMM_WORLD));
  nrd_fatal(status == NRD_ERR_INPUT || status == NRD_ERR_IO ? NRD_EXIT_USAGE
                                                            : NRD_EXIT_RUNTIME,
            "%s", err);
}

/* The command line as one string, for the output's provenance. */
static char *join_args(int argc, char **argv) {
  size_t n = 1;
  for (int i = 0; i < argc; i++)
    n += strlen(argv[i]) + 1;
  char *s = calloc(n, 1);
  if (!s) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  for (int i = 0; i < argc; i++) {
    if (i) strcat(s, " ");
    strcat(s, argv[i]);
  }
  return s;
}

int main(int argc, char **argv) {
  /* a stop signal from now on is a stop request, never fatal: blocked
   * (pending) across a possible re-execution, then caught */
  run_block_stop_signals();
  blas_kernel_select(&argc, argv); /* may re-execute: before MPI_Init */
  run_catch_stop_signals();
  MPI_Init(&argc, &argv);
  cli_options o;
  char err[1024];
  const char *msg = parse_cli(argc, argv, &o, err, sizeof err);
  nrd_log_init(MPI_COMM_WORLD, o.verbose);
  if (!msg) msg = blas_kernel_error();
  if (msg) nrd_fatal(NRD_EXIT_USAGE, "%s", msg);
  int rank = nrd_log_rank();
  if (o.help || o.version || o.print_params) {
    if (rank == 0) {
      if (o.help) usage(stdout);
      if (o.version) version_print(stdout);
      if (o.print_params) params_print_defaults(stdout);
    }
    free(o.overrides);
    MPI_Finalize();
    return NRD_EXIT_OK;
  }

  nrd_params p;
  if (params_init_defaults(&p) != NRD_OK)
    NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory for parameters");
  load_params(&o, &p);
  openblas_set_num_threads((int)p.run.blas_threads);

  if (o.print_output) {
    if (rank == 0) printf("%s\n", p.output.file);
    params_free(&p);
    free(o.overrides);
    MPI_Finalize();
    return NRD_EXIT_OK;
  }
  if (o.auto_restart) o.restart = checkpoint_exists(&p);

  run_plan plan;
  if (plan_build(&p, &plan) != NRD_OK)
    NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory for the run plan");
  if (o.grid_index >= plan.n_points)
    nrd_fatal(NRD_EXIT_USAGE,
              "--grid-index %ld: the plan has grid points 0 .. %d only",
              o.grid_index, plan.n_points - 1);
  plan.warnings = diagnose_parameters(&p);
  if (!plan.warnings) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  if (rank == 0) plan_print(&plan, &p, nrd_log_size(), stdout);
  if (rank == 0) fflush(stdout), nrd_warn_lines(plan.warnings);
  if (rank == 0 && o.grid_index >= 0)
    printf("Only grid point %ld runs (--grid-index).\n", o.grid_index);
  if (rank == 0) fflush(stdout);
  if (plan_check_memory(&plan, (int)o.grid_index, err, sizeof err) != NRD_OK)
    nrd_fatal(NRD_EXIT_USAGE, "%s", err);
  if (o.overwrite) p.output.overwrite = 1;
  char err2[1400];
  int unmarked = 0;
  if (h5out_prepare_target(&p, o.restart, o.dry_run, &unmarked, err2,
                           sizeof err2) != NRD_OK)
    nrd_fatal(NRD_EXIT_USAGE, "%s", err2);
  if (unmarked) {
    /* killed after OUTPUT was renamed into place (it is complete: it only
     * ever appears whole) and before OUTPUT.done: finish that last step */
    nrd_info("%s is complete but its run ended before writing the marker: "
             "%s", p.output.file,
             o.dry_run ? "a restart writes it and removes the checkpoints"
                       : "writing it, removing the checkpoints");
    if (!o.dry_run) run_mark_complete(&p, "marked complete by a restart");
    h5out_release_target();
    plan_free(&plan);
    params_free(&p);
    free(o.overrides);
    MPI_Finalize();
    return NRD_EXIT_OK;
  }

  int status = NRD_EXIT_OK;
  if (o.dry_run) {
    data_set *data = run_data_load(&p); /* a bad data file fails here */
    run_data_describe(data, &p);
    run_data_free(data);
    dry_run_checks(&p, &plan);
    nrd_info("dry run: parameters valid, nothing written");
  } else {
    char *cmd = join_args(argc, argv);
    status = run_simulation(&p, &plan, (int)o.grid_index, o.restart, cmd);
    free(cmd);
  }
  h5out_release_target();
  plan_free(&plan);
  params_free(&p);
  free(o.overrides);
  MPI_Finalize();
  return status;
}
