//go:build !openblas && !purego

#include "textflag.h"

// One step p of the 6 x 16 micro-kernel: the two halves of packed B row p
// (16 floats) times each of the six packed A values of column p (rows at
// AX, AX+R8, AX+2*R8, R12, R12+R8, R12+2*R8), added into the accumulators
// Y0..Y11 (row r in Y(2r), Y(2r+1)) with one fused multiply-add per lane.
#define STEP(ao, bo) \
	VMOVUPS      bo(BX), Y12;          \
	VMOVUPS      bo+32(BX), Y13;       \
	VBROADCASTSS ao(AX), Y14;          \
	VBROADCASTSS ao(AX)(R8*1), Y15;    \
	VFMADD231PS  Y14, Y12, Y0;         \
	VFMADD231PS  Y14, Y13, Y1;         \
	VFMADD231PS  Y15, Y12, Y2;         \
	VFMADD231PS  Y15, Y13, Y3;         \
	VBROADCASTSS ao(AX)(R8*2), Y14;    \
	VBROADCASTSS ao(R12), Y15;         \
	VFMADD231PS  Y14, Y12, Y4;         \
	VFMADD231PS  Y14, Y13, Y5;         \
	VFMADD231PS  Y15, Y12, Y6;         \
	VFMADD231PS  Y15, Y13, Y7;         \
	VBROADCASTSS ao(R12)(R8*1), Y14;   \
	VBROADCASTSS ao(R12)(R8*2), Y15;   \
	VFMADD231PS  Y14, Y12, Y8;         \
	VFMADD231PS  Y14, Y13, Y9;         \
	VFMADD231PS  Y15, Y12, Y10;        \
	VFMADD231PS  Y15, Y13, Y11

// func sgemmKernel6x16(k int, a, b, c *float32, ldc int, load bool)
//
// c[r][j] (6 x 16, row stride ldc floats) = sum over p < k of a[r*k+p] *
// b[16p+j]: a is a packed A panel (six rows of k), b a packed B panel (k
// rows of 16). Each element is one fused multiply-add chain in order of p,
// starting from 0, or from the element's current value when load is set,
// which continues the chain of the previous k block exactly. k >= 1.
TEXT ·sgemmKernel6x16(SB), NOSPLIT, $0-41
	MOVQ    k+0(FP), CX
	MOVQ    a+8(FP), AX
	MOVQ    b+16(FP), BX
	MOVQ    c+24(FP), DI
	MOVQ    CX, R8
	SHLQ    $2, R8
	LEAQ    (R8)(R8*2), R12
	ADDQ    AX, R12
	MOVQ    ldc+32(FP), DX
	SHLQ    $2, DX
	LEAQ    (DX)(DX*2), R9
	LEAQ    (DI)(DX*4), R10
	MOVBLZX load+40(FP), SI
	TESTQ   SI, SI
	JNZ     loadc

	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	JMP    body

loadc:
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS (DI)(DX*1), Y2
	VMOVUPS 32(DI)(DX*1), Y3
	VMOVUPS (DI)(DX*2), Y4
	VMOVUPS 32(DI)(DX*2), Y5
	VMOVUPS (DI)(R9*1), Y6
	VMOVUPS 32(DI)(R9*1), Y7
	VMOVUPS (R10), Y8
	VMOVUPS 32(R10), Y9
	VMOVUPS (R10)(DX*1), Y10
	VMOVUPS 32(R10)(DX*1), Y11

body:
	MOVQ CX, R11
	SHRQ $2, R11
	JZ   tail

loop4:
	STEP(0, 0)
	STEP(4, 64)
	STEP(8, 128)
	STEP(12, 192)
	ADDQ $16, AX
	ADDQ $16, R12
	ADDQ $256, BX
	DECQ R11
	JNZ  loop4

tail:
	ANDQ $3, CX
	JZ   store

loop1:
	STEP(0, 0)
	ADDQ $4, AX
	ADDQ $4, R12
	ADDQ $64, BX
	DECQ CX
	JNZ  loop1

store:
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, (DI)(DX*1)
	VMOVUPS Y3, 32(DI)(DX*1)
	VMOVUPS Y4, (DI)(DX*2)
	VMOVUPS Y5, 32(DI)(DX*2)
	VMOVUPS Y6, (DI)(R9*1)
	VMOVUPS Y7, 32(DI)(R9*1)
	VMOVUPS Y8, (R10)
	VMOVUPS Y9, 32(R10)
	VMOVUPS Y10, (R10)(DX*1)
	VMOVUPS Y11, 32(R10)(DX*1)
	VZEROUPPER
	RET

// Transposes the 8 x 8 block of floats whose row i starts at base + i*DX
// (R9 = 3*DX, R11 scratch) and stores its column t at off+64t(DI): eight
// rows of the packed B panel, half of each.
#define TRANSPOSE8(base, off) \
	LEAQ       (base)(DX*4), R11;  \
	VMOVUPS    (base), Y0;         \
	VMOVUPS    (base)(DX*1), Y1;   \
	VMOVUPS    (base)(DX*2), Y2;   \
	VMOVUPS    (base)(R9*1), Y3;   \
	VMOVUPS    (R11), Y4;          \
	VMOVUPS    (R11)(DX*1), Y5;    \
	VMOVUPS    (R11)(DX*2), Y6;    \
	VMOVUPS    (R11)(R9*1), Y7;    \
	VUNPCKLPS  Y1, Y0, Y8;         \
	VUNPCKHPS  Y1, Y0, Y9;         \
	VUNPCKLPS  Y3, Y2, Y10;        \
	VUNPCKHPS  Y3, Y2, Y11;        \
	VUNPCKLPS  Y5, Y4, Y12;        \
	VUNPCKHPS  Y5, Y4, Y13;        \
	VUNPCKLPS  Y7, Y6, Y14;        \
	VUNPCKHPS  Y7, Y6, Y15;        \
	VSHUFPS    $0x44, Y10, Y8, Y0; \
	VSHUFPS    $0xEE, Y10, Y8, Y1; \
	VSHUFPS    $0x44, Y11, Y9, Y2; \
	VSHUFPS    $0xEE, Y11, Y9, Y3; \
	VSHUFPS    $0x44, Y14, Y12, Y4; \
	VSHUFPS    $0xEE, Y14, Y12, Y5; \
	VSHUFPS    $0x44, Y15, Y13, Y6; \
	VSHUFPS    $0xEE, Y15, Y13, Y7; \
	VPERM2F128 $0x20, Y4, Y0, Y8;  \
	VPERM2F128 $0x20, Y5, Y1, Y9;  \
	VPERM2F128 $0x20, Y6, Y2, Y10; \
	VPERM2F128 $0x20, Y7, Y3, Y11; \
	VPERM2F128 $0x31, Y4, Y0, Y12; \
	VPERM2F128 $0x31, Y5, Y1, Y13; \
	VPERM2F128 $0x31, Y6, Y2, Y14; \
	VPERM2F128 $0x31, Y7, Y3, Y15; \
	VMOVUPS    Y8, off(DI);        \
	VMOVUPS    Y9, off+64(DI);     \
	VMOVUPS    Y10, off+128(DI);   \
	VMOVUPS    Y11, off+192(DI);   \
	VMOVUPS    Y12, off+256(DI);   \
	VMOVUPS    Y13, off+320(DI);   \
	VMOVUPS    Y14, off+384(DI);   \
	VMOVUPS    Y15, off+448(DI)

// func packBT16(dst, src *float32, ldb, k8 int)
//
// dst[16p+j] = src[j*ldb+p] for j < 16, p < k8: sixteen rows of b stored
// transposed packed into one B panel. k8 is a positive multiple of 8.
TEXT ·packBT16(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ldb+16(FP), DX
	MOVQ k8+24(FP), CX
	SHLQ $2, DX
	LEAQ (DX)(DX*2), R9
	LEAQ (SI)(DX*8), R10
	SHRQ $3, CX

ploop:
	TRANSPOSE8(SI, 0)
	TRANSPOSE8(R10, 32)
	ADDQ $32, SI
	ADDQ $32, R10
	ADDQ $512, DI
	DECQ CX
	JNZ  ploop
	VZEROUPPER
	RET
