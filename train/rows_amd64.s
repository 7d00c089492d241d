//go:build !purego

#include "textflag.h"

// Kernels of the embedding-row work (see rows_amd64.go). Each gives the bits
// of its Go reference: the same float32 operations in the same order per
// element, no fused multiply-add. Rows are random rows of large tables, so
// every kernel walks a whole list of rows per call and prefetches the rows
// of the entry a few ahead: their cache misses overlap the work on the
// current ones (pooling gets about 1.4x from it, poolKey 2x, the updates
// 1.5x to 2.5x). Width 64 (the default embedding width) keeps the sums of
// pooling in registers; other widths (multiples of 8) go 8 lanes at a time
// through memory.

// How far ahead to prefetch: ids of pooling (PF), rows of the updates
// (UPF, whose rows take more work and lines each), and the slots of
// gradient accumulation (SPF; its gradient rows are mostly in cache, and
// prefetching them cost more than it saved).
#define PF 10
#define UPF 7
#define SPF 16

// PREF4 prefetches the 256 bytes at base+off.
#define PREF4(base, off) \
	PREFETCHT0 0(base)(off*1); \
	PREFETCHT0 64(base)(off*1); \
	PREFETCHT0 128(base)(off*1); \
	PREFETCHT0 192(base)(off*1)

// func poolAVX2(dst, table []float32, ids []uint32, rows int, inv float32) int
TEXT ·poolAVX2(SB), NOSPLIT, $0-96
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), DX
	MOVQ table_base+24(FP), SI
	MOVQ ids_base+48(FP), BX
	MOVQ ids_len+56(FP), CX
	MOVQ rows+72(FP), R10
	XORQ R9, R9
	CMPQ DX, $64
	JNE  pgen

	VMOVUPS 0(DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS 64(DI), Y2
	VMOVUPS 96(DI), Y3
	VMOVUPS 128(DI), Y4
	VMOVUPS 160(DI), Y5
	VMOVUPS 192(DI), Y6
	VMOVUPS 224(DI), Y7

p64loop:
	CMPQ R9, CX
	JAE  p64done
	LEAQ PF(R9), R11
	CMPQ R11, CX
	JAE  p64row
	MOVL (BX)(R11*4), R11
	SHLQ $8, R11
	PREF4(SI, R11)

p64row:
	MOVL (BX)(R9*4), AX
	CMPQ AX, R10
	JAE  p64store
	SHLQ $8, AX
	VADDPS 0(SI)(AX*1), Y0, Y0
	VADDPS 32(SI)(AX*1), Y1, Y1
	VADDPS 64(SI)(AX*1), Y2, Y2
	VADDPS 96(SI)(AX*1), Y3, Y3
	VADDPS 128(SI)(AX*1), Y4, Y4
	VADDPS 160(SI)(AX*1), Y5, Y5
	VADDPS 192(SI)(AX*1), Y6, Y6
	VADDPS 224(SI)(AX*1), Y7, Y7
	INCQ R9
	JMP  p64loop

p64done:
	VBROADCASTSS inv+80(FP), Y8
	VMULPS Y8, Y0, Y0
	VMULPS Y8, Y1, Y1
	VMULPS Y8, Y2, Y2
	VMULPS Y8, Y3, Y3
	VMULPS Y8, Y4, Y4
	VMULPS Y8, Y5, Y5
	VMULPS Y8, Y6, Y6
	VMULPS Y8, Y7, Y7

p64store:
	VMOVUPS Y0, 0(DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	VMOVUPS Y4, 128(DI)
	VMOVUPS Y5, 160(DI)
	VMOVUPS Y6, 192(DI)
	VMOVUPS Y7, 224(DI)
	MOVQ R9, ret+88(FP)
	VZEROUPPER
	RET

pgen:
	MOVQ DX, R11
	SHLQ $2, R11 // row bytes

pgloop:
	CMPQ R9, CX
	JAE  pgdone
	LEAQ PF(R9), R12
	CMPQ R12, CX
	JAE  pgrow
	MOVL (BX)(R12*4), R12
	IMULQ R11, R12
	PREF4(SI, R12)

pgrow:
	MOVL (BX)(R9*4), AX
	CMPQ AX, R10
	JAE  pgret
	IMULQ R11, AX
	ADDQ SI, AX
	XORQ R12, R12

pgcol:
	VMOVUPS (DI)(R12*1), Y0
	VADDPS  (AX)(R12*1), Y0, Y0
	VMOVUPS Y0, (DI)(R12*1)
	ADDQ    $32, R12
	CMPQ    R12, R11
	JB      pgcol
	INCQ    R9
	JMP     pgloop

pgdone:
	VBROADCASTSS inv+80(FP), Y8
	XORQ R12, R12

pgscale:
	VMULPS  (DI)(R12*1), Y8, Y0
	VMOVUPS Y0, (DI)(R12*1)
	ADDQ    $32, R12
	CMPQ    R12, R11
	JB      pgscale

pgret:
	MOVQ R9, ret+88(FP)
	VZEROUPPER
	RET

// KEYTERM leaves in T the term on + f (key - on) of the 8 lanes at byte off
// of the rows at SI+AX (online) and R8+AX (momentum), f in Y8.
#define KEYTERM(off, T, U) \
	VMOVUPS off(SI)(AX*1), U; \
	VMOVUPS off(R8)(AX*1), T; \
	VSUBPS  U, T, T; \
	VMULPS  T, Y8, T; \
	VADDPS  T, U, T

// func poolKeyAVX2(dst, on, key []float32, sync []int64, powM []float32, ids []uint32, rows int, step int64, inv float32) int
TEXT ·poolKeyAVX2(SB), NOSPLIT, $0-176
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), DX
	MOVQ on_base+24(FP), SI
	MOVQ key_base+48(FP), R8
	MOVQ sync_base+72(FP), R13
	MOVQ powM_base+96(FP), R10
	MOVQ ids_base+120(FP), BX
	MOVQ ids_len+128(FP), CX
	XORQ R9, R9
	CMPQ DX, $64
	JNE  kgen

	VMOVUPS 0(DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS 64(DI), Y2
	VMOVUPS 96(DI), Y3
	VMOVUPS 128(DI), Y4
	VMOVUPS 160(DI), Y5
	VMOVUPS 192(DI), Y6
	VMOVUPS 224(DI), Y7

k64loop:
	CMPQ R9, CX
	JAE  k64done
	LEAQ PF(R9), R11
	CMPQ R11, CX
	JAE  k64row
	MOVL (BX)(R11*4), R11
	PREFETCHT0 (R13)(R11*8)
	SHLQ $8, R11
	PREF4(SI, R11)
	PREF4(R8, R11)

k64row:
	MOVL (BX)(R9*4), AX
	CMPQ AX, rows+144(FP)
	JAE  k64store
	MOVQ step+152(FP), R12
	SUBQ (R13)(AX*8), R12 // age
	JZ   k64key
	CMPQ R12, powM_len+104(FP)
	JAE  k64store         // negative, or beyond powM
	VBROADCASTSS (R10)(R12*4), Y8
	SHLQ $8, AX
	KEYTERM(0, Y9, Y10)
	VADDPS Y9, Y0, Y0
	KEYTERM(32, Y11, Y12)
	VADDPS Y11, Y1, Y1
	KEYTERM(64, Y9, Y10)
	VADDPS Y9, Y2, Y2
	KEYTERM(96, Y11, Y12)
	VADDPS Y11, Y3, Y3
	KEYTERM(128, Y9, Y10)
	VADDPS Y9, Y4, Y4
	KEYTERM(160, Y11, Y12)
	VADDPS Y11, Y5, Y5
	KEYTERM(192, Y9, Y10)
	VADDPS Y9, Y6, Y6
	KEYTERM(224, Y11, Y12)
	VADDPS Y11, Y7, Y7
	INCQ R9
	JMP  k64loop

k64key:
	// Up to date: the momentum row as it is.
	SHLQ $8, AX
	VADDPS 0(R8)(AX*1), Y0, Y0
	VADDPS 32(R8)(AX*1), Y1, Y1
	VADDPS 64(R8)(AX*1), Y2, Y2
	VADDPS 96(R8)(AX*1), Y3, Y3
	VADDPS 128(R8)(AX*1), Y4, Y4
	VADDPS 160(R8)(AX*1), Y5, Y5
	VADDPS 192(R8)(AX*1), Y6, Y6
	VADDPS 224(R8)(AX*1), Y7, Y7
	INCQ R9
	JMP  k64loop

k64done:
	VBROADCASTSS inv+160(FP), Y8
	VMULPS Y8, Y0, Y0
	VMULPS Y8, Y1, Y1
	VMULPS Y8, Y2, Y2
	VMULPS Y8, Y3, Y3
	VMULPS Y8, Y4, Y4
	VMULPS Y8, Y5, Y5
	VMULPS Y8, Y6, Y6
	VMULPS Y8, Y7, Y7

k64store:
	VMOVUPS Y0, 0(DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	VMOVUPS Y4, 128(DI)
	VMOVUPS Y5, 160(DI)
	VMOVUPS Y6, 192(DI)
	VMOVUPS Y7, 224(DI)
	MOVQ R9, ret+168(FP)
	VZEROUPPER
	RET

kgen:
	SHLQ $2, DX // row bytes

kgloop:
	CMPQ R9, CX
	JAE  kgdone
	LEAQ PF(R9), R11
	CMPQ R11, CX
	JAE  kgrow
	MOVL (BX)(R11*4), R11
	PREFETCHT0 (R13)(R11*8)
	IMULQ DX, R11
	PREF4(SI, R11)
	PREF4(R8, R11)

kgrow:
	MOVL (BX)(R9*4), AX
	CMPQ AX, rows+144(FP)
	JAE  kgret
	MOVQ step+152(FP), R12
	SUBQ (R13)(AX*8), R12 // age
	JZ   kgkey
	CMPQ R12, powM_len+104(FP)
	JAE  kgret
	VBROADCASTSS (R10)(R12*4), Y8
	IMULQ DX, AX
	LEAQ (AX)(DX*1), R12 // end of the row

kgcol:
	KEYTERM(0, Y9, Y10)
	VADDPS  (DI), Y9, Y9
	VMOVUPS Y9, (DI)
	ADDQ    $32, DI
	ADDQ    $32, AX
	CMPQ    AX, R12
	JB      kgcol
	SUBQ    DX, DI
	INCQ    R9
	JMP     kgloop

kgkey:
	IMULQ DX, AX
	LEAQ (AX)(DX*1), R12

kgkcol:
	VMOVUPS (R8)(AX*1), Y9
	VADDPS  (DI), Y9, Y9
	VMOVUPS Y9, (DI)
	ADDQ    $32, DI
	ADDQ    $32, AX
	CMPQ    AX, R12
	JB      kgkcol
	SUBQ    DX, DI
	INCQ    R9
	JMP     kgloop

kgdone:
	VBROADCASTSS inv+160(FP), Y8
	XORQ R12, R12

kgscale:
	VMULPS  (DI)(R12*1), Y8, Y0
	VMOVUPS Y0, (DI)(R12*1)
	ADDQ    $32, R12
	CMPQ    R12, DX
	JB      kgscale

kgret:
	MOVQ R9, ret+168(FP)
	VZEROUPPER
	RET

// func gradAddAVX2(slot []int32, rows []uint32, grad []float32, n int, ids []uint32, vec []float32, mod, w, k uint64, coef float32) (done, count int)
TEXT ·gradAddAVX2(SB), NOSPLIT, $0-176
	MOVQ slot_base+0(FP), R13
	MOVQ rows_base+24(FP), R8
	MOVQ grad_base+48(FP), DI
	MOVQ n+72(FP), R10
	MOVQ ids_base+80(FP), BX
	MOVQ ids_len+88(FP), CX
	MOVQ vec_base+104(FP), SI
	VBROADCASTSS coef+152(FP), Y15
	VXORPS Y14, Y14, Y14
	XORQ R9, R9
	CMPQ vec_len+112(FP), $64
	JNE  galoop
	// Width 64: coef*vec once, in Y0-Y7.
	VMULPS 0(SI), Y15, Y0
	VMULPS 32(SI), Y15, Y1
	VMULPS 64(SI), Y15, Y2
	VMULPS 96(SI), Y15, Y3
	VMULPS 128(SI), Y15, Y4
	VMULPS 160(SI), Y15, Y5
	VMULPS 192(SI), Y15, Y6
	VMULPS 224(SI), Y15, Y7

galoop:
	CMPQ R9, CX
	JAE  garet
	// Prefetch the slot of the id SPF ahead.
	LEAQ SPF(R9), AX
	CMPQ AX, CX
	JAE  gapf
	MOVL (BX)(AX*4), AX
	PREFETCHT0 (R13)(AX*4)

gapf:
	MOVL (BX)(R9*4), R11
	// Shard of row r: (mod*r mod 2^64) * w >> 64 is r % w.
	MOVQ  mod+128(FP), AX
	IMULQ R11, AX
	MULQ  w+136(FP)
	CMPQ  DX, k+144(FP)
	JNE   ganext
	CMPQ  R11, slot_len+8(FP)
	JAE   garet
	MOVL  (R13)(R11*4), R12 // 1-based slot of r, 0: new
	TESTL R12, R12
	JZ    ganew
	DECQ  R12
	CMPQ  R12, R10
	JAE   garet             // not a row of this shard
	MOVQ  vec_len+112(FP), DX
	SHLQ  $2, DX
	IMULQ DX, R12
	ADDQ  DI, R12
	CMPQ  DX, $256
	JEQ   ga64acc
	XORQ  AX, AX

gaacc:
	VMULPS  (SI)(AX*1), Y15, Y8
	VADDPS  (R12)(AX*1), Y8, Y8
	VMOVUPS Y8, (R12)(AX*1)
	ADDQ    $32, AX
	CMPQ    AX, DX
	JB      gaacc

ganext:
	INCQ R9
	JMP  galoop

ganew:
	// Append r to the shard: rows[n] = r, slot[r] = n+1, and its
	// gradient row 0 + coef*vec.
	CMPQ  R10, rows_len+32(FP)
	JAE   garet
	MOVQ  vec_len+112(FP), DX
	LEAQ  1(R10), AX
	IMULQ DX, AX
	CMPQ  AX, grad_len+56(FP)
	JA    garet
	MOVL  R11, (R8)(R10*4)
	LEAQ  1(R10), AX
	MOVL  AX, (R13)(R11*4)
	SHLQ  $2, DX
	MOVQ  R10, R12
	IMULQ DX, R12
	ADDQ  DI, R12
	INCQ  R10
	CMPQ  DX, $256
	JEQ   ga64new
	XORQ  AX, AX

ganewc:
	VMULPS  (SI)(AX*1), Y15, Y8
	VADDPS  Y14, Y8, Y8
	VMOVUPS Y8, (R12)(AX*1)
	ADDQ    $32, AX
	CMPQ    AX, DX
	JB      ganewc
	INCQ    R9
	JMP     galoop

ga64acc:
	VADDPS  0(R12), Y0, Y8
	VMOVUPS Y8, 0(R12)
	VADDPS  32(R12), Y1, Y9
	VMOVUPS Y9, 32(R12)
	VADDPS  64(R12), Y2, Y10
	VMOVUPS Y10, 64(R12)
	VADDPS  96(R12), Y3, Y11
	VMOVUPS Y11, 96(R12)
	VADDPS  128(R12), Y4, Y8
	VMOVUPS Y8, 128(R12)
	VADDPS  160(R12), Y5, Y9
	VMOVUPS Y9, 160(R12)
	VADDPS  192(R12), Y6, Y10
	VMOVUPS Y10, 192(R12)
	VADDPS  224(R12), Y7, Y11
	VMOVUPS Y11, 224(R12)
	INCQ    R9
	JMP     galoop

ga64new:
	VADDPS  Y14, Y0, Y8
	VMOVUPS Y8, 0(R12)
	VADDPS  Y14, Y1, Y9
	VMOVUPS Y9, 32(R12)
	VADDPS  Y14, Y2, Y10
	VMOVUPS Y10, 64(R12)
	VADDPS  Y14, Y3, Y11
	VMOVUPS Y11, 96(R12)
	VADDPS  Y14, Y4, Y8
	VMOVUPS Y8, 128(R12)
	VADDPS  Y14, Y5, Y9
	VMOVUPS Y9, 160(R12)
	VADDPS  Y14, Y6, Y10
	VMOVUPS Y10, 192(R12)
	VADDPS  Y14, Y7, Y11
	VMOVUPS Y11, 224(R12)
	INCQ    R9
	JMP     galoop

garet:
	MOVQ R9, done+160(FP)
	MOVQ R10, count+168(FP)
	VZEROUPPER
	RET

// func emaRowsAVX2(on, key, acc []float32, sync []int64, powM []float32, rows []uint32, grad []float32, d, nrows int, prev, step int64, lr, eps, m float32) int
TEXT ·emaRowsAVX2(SB), NOSPLIT, $0-224
	MOVQ on_base+0(FP), SI
	MOVQ key_base+24(FP), R8
	MOVQ acc_base+48(FP), DI
	MOVQ sync_base+72(FP), R13
	MOVQ powM_base+96(FP), R10
	MOVQ rows_base+120(FP), BX
	MOVQ rows_len+128(FP), CX
	MOVQ grad_base+144(FP), DX
	MOVQ d+168(FP), R11
	SHLQ $2, R11 // row bytes
	VBROADCASTSS lr+200(FP), Y12
	VBROADCASTSS eps+204(FP), Y13
	VBROADCASTSS m+208(FP), Y14
	VXORPS Y11, Y11, Y11
	MOVL $0x3f800000, AX
	MOVL AX, X10
	VBROADCASTSS X10, Y10 // 1
	XORQ R9, R9

erloop:
	CMPQ R9, CX
	JAE  erret
	LEAQ UPF(R9), AX
	CMPQ AX, CX
	JAE  errow
	MOVL (BX)(AX*4), AX
	PREFETCHT0 (R13)(AX*8)
	IMULQ R11, AX
	PREF4(SI, AX)
	PREF4(R8, AX)
	PREF4(DI, AX)

errow:
	MOVL (BX)(R9*4), AX
	CMPQ AX, nrows+176(FP)
	JAE  erret
	MOVQ  prev+184(FP), R12
	SUBQ  (R13)(AX*8), R12 // age against step-1
	TESTQ R12, R12
	JLE   erone
	CMPQ  R12, powM_len+104(FP)
	JAE   erret
	VBROADCASTSS (R10)(R12*4), Y15
	JMP   ersync

erone:
	VMOVUPS Y10, Y15

ersync:
	MOVQ  step+192(FP), R12
	MOVQ  R12, (R13)(AX*8)
	IMULQ R11, AX
	LEAQ  (AX)(R11*1), R12 // end of the row
	CMPQ  acc_len+56(FP), $0
	JEQ   ersgd

eracol:
	VMOVUPS (SI)(AX*1), Y0 // v
	VMOVUPS (R8)(AX*1), Y1
	VSUBPS  Y0, Y1, Y1
	VMULPS  Y1, Y15, Y1
	VADDPS  Y1, Y0, Y1     // k = v + sync (key - v)
	VMOVUPS (DX), Y2       // g
	VMULPS  Y2, Y2, Y3
	VADDPS  (DI)(AX*1), Y3, Y3 // a = acc + g g
	VMOVUPS Y3, (DI)(AX*1)
	VSQRTPS Y3, Y3
	VADDPS  Y13, Y3, Y3
	VMULPS  Y2, Y12, Y4
	VDIVPS  Y3, Y4, Y4     // lr g / (sqrt a + eps)
	VSUBPS  Y4, Y0, Y0
	VMOVUPS Y0, (SI)(AX*1)
	VSUBPS  Y0, Y1, Y1
	VMULPS  Y1, Y14, Y1
	VADDPS  Y1, Y0, Y1     // v + m (k - v)
	VMOVUPS Y1, (R8)(AX*1)
	VMOVUPS Y11, (DX)
	ADDQ    $32, DX
	ADDQ    $32, AX
	CMPQ    AX, R12
	JB      eracol
	INCQ    R9
	JMP     erloop

ersgd:
	VMOVUPS (SI)(AX*1), Y0
	VMOVUPS (R8)(AX*1), Y1
	VSUBPS  Y0, Y1, Y1
	VMULPS  Y1, Y15, Y1
	VADDPS  Y1, Y0, Y1
	VMULPS  (DX), Y12, Y4  // lr g
	VSUBPS  Y4, Y0, Y0
	VMOVUPS Y0, (SI)(AX*1)
	VSUBPS  Y0, Y1, Y1
	VMULPS  Y1, Y14, Y1
	VADDPS  Y1, Y0, Y1
	VMOVUPS Y1, (R8)(AX*1)
	VMOVUPS Y11, (DX)
	ADDQ    $32, DX
	ADDQ    $32, AX
	CMPQ    AX, R12
	JB      ersgd
	INCQ    R9
	JMP     erloop

erret:
	MOVQ R9, ret+216(FP)
	VZEROUPPER
	RET

// func adagradRowsAVX2(w, acc []float32, rows []uint32, grad []float32, d, nrows int, lr, eps float32) int
TEXT ·adagradRowsAVX2(SB), NOSPLIT, $0-128
	MOVQ w_base+0(FP), SI
	MOVQ acc_base+24(FP), DI
	MOVQ rows_base+48(FP), BX
	MOVQ rows_len+56(FP), CX
	MOVQ grad_base+72(FP), DX
	MOVQ d+96(FP), R11
	SHLQ $2, R11
	MOVQ nrows+104(FP), R10
	VBROADCASTSS lr+112(FP), Y12
	VBROADCASTSS eps+116(FP), Y13
	VXORPS Y11, Y11, Y11
	XORQ R9, R9

arloop:
	CMPQ R9, CX
	JAE  arret
	LEAQ UPF(R9), AX
	CMPQ AX, CX
	JAE  arrow
	MOVL (BX)(AX*4), AX
	IMULQ R11, AX
	PREF4(SI, AX)
	PREF4(DI, AX)

arrow:
	MOVL  (BX)(R9*4), AX
	CMPQ  AX, R10
	JAE   arret
	IMULQ R11, AX
	LEAQ  (AX)(R11*1), R12
	CMPQ  acc_len+32(FP), $0
	JEQ   arsgd

aracol:
	VMOVUPS (DX), Y2
	VMULPS  Y2, Y2, Y3
	VADDPS  (DI)(AX*1), Y3, Y3 // a = acc + g g
	VMOVUPS Y3, (DI)(AX*1)
	VSQRTPS Y3, Y3
	VADDPS  Y13, Y3, Y3
	VMULPS  Y2, Y12, Y4
	VDIVPS  Y3, Y4, Y4
	VMOVUPS (SI)(AX*1), Y0
	VSUBPS  Y4, Y0, Y0
	VMOVUPS Y0, (SI)(AX*1)
	VMOVUPS Y11, (DX)
	ADDQ    $32, DX
	ADDQ    $32, AX
	CMPQ    AX, R12
	JB      aracol
	INCQ    R9
	JMP     arloop

arsgd:
	VMULPS  (DX), Y12, Y4
	VMOVUPS (SI)(AX*1), Y0
	VSUBPS  Y4, Y0, Y0
	VMOVUPS Y0, (SI)(AX*1)
	VMOVUPS Y11, (DX)
	ADDQ    $32, DX
	ADDQ    $32, AX
	CMPQ    AX, R12
	JB      arsgd
	INCQ    R9
	JMP     arloop

arret:
	MOVQ R9, ret+120(FP)
	VZEROUPPER
	RET
