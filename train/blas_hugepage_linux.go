package train

import (
	"syscall"
	"unsafe"
)

// hugePages asks the kernel to back buf with transparent huge pages
// (madvise MADV_HUGEPAGE), so that random row accesses over the 64 MiB
// tables miss the TLB far less often. Call it before buf is first written:
// memory fresh from the OS then faults in as 2 MiB pages. It is advice: any
// error is ignored, and nothing depends on it but speed.
func hugePages(buf []float32) {
	const page = 4096
	if len(buf)*4 < 4<<20 {
		return
	}
	start := uintptr(unsafe.Pointer(&buf[0]))
	skip := int(((start+page-1)&^(page-1))-start) / 4 // floats before the first page boundary
	n := (len(buf) - skip) * 4 / page * page          // whole pages after it, in bytes
	if n <= 0 {
		return
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(&buf[skip])), n)
	_ = syscall.Madvise(b, syscall.MADV_HUGEPAGE)
}
