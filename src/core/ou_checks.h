/* The forward operator's input check shared by ou.c and ou_builders.c
 * (private: not part of the ou API). */
#ifndef NRDIFF_OU_CHECKS_H
#define NRDIFF_OU_CHECKS_H

/* U is finite, symmetric to 1e-12 relative (ou.h: ou_init) and positive
 * definite: NRD_OK with its exactly symmetric copy in Ucopy (work: d x d
 * scratch), else NRD_ERR_INPUT (NRD_ERR_NOMEM, NRD_ERR_LAPACK as they
 * come). */
int ou_check_spd(int d, const double *U, double *Ucopy, double *work);

#endif
