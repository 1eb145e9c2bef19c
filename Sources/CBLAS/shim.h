// OpenBLAS's CBLAS interface plus its thread control.
#ifndef RNN_DIST_CBLAS_SHIM_H
#define RNN_DIST_CBLAS_SHIM_H
#include <cblas.h>
#endif
