// Package openblas is the learner's link to OpenBLAS's cblas_sgemm through
// cgo, for the opt-in `-tags openblas` build (libopenblas-dev); without the
// tag it is empty. It is a package of its own because a Go package that uses
// cgo may not hold Go assembly, and package train has assembly kernels.
package openblas
