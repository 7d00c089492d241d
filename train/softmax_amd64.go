//go:build !purego

package train

// maxAVX2 is rowMaxGo with 256-bit lanes.
//
//go:noescape
func maxAVX2(s []float32) float32

// expSumAVX2 is expSumGo eight lanes at a time; len(ds) >= len(s).
//
//go:noescape
func expSumAVX2(ds, s []float32, scale, sub float32, lanes *[8]float64)

// scaleAVX2 is scaleRowGo with 256-bit lanes.
//
//go:noescape
func scaleAVX2(x []float32, c float32)
