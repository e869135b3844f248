/* Physics checks of a run's settings, before anything runs (pure numerics:
 * no MPI, HDF5, logging or exit).
 *
 * - Settings that cannot do what they seem to: a strength axis when Q = 0
 *   (every g is the same process), and a perturbation that moves no
 *   transition because Q commutes with U, in particular for an isotropic U
 *   (doc/theory.md, "Exact negative controls": then
 *   p_t^(Q)(x) = p_t^(0)(R_t^T x) with R_t orthogonal).
 * - Time steps that make the integrator unstable or biased, from the
 *   linearisation of one step around the stationary law N(0, U^-1), where
 *   the score is -U y (doc/theory.md, "Step size" [I]). */
#ifndef NRDIFF_DIAGNOSE_H
#define NRDIFF_DIAGNOSE_H

#include <stddef.h>

#include "core/grid.h"
#include "core/ou.h"
#include "config/params.h"

/* Warnings about the parameters as a whole, one per line ("" if none), in
 * a malloc'd string; NULL if out of memory. */
char *diagnose_parameters(const nrd_params *p);

/* Dense operators are checked up to this dimension (eigenvalues of d x d
 * matrices), their second-moment bias computed exactly up to the second
 * (a discrete Lyapunov equation by doubling); beyond, first order in h. */
enum { NRD_DIAGNOSE_MAX_DENSE = 4096, NRD_DIAGNOSE_MAX_LYAPUNOV = 1024 };

/* The step-size check of one grid point, for the linearised step
 * y <- M y + noise around the stationary law (diagnose.c: M per scheme). */
typedef struct {
  int checked;          /* 0: a dense operator beyond NRD_DIAGNOSE_MAX_DENSE */
  double h;             /* step size */
  double rho;           /* largest |eigenvalue| of A */
  double u_min, u_max;  /* extreme eigenvalues of U */
  double amplification; /* largest |eigenvalue| of M: >= 1 is unstable */
  double bias;          /* relative error of the stationary tr Cov (the
                           ODE: its growth over the run) */
  int estimated;        /* bias to first order in h only */
  int commuting;        /* Q != 0 but [Q, U] = 0: no transition moves */
} step_check;

/* Fill c for operator op, scheme (enum nrd_scheme), step h and the number
 * of steps (the ODE's growth).  O(d) for a diagonal operator without
 * rotation, O(d^3) otherwise. */
int diagnose_operator(const ou_op *op, int scheme, double h, long steps,
                      step_check *c);

/* The same for A = U = diag(u) (no rotation), from the d eigenvalues u:
 * O(d), what --dry-run uses at large d. */
void diagnose_diagonal(int d, const double *u, int scheme, double h,
                       step_check *c);

/* The warnings of a check of grid point g under parameters p (appended to
 * buf, one per line, each starting with "grid point I: "); returns their
 * number. */
int diagnose_point_text(const step_check *c, const nrd_params *p,
                        const grid_point *g, char *buf, size_t len);

/* The checks of grid points 0 .. n-1 (c[i]: point i; unchecked ones
 * zero) as a few lines for a person: each kind of warning once, with the
 * points it concerns and its worst value (malloc'd; "" if none; NULL if out
 * of memory). */
char *diagnose_summary_text(const step_check *c, int n, const nrd_params *p);

#endif
