//go:build !amd64 || purego

package train

// Without assembly haveAVX2 is false and these are never called.

func maxAVX2(s []float32) float32 { panic("train: maxAVX2 without assembly") }

func expSumAVX2(ds, s []float32, scale, sub float32, lanes *[8]float64) {
	panic("train: expSumAVX2 without assembly")
}

func scaleAVX2(x []float32, c float32) { panic("train: scaleAVX2 without assembly") }
