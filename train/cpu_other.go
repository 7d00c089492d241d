//go:build !amd64 || purego

package train

// haveAVX2 is false: this build has no assembly kernels (see cpu_amd64.go).
var haveAVX2 = false
