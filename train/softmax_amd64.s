//go:build !purego

#include "textflag.h"

// Kernels of the contrastive loss's per-anchor softmax (see loss.go: rowMax,
// expSum, scaleRow). Each gives the bits of its Go reference: the same
// float32 operations in the same order per element, no fused multiply-add.

// expc holds the constants of expf, each repeated in 8 lanes:
//	0 -87 (below: 0)         32 88 (above: +Inf)      64 log2(e)
//	96 0.5                   128 ln 2 high part       160 ln 2 low part (negated)
//	192..352 the six polynomial coefficients, highest degree first
//	384 1                    416 127 (int32 exponent bias)
//	448 +Inf                 480 -Inf
//	512 -88, 544 89: the arguments are clamped to these before the range
//	reduction, so that the lanes set to 0 or +Inf stay finite until then.
DATA expc<>+0(SB)/4, $0xc2ae0000
DATA expc<>+4(SB)/4, $0xc2ae0000
DATA expc<>+8(SB)/4, $0xc2ae0000
DATA expc<>+12(SB)/4, $0xc2ae0000
DATA expc<>+16(SB)/4, $0xc2ae0000
DATA expc<>+20(SB)/4, $0xc2ae0000
DATA expc<>+24(SB)/4, $0xc2ae0000
DATA expc<>+28(SB)/4, $0xc2ae0000
DATA expc<>+32(SB)/4, $0x42b00000
DATA expc<>+36(SB)/4, $0x42b00000
DATA expc<>+40(SB)/4, $0x42b00000
DATA expc<>+44(SB)/4, $0x42b00000
DATA expc<>+48(SB)/4, $0x42b00000
DATA expc<>+52(SB)/4, $0x42b00000
DATA expc<>+56(SB)/4, $0x42b00000
DATA expc<>+60(SB)/4, $0x42b00000
DATA expc<>+64(SB)/4, $0x3fb8aa3b
DATA expc<>+68(SB)/4, $0x3fb8aa3b
DATA expc<>+72(SB)/4, $0x3fb8aa3b
DATA expc<>+76(SB)/4, $0x3fb8aa3b
DATA expc<>+80(SB)/4, $0x3fb8aa3b
DATA expc<>+84(SB)/4, $0x3fb8aa3b
DATA expc<>+88(SB)/4, $0x3fb8aa3b
DATA expc<>+92(SB)/4, $0x3fb8aa3b
DATA expc<>+96(SB)/4, $0x3f000000
DATA expc<>+100(SB)/4, $0x3f000000
DATA expc<>+104(SB)/4, $0x3f000000
DATA expc<>+108(SB)/4, $0x3f000000
DATA expc<>+112(SB)/4, $0x3f000000
DATA expc<>+116(SB)/4, $0x3f000000
DATA expc<>+120(SB)/4, $0x3f000000
DATA expc<>+124(SB)/4, $0x3f000000
DATA expc<>+128(SB)/4, $0x3f318000
DATA expc<>+132(SB)/4, $0x3f318000
DATA expc<>+136(SB)/4, $0x3f318000
DATA expc<>+140(SB)/4, $0x3f318000
DATA expc<>+144(SB)/4, $0x3f318000
DATA expc<>+148(SB)/4, $0x3f318000
DATA expc<>+152(SB)/4, $0x3f318000
DATA expc<>+156(SB)/4, $0x3f318000
DATA expc<>+160(SB)/4, $0xb95e8083
DATA expc<>+164(SB)/4, $0xb95e8083
DATA expc<>+168(SB)/4, $0xb95e8083
DATA expc<>+172(SB)/4, $0xb95e8083
DATA expc<>+176(SB)/4, $0xb95e8083
DATA expc<>+180(SB)/4, $0xb95e8083
DATA expc<>+184(SB)/4, $0xb95e8083
DATA expc<>+188(SB)/4, $0xb95e8083
DATA expc<>+192(SB)/4, $0x39506967
DATA expc<>+196(SB)/4, $0x39506967
DATA expc<>+200(SB)/4, $0x39506967
DATA expc<>+204(SB)/4, $0x39506967
DATA expc<>+208(SB)/4, $0x39506967
DATA expc<>+212(SB)/4, $0x39506967
DATA expc<>+216(SB)/4, $0x39506967
DATA expc<>+220(SB)/4, $0x39506967
DATA expc<>+224(SB)/4, $0x3ab743ce
DATA expc<>+228(SB)/4, $0x3ab743ce
DATA expc<>+232(SB)/4, $0x3ab743ce
DATA expc<>+236(SB)/4, $0x3ab743ce
DATA expc<>+240(SB)/4, $0x3ab743ce
DATA expc<>+244(SB)/4, $0x3ab743ce
DATA expc<>+248(SB)/4, $0x3ab743ce
DATA expc<>+252(SB)/4, $0x3ab743ce
DATA expc<>+256(SB)/4, $0x3c088908
DATA expc<>+260(SB)/4, $0x3c088908
DATA expc<>+264(SB)/4, $0x3c088908
DATA expc<>+268(SB)/4, $0x3c088908
DATA expc<>+272(SB)/4, $0x3c088908
DATA expc<>+276(SB)/4, $0x3c088908
DATA expc<>+280(SB)/4, $0x3c088908
DATA expc<>+284(SB)/4, $0x3c088908
DATA expc<>+288(SB)/4, $0x3d2aa9c1
DATA expc<>+292(SB)/4, $0x3d2aa9c1
DATA expc<>+296(SB)/4, $0x3d2aa9c1
DATA expc<>+300(SB)/4, $0x3d2aa9c1
DATA expc<>+304(SB)/4, $0x3d2aa9c1
DATA expc<>+308(SB)/4, $0x3d2aa9c1
DATA expc<>+312(SB)/4, $0x3d2aa9c1
DATA expc<>+316(SB)/4, $0x3d2aa9c1
DATA expc<>+320(SB)/4, $0x3e2aaaaa
DATA expc<>+324(SB)/4, $0x3e2aaaaa
DATA expc<>+328(SB)/4, $0x3e2aaaaa
DATA expc<>+332(SB)/4, $0x3e2aaaaa
DATA expc<>+336(SB)/4, $0x3e2aaaaa
DATA expc<>+340(SB)/4, $0x3e2aaaaa
DATA expc<>+344(SB)/4, $0x3e2aaaaa
DATA expc<>+348(SB)/4, $0x3e2aaaaa
DATA expc<>+352(SB)/4, $0x3f000000
DATA expc<>+356(SB)/4, $0x3f000000
DATA expc<>+360(SB)/4, $0x3f000000
DATA expc<>+364(SB)/4, $0x3f000000
DATA expc<>+368(SB)/4, $0x3f000000
DATA expc<>+372(SB)/4, $0x3f000000
DATA expc<>+376(SB)/4, $0x3f000000
DATA expc<>+380(SB)/4, $0x3f000000
DATA expc<>+384(SB)/4, $0x3f800000
DATA expc<>+388(SB)/4, $0x3f800000
DATA expc<>+392(SB)/4, $0x3f800000
DATA expc<>+396(SB)/4, $0x3f800000
DATA expc<>+400(SB)/4, $0x3f800000
DATA expc<>+404(SB)/4, $0x3f800000
DATA expc<>+408(SB)/4, $0x3f800000
DATA expc<>+412(SB)/4, $0x3f800000
DATA expc<>+416(SB)/4, $0x0000007f
DATA expc<>+420(SB)/4, $0x0000007f
DATA expc<>+424(SB)/4, $0x0000007f
DATA expc<>+428(SB)/4, $0x0000007f
DATA expc<>+432(SB)/4, $0x0000007f
DATA expc<>+436(SB)/4, $0x0000007f
DATA expc<>+440(SB)/4, $0x0000007f
DATA expc<>+444(SB)/4, $0x0000007f
DATA expc<>+448(SB)/4, $0x7f800000
DATA expc<>+452(SB)/4, $0x7f800000
DATA expc<>+456(SB)/4, $0x7f800000
DATA expc<>+460(SB)/4, $0x7f800000
DATA expc<>+464(SB)/4, $0x7f800000
DATA expc<>+468(SB)/4, $0x7f800000
DATA expc<>+472(SB)/4, $0x7f800000
DATA expc<>+476(SB)/4, $0x7f800000
DATA expc<>+480(SB)/4, $0xff800000
DATA expc<>+484(SB)/4, $0xff800000
DATA expc<>+488(SB)/4, $0xff800000
DATA expc<>+492(SB)/4, $0xff800000
DATA expc<>+496(SB)/4, $0xff800000
DATA expc<>+500(SB)/4, $0xff800000
DATA expc<>+504(SB)/4, $0xff800000
DATA expc<>+508(SB)/4, $0xff800000
DATA expc<>+512(SB)/4, $0xc2b00000
DATA expc<>+516(SB)/4, $0xc2b00000
DATA expc<>+520(SB)/4, $0xc2b00000
DATA expc<>+524(SB)/4, $0xc2b00000
DATA expc<>+528(SB)/4, $0xc2b00000
DATA expc<>+532(SB)/4, $0xc2b00000
DATA expc<>+536(SB)/4, $0xc2b00000
DATA expc<>+540(SB)/4, $0xc2b00000
DATA expc<>+544(SB)/4, $0x42b20000
DATA expc<>+548(SB)/4, $0x42b20000
DATA expc<>+552(SB)/4, $0x42b20000
DATA expc<>+556(SB)/4, $0x42b20000
DATA expc<>+560(SB)/4, $0x42b20000
DATA expc<>+564(SB)/4, $0x42b20000
DATA expc<>+568(SB)/4, $0x42b20000
DATA expc<>+572(SB)/4, $0x42b20000
GLOBL expc<>(SB), RODATA|NOPTR, $576

// tailmask is 8 lanes of ones, then 8 of zeros: the 8 lanes at
// tailmask+32-4k select the first k elements of a vector (k = 0..7).
DATA tailmask<>+0(SB)/4, $0xffffffff
DATA tailmask<>+4(SB)/4, $0xffffffff
DATA tailmask<>+8(SB)/4, $0xffffffff
DATA tailmask<>+12(SB)/4, $0xffffffff
DATA tailmask<>+16(SB)/4, $0xffffffff
DATA tailmask<>+20(SB)/4, $0xffffffff
DATA tailmask<>+24(SB)/4, $0xffffffff
DATA tailmask<>+28(SB)/4, $0xffffffff
DATA tailmask<>+32(SB)/4, $0x00000000
DATA tailmask<>+36(SB)/4, $0x00000000
DATA tailmask<>+40(SB)/4, $0x00000000
DATA tailmask<>+44(SB)/4, $0x00000000
DATA tailmask<>+48(SB)/4, $0x00000000
DATA tailmask<>+52(SB)/4, $0x00000000
DATA tailmask<>+56(SB)/4, $0x00000000
DATA tailmask<>+60(SB)/4, $0x00000000
GLOBL tailmask<>(SB), RODATA|NOPTR, $64

// expf of 8 lanes, in the operation order of expf in loss.go, runs in three
// stages, so that the loop can overlap the last stage of one group of 8
// lanes with the middle one of the next and the first of the one after: a
// group's dependency chain is too long for the out-of-order window alone.
// Y8 = -88, Y9 = 89, Y14 = the offset, Y15 = the scale throughout.
//
// EXPA starts the lanes x = src*Y15 - Y14 (src a memory operand or a
// register other than Y0-Y3 and Y10-Y11): it leaves the reduced argument r
// in Y10 and in Y11 the factor 2^n, or 0 where x is below -87, or +Inf
// where it is above 88. x is clamped to [-88, 89] first so that those lanes
// stay finite until the product with the factor; a NaN stays NaN. The floor
// of t = x*log2(e) + 0.5 is taken directly (VROUNDPS), which is the value
// that expf gets by truncating and correcting. It clobbers Y0-Y3.
#define EXPA(src) \
	VMULPS     src, Y15, Y10; \
	VSUBPS     Y14, Y10, Y10; \
	VCMPPS     $0x01, expc<>+0(SB), Y10, Y1; \
	VCMPPS     $0x1e, expc<>+32(SB), Y10, Y2; \
	VMAXPS     Y10, Y8, Y10; \
	VMINPS     Y10, Y9, Y10; \
	VMULPS     expc<>+64(SB), Y10, Y3; \
	VADDPS     expc<>+96(SB), Y3, Y3; \
	VROUNDPS   $0x09, Y3, Y3; \
	VCVTPS2DQ  Y3, Y11; \
	VMULPS     expc<>+128(SB), Y3, Y0; \
	VSUBPS     Y0, Y10, Y10; \
	VMULPS     expc<>+160(SB), Y3, Y0; \
	VSUBPS     Y0, Y10, Y10; \
	VPADDD     expc<>+416(SB), Y11, Y11; \
	VPSLLD     $23, Y11, Y11; \
	VANDNPS    Y11, Y1, Y11; \
	VBLENDVPS  Y2, expc<>+448(SB), Y11, Y11

// EXPB evaluates the polynomial p of r = Y10 into Y4 and moves r and the
// factor 2^n on to Y5 and Y6.
#define EXPB \
	VMULPS     expc<>+192(SB), Y10, Y4; \
	VADDPS     expc<>+224(SB), Y4, Y4; \
	VMULPS     Y10, Y4, Y4; \
	VADDPS     expc<>+256(SB), Y4, Y4; \
	VMULPS     Y10, Y4, Y4; \
	VADDPS     expc<>+288(SB), Y4, Y4; \
	VMULPS     Y10, Y4, Y4; \
	VADDPS     expc<>+320(SB), Y4, Y4; \
	VMULPS     Y10, Y4, Y4; \
	VADDPS     expc<>+352(SB), Y4, Y4; \
	VMOVAPS    Y10, Y5; \
	VMOVAPS    Y11, Y6

// EXPC finishes: Y7 = (p*r*r + r + 1) * 2^n.
#define EXPC \
	VMULPS     Y5, Y4, Y7; \
	VMULPS     Y5, Y7, Y7; \
	VADDPS     Y5, Y7, Y7; \
	VADDPS     expc<>+384(SB), Y7, Y7; \
	VMULPS     Y6, Y7, Y7

// SUM8 adds the 8 float32 lanes of Y7, widened, to the float64 partial sums
// Y12 (lanes 0-3) and Y13 (lanes 4-7). It clobbers Y0.
#define SUM8 \
	VCVTPS2PD    X7, Y0; \
	VADDPD       Y0, Y12, Y12; \
	VEXTRACTF128 $1, Y7, X0; \
	VCVTPS2PD    X0, Y0; \
	VADDPD       Y0, Y13, Y13

// SUM8M is SUM8 of the 8 lanes just stored at lo (hi = lo+16): reading
// them back from memory saves the lane extraction.
#define SUM8M(lo, hi) \
	VCVTPS2PD    lo, Y0; \
	VADDPD       Y0, Y12, Y12; \
	VCVTPS2PD    hi, Y0; \
	VADDPD       Y0, Y13, Y13

// func expSumAVX2(ds, s []float32, scale, sub float32, lanes *[8]float64)
TEXT ·expSumAVX2(SB), NOSPLIT, $0-64
	MOVQ         ds_base+0(FP), DI
	MOVQ         s_base+24(FP), SI
	MOVQ         s_len+32(FP), CX
	MOVQ         lanes+56(FP), DX
	VBROADCASTSS scale+48(FP), Y15
	VBROADCASTSS sub+52(FP), Y14
	VMOVUPD      0(DX), Y12
	VMOVUPD      32(DX), Y13
	VMOVUPS      expc<>+512(SB), Y8
	VMOVUPS      expc<>+544(SB), Y9
	MOVQ         CX, BX
	ANDQ         $-8, BX // whole groups of 8
	XORQ         AX, AX
	CMPQ         BX, $0
	JEQ          exptail
	EXPA((SI))
	ADDQ         $8, AX
	CMPQ         AX, BX
	JGE          expdrain1
	EXPB
	EXPA((SI)(AX*4))
	ADDQ         $8, AX
	CMPQ         AX, BX
	JGE          expdrain2

	// Finish group AX-16, continue AX-8, start AX.
exploop:
	EXPC
	VMOVUPS Y7, -64(DI)(AX*4)
	SUM8M(-64(DI)(AX*4), -48(DI)(AX*4))
	EXPB
	EXPA((SI)(AX*4))
	ADDQ    $8, AX
	CMPQ    AX, BX
	JLT     exploop

expdrain2:
	EXPC
	VMOVUPS Y7, -64(DI)(AX*4)
	SUM8M(-64(DI)(AX*4), -48(DI)(AX*4))

expdrain1:
	EXPB
	EXPC
	VMOVUPS Y7, -32(DI)(AX*4)
	SUM8M(-32(DI)(AX*4), -16(DI)(AX*4))

exptail:
	SUBQ       BX, CX // 0..7 left
	JEQ        expdone
	LEAQ       tailmask<>+32(SB), R8
	SHLQ       $2, CX
	SUBQ       CX, R8 // CX ones, then zeros
	VMOVUPS    (R8), Y1
	VMASKMOVPS (SI)(AX*4), Y1, Y4
	EXPA(Y4)
	EXPB
	EXPC
	VANDPS     (R8), Y7, Y7 // +0 in the lanes past the end
	VMOVUPS    (R8), Y1
	VMASKMOVPS Y7, Y1, (DI)(AX*4)
	SUM8

expdone:
	VMOVUPD Y12, 0(DX)
	VMOVUPD Y13, 32(DX)
	VZEROUPPER
	RET

// maxAVX2 keeps four vectors of running maxima, then reduces them.
//
// func maxAVX2(s []float32) float32
TEXT ·maxAVX2(SB), NOSPLIT, $0-28
	MOVQ    s_base+0(FP), SI
	MOVQ    s_len+8(FP), CX
	VMOVUPS expc<>+480(SB), Y0
	VMOVAPS Y0, Y1
	VMOVAPS Y0, Y2
	VMOVAPS Y0, Y3
	VMOVAPS Y0, Y8
	XORQ    AX, AX
	MOVQ    CX, BX
	ANDQ    $-32, BX
	JEQ     max8

	// acc = v > acc ? v : acc keeps the accumulator when v is NaN.
max32:
	VMOVUPS (SI)(AX*4), Y4
	VMOVUPS 32(SI)(AX*4), Y5
	VMOVUPS 64(SI)(AX*4), Y6
	VMOVUPS 96(SI)(AX*4), Y7
	VMAXPS  Y0, Y4, Y0
	VMAXPS  Y1, Y5, Y1
	VMAXPS  Y2, Y6, Y2
	VMAXPS  Y3, Y7, Y3
	ADDQ    $32, AX
	CMPQ    AX, BX
	JLT     max32

max8:
	MOVQ CX, BX
	ANDQ $-8, BX
	CMPQ AX, BX
	JGE  maxtail

max8loop:
	VMOVUPS (SI)(AX*4), Y4
	VMAXPS  Y0, Y4, Y0
	ADDQ    $8, AX
	CMPQ    AX, BX
	JLT     max8loop

maxtail:
	SUBQ       BX, CX
	JEQ        maxdone
	LEAQ       tailmask<>+32(SB), R8
	SHLQ       $2, CX
	SUBQ       CX, R8
	VMOVUPS    (R8), Y5
	VMASKMOVPS (SI)(AX*4), Y5, Y4
	VBLENDVPS  Y5, Y4, Y8, Y4 // -Inf past the end
	VMAXPS     Y0, Y4, Y0

maxdone:
	VMAXPS       Y1, Y0, Y0
	VMAXPS       Y3, Y2, Y2
	VMAXPS       Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0x4e, X0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0xb1, X0, X1
	VMAXPS       X1, X0, X0
	VXORPS       X1, X1, X1
	VADDSS       X1, X0, X0 // -0 becomes +0
	MOVSS        X0, ret+24(FP)
	VZEROUPPER
	RET

// scaleAVX2 multiplies in place, 32 elements at a time, then 8, then the
// masked rest.
//
// func scaleAVX2(x []float32, c float32)
TEXT ·scaleAVX2(SB), NOSPLIT, $0-28
	MOVQ         x_base+0(FP), SI
	MOVQ         x_len+8(FP), CX
	VBROADCASTSS c+24(FP), Y15
	XORQ         AX, AX
	MOVQ         CX, BX
	ANDQ         $-32, BX
	JEQ          scale8

scale32:
	VMULPS  (SI)(AX*4), Y15, Y0
	VMULPS  32(SI)(AX*4), Y15, Y1
	VMULPS  64(SI)(AX*4), Y15, Y2
	VMULPS  96(SI)(AX*4), Y15, Y3
	VMOVUPS Y0, (SI)(AX*4)
	VMOVUPS Y1, 32(SI)(AX*4)
	VMOVUPS Y2, 64(SI)(AX*4)
	VMOVUPS Y3, 96(SI)(AX*4)
	ADDQ    $32, AX
	CMPQ    AX, BX
	JLT     scale32

scale8:
	MOVQ CX, BX
	ANDQ $-8, BX
	CMPQ AX, BX
	JGE  scaletail

scale8loop:
	VMULPS  (SI)(AX*4), Y15, Y0
	VMOVUPS Y0, (SI)(AX*4)
	ADDQ    $8, AX
	CMPQ    AX, BX
	JLT     scale8loop

scaletail:
	SUBQ       BX, CX
	JEQ        scaledone
	LEAQ       tailmask<>+32(SB), R8
	SHLQ       $2, CX
	SUBQ       CX, R8
	VMOVUPS    (R8), Y5
	VMASKMOVPS (SI)(AX*4), Y5, Y0
	VMULPS     Y0, Y15, Y0
	VMASKMOVPS Y0, Y5, (SI)(AX*4)

scaledone:
	VZEROUPPER
	RET
