/* Time grids and single steps of the reverse-time dynamics (doc/theory.md section 2):
 *
 *   reverse SDE   dy = [A y + 2 s_t(y)] dtau + sqrt(2) dW
 *   flow ODE      dy/dtau = A y + s_t(y)
 *
 * with tau = T - t, so one step goes from forward time t_k to t_{k+1} < t_k
 * over h = t_k - t_{k+1}.  Q enters twice: through A here and through the
 * score s_t (built from e^{-At} and Delta_t by the score module).  The
 * step functions only do the update; the caller evaluates the scores. */
#ifndef NRDIFF_INTEGRATE_H
#define NRDIFF_INTEGRATE_H

#include "core/ou.h"

/* Time grids (the values of time.spacing, enum nrd_spacing of the
 * parameters: model.c checks that they agree). */
enum time_spacing { TIME_UNIFORM, TIME_LOG };

/* t[0..steps]: t[0] = T, t[steps] = t_min, decreasing; uniform or uniform in
 * ln t (log needs t_min > 0). */
int timegrid_build(int spacing, double T, double t_min, long steps, double *t);

/* The schemes (the values of integrator.scheme, enum nrd_scheme of the
 * parameters: model.c checks that they agree). */
enum step_scheme { STEP_EULER, STEP_EXPONENTIAL, STEP_ODE_HEUN };

/* Matrices of one step of size h for a given scheme (enum step_scheme). */
typedef struct {
  int d, scheme;
  double h;
  double *A;   /* drift matrix (borrowed from the operator) */
  double *F;   /* exponential scheme: e^{A h} */
  double *G;   /* exponential scheme: A^{-1}(e^{A h} - I) */
  double *Ln;  /* exponential scheme: Cholesky of e^{Ah} S e^{A^T h} - S */
  /* Multiples of the identity (to a few d eps relative), found by
   * step_ops_init (A) and step_ops_set_h (F, G, Ln): iso_X = 1 and the
   * factor in s_X; the step then scales instead of multiplying.  A, F and G
   * are multiples of I when U = u I and g = 0; Ln also for g != 0. */
  int iso_A, iso_F, iso_G, iso_Ln;
  double s_A, s_F, s_G, s_Ln;
} step_ops;

int step_ops_init(step_ops *s, const ou_op *op, int scheme);
/* (Re)build the matrices for step size h (cheap when h is unchanged). */
int step_ops_set_h(step_ops *s, const ou_op *op, double h);
void step_ops_free(step_ops *s);

/* Reverse-SDE step for P particles Y (P x d, in place), given the score S at
 * (Y, t_k) and standard normals Xi (P x d):
 *   euler:        y += h (A y + 2 s) + sqrt(2h) xi
 *   exponential:  y  = F y + 2 G s + Ln xi   (exact when s is frozen:
 *                 the linear drift, including the rotation by Q, is
 *                 integrated exactly; Cov of the noise is F S F^T - S
 *                 because A S + S A^T = 2 I).
 * work: P x d scratch. */
void reverse_sde_step(const step_ops *s, int P, double *Y, const double *S,
                      const double *Xi, double *work);

/* A score with a linear part, s(y) = r(y) - Dinv y (the empirical score,
 * Dinv = Delta_t^{-1}), lets the step apply that part together with its own
 * d x d map:
 *   euler:        y += h (M y + 2 r) + sqrt(2h) xi,  M = A - 2 Dinv
 *   exponential:  y  = M y + 2 G r + Ln xi,          M = F - 2 G Dinv
 * which is one P x d x d product fewer per step than -Dinv y in the score
 * and the step's own map (the exponential scheme pays a d x d x d product
 * per time for G Dinv unless G is a multiple of I).  Same step up to
 * round-off. */
typedef struct {
  int d, iso; /* iso: M = s I (not stored) */
  double s;
  double *M;
} step_fold;

int step_fold_init(step_fold *f, int d);
/* M for the current step size of s (call after step_ops_set_h); Dinv is
 * d x d, or NULL for dinv_iso I. */
void step_fold_set(step_fold *f, const step_ops *s, const double *Dinv,
                   double dinv_iso);
void step_fold_free(step_fold *f);
/* reverse_sde_step with the score's remainder R = s + Dinv y (P x d). */
void reverse_sde_step_folded(const step_ops *s, const step_fold *f, int P,
                             double *Y, const double *R, const double *Xi,
                             double *work);

/* Heun step of the probability-flow ODE, in two calls:
 * ode_predict:  Ystar = Y + h (A Y + S0)           (S0 = score at Y, t_k)
 * ode_correct:  Y += h/2 [(A Y + S0) + (A Ystar + S1)]  (S1 at Ystar, t_{k+1})
 * work: P x d scratch. */
void ode_predict(const step_ops *s, int P, const double *Y, const double *S0,
                 double *Ystar);
void ode_correct(const step_ops *s, int P, double *Y, const double *S0,
                 const double *Ystar, const double *S1, double *work);

/* Exact forward sampling x_t = E x0 + L xi (L L^T = Delta_t), P particles. */
void forward_sample(int d, int P, const double *E, const double *L,
                    const double *X0, const double *Xi, double *Xt);

#endif
