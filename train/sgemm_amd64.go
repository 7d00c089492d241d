//go:build !openblas && !purego

package train

import (
	"sync"
	"unsafe"
)

// The blocking of sgemmAVX2. The micro-kernel computes a 6 x 16 block of c
// in twelve YMM accumulators over sgemmKC values of k; blocks of op(a)
// (sgemmMC x sgemmKC, 144 KiB, which stays in L2) and op(b) (sgemmKC x
// sgemmNC, 2 MiB, in L3; each 16-column panel of it, 16 KiB, stays in L1
// while the kernel runs down the rows) are packed first, so that the
// kernel reads both sequentially and the transposes cost nothing there.
const (
	sgemmMR = 6
	sgemmNR = 16
	sgemmKC = 256
	sgemmMC = 144
	sgemmNC = 2048
)

//go:noescape
func sgemmKernel6x16(k int, a, b, c *float32, ldc int, load bool)

//go:noescape
func packBT16(dst, src *float32, ldb, k8 int)

// sgemmBuf is one goroutine's packing space, reused across calls.
type sgemmBuf struct {
	a, b []float32                  // packed panels of op(a) and op(b), 32-byte aligned
	c    [sgemmMR * sgemmNR]float32 // a micro-tile at the edge of c
}

var sgemmBufs = sync.Pool{New: func() any { return new(sgemmBuf) }}

// alignedFloats returns buf resized to n floats whose first one is 32-byte
// aligned, reallocating when its capacity is short.
func alignedFloats(buf []float32, n int) []float32 {
	if cap(buf) >= n {
		return buf[:n]
	}
	raw := make([]float32, n+7)
	off := int(uintptr(unsafe.Pointer(&raw[0]))&31) / 4
	if off != 0 {
		off = 8 - off
	}
	return raw[off : off+n : off+n]
}

// sgemmAVX2 is sgemm with the AVX2/FMA micro-kernel. Every element of c is
// one fused multiply-add chain over p = 0..k-1 in order, starting from 0:
// the k blocks continue the chain through c, so the result does not depend
// on the blocking, on the tile matmulPar cuts, on the goroutine or on what
// the buffers held before; it differs from gonum's (separate multiply and
// add) in the last bits.
func sgemmAVX2(ta, tb bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	ar, ac := m, k
	if ta {
		ar, ac = k, m
	}
	br, bc := k, n
	if tb {
		br, bc = n, k
	}
	if m < 0 || n < 0 || k < 0 || lda < max(ac, 1) || ldb < max(bc, 1) || ldc < n {
		panic("train: bad sgemm dimensions")
	}
	_ = c[(m-1)*ldc+n-1]
	if k == 0 {
		for i := 0; i < m; i++ {
			clear(c[i*ldc : i*ldc+n])
		}
		return
	}
	_ = a[(ar-1)*lda+ac-1]
	_ = b[(br-1)*ldb+bc-1]

	buf := sgemmBufs.Get().(*sgemmBuf)
	mcMax := (min(m, sgemmMC) + sgemmMR - 1) / sgemmMR * sgemmMR
	ncMax := (min(n, sgemmNC) + sgemmNR - 1) / sgemmNR * sgemmNR
	kcMax := min(k, sgemmKC)
	buf.a = alignedFloats(buf.a, mcMax*kcMax)
	buf.b = alignedFloats(buf.b, ncMax*kcMax)
	for jc := 0; jc < n; jc += sgemmNC {
		nc := min(sgemmNC, n-jc)
		for pc := 0; pc < k; pc += sgemmKC {
			kc := min(sgemmKC, k-pc)
			if tb {
				packBT(buf.b, b, ldb, jc, nc, pc, kc)
			} else {
				packBN(buf.b, b, ldb, jc, nc, pc, kc)
			}
			for ic := 0; ic < m; ic += sgemmMC {
				mc := min(sgemmMC, m-ic)
				if ta {
					packAT(buf.a, a, lda, ic, mc, pc, kc)
				} else {
					packAN(buf.a, a, lda, ic, mc, pc, kc)
				}
				sgemmMacro(buf, mc, nc, kc, c[ic*ldc+jc:], ldc, pc > 0)
			}
		}
	}
	sgemmBufs.Put(buf)
}

// sgemmMacro multiplies the packed mc x kc panel of op(a) by the packed
// kc x nc panel of op(b) into c, continuing c's chains when load is set.
// Micro-tiles over the edge of c go through buf.c, of which only the valid
// part is read and written back.
func sgemmMacro(buf *sgemmBuf, mc, nc, kc int, c []float32, ldc int, load bool) {
	pa, pb := buf.a, buf.b
	for jr := 0; jr < nc; jr += sgemmNR {
		nr := min(sgemmNR, nc-jr)
		bp := &pb[jr*kc]
		for ir := 0; ir < mc; ir += sgemmMR {
			mr := min(sgemmMR, mc-ir)
			ap := &pa[ir*kc]
			ci := ir*ldc + jr
			if mr == sgemmMR && nr == sgemmNR {
				_ = c[ci+(sgemmMR-1)*ldc+sgemmNR-1]
				sgemmKernel6x16(kc, ap, bp, &c[ci], ldc, load)
				continue
			}
			t := &buf.c
			if load {
				for r := 0; r < mr; r++ {
					copy(t[r*sgemmNR:r*sgemmNR+nr], c[ci+r*ldc:ci+r*ldc+nr])
				}
			}
			sgemmKernel6x16(kc, ap, bp, &t[0], sgemmNR, load)
			for r := 0; r < mr; r++ {
				copy(c[ci+r*ldc:ci+r*ldc+nr], t[r*sgemmNR:r*sgemmNR+nr])
			}
		}
	}
}

// packAN packs rows i0..i0+mc-1, columns p0..p0+kc-1 of a (not
// transposed, row stride lda) into panels of sgemmMR rows, each panel row
// by row: panel q holds a[i0+6q+r][p0+p] at dst[q*6*kc + r*kc + p], rows
// past mc zero.
func packAN(dst, a []float32, lda, i0, mc, p0, kc int) {
	for ir := 0; ir < mc; ir += sgemmMR {
		d := dst[ir*kc : ir*kc+sgemmMR*kc]
		mr := min(sgemmMR, mc-ir)
		for r := 0; r < mr; r++ {
			o := (i0+ir+r)*lda + p0
			copy(d[r*kc:(r+1)*kc], a[o:o+kc])
		}
		clear(d[mr*kc:])
	}
}

// packAT is packAN for a stored transposed (op(a)[i][p] = a[p*lda+i]).
func packAT(dst, a []float32, lda, i0, mc, p0, kc int) {
	for ir := 0; ir < mc; ir += sgemmMR {
		d := dst[ir*kc : ir*kc+sgemmMR*kc]
		mr := min(sgemmMR, mc-ir)
		if mr < sgemmMR {
			clear(d[mr*kc:])
		}
		for p := range kc {
			o := (p0+p)*lda + i0 + ir
			for r, v := range a[o : o+mr] {
				d[r*kc+p] = v
			}
		}
	}
}

// packBN packs rows p0..p0+kc-1, columns j0..j0+nc-1 of b (not transposed,
// row stride ldb) into panels of sgemmNR columns: panel q holds
// b[p0+p][j0+16q+j] at dst[q*16*kc + 16p + j], columns past nc zero.
func packBN(dst, b []float32, ldb, j0, nc, p0, kc int) {
	for jr := 0; jr < nc; jr += sgemmNR {
		d := dst[jr*kc : jr*kc+sgemmNR*kc]
		nr := min(sgemmNR, nc-jr)
		for p := range kc {
			o := (p0+p)*ldb + j0 + jr
			e := d[p*sgemmNR : p*sgemmNR+sgemmNR]
			if nr == sgemmNR {
				copy(e, b[o:o+sgemmNR])
				continue
			}
			copy(e, b[o:o+nr])
			clear(e[nr:])
		}
	}
}

// packBT is packBN for b stored transposed (op(b)[p][j] = b[j*ldb+p]):
// whole panels are transposed eight by eight columns in assembly.
func packBT(dst, b []float32, ldb, j0, nc, p0, kc int) {
	k8 := kc &^ 7
	for jr := 0; jr < nc; jr += sgemmNR {
		d := dst[jr*kc : jr*kc+sgemmNR*kc]
		nr := min(sgemmNR, nc-jr)
		p := 0
		if nr == sgemmNR && k8 > 0 {
			o := (j0+jr)*ldb + p0
			_ = b[o+(sgemmNR-1)*ldb+kc-1]
			packBT16(&d[0], &b[o], ldb, k8)
			p = k8
		}
		if p == kc {
			continue
		}
		if nr < sgemmNR {
			clear(d)
		}
		for j := 0; j < nr; j++ {
			o := (j0+jr+j)*ldb + p0
			col := b[o+p : o+kc]
			for q, v := range col {
				d[(p+q)*sgemmNR+j] = v
			}
		}
	}
}
