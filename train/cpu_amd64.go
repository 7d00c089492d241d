//go:build !purego

package train

import "golang.org/x/sys/cpu"

// haveAVX2 reports whether the assembly kernels of this package may run:
// AVX2 (256-bit float and integer lanes) with FMA. The `purego` build tag,
// and every other architecture, keep the Go loops; tests set it to false to
// run them on this machine too.
var haveAVX2 = cpu.X86.HasAVX && cpu.X86.HasAVX2 && cpu.X86.HasFMA
