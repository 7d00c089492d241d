package eval

import "math"

// Accuracy is the fraction of predictions equal to the truth (0 when
// empty).
func Accuracy(truth, pred []int) float64 {
	if len(truth) == 0 {
		return 0
	}
	hit := 0
	for i, y := range truth {
		if pred[i] == y {
			hit++
		}
	}
	return float64(hit) / float64(len(truth))
}

// MacroF1 is the mean over the classes present in truth of
// F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c). A class never predicted scores
// 0; a class predicted but absent from truth is not averaged, though its
// wrong predictions count as false negatives of the true classes.
func MacroF1(truth, pred []int, classes int) float64 {
	tp := make([]int, classes)
	fp := make([]int, classes)
	fn := make([]int, classes)
	present := make([]bool, classes)
	for i, y := range truth {
		present[y] = true
		if pred[i] == y {
			tp[y]++
		} else {
			fn[y]++
			fp[pred[i]]++
		}
	}
	sum, n := 0.0, 0
	for c := range classes {
		if !present[c] {
			continue
		}
		n++
		sum += 2 * float64(tp[c]) / float64(2*tp[c]+fp[c]+fn[c])
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// meanStd returns the mean and the sample standard deviation (n-1 in the
// denominator; 0 for fewer than two values).
func meanStd(xs []float64) (float64, float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	m := 0.0
	for _, x := range xs {
		m += x
	}
	m /= float64(len(xs))
	if len(xs) < 2 {
		return m, 0
	}
	v := 0.0
	for _, x := range xs {
		v += (x - m) * (x - m)
	}
	return m, math.Sqrt(v / float64(len(xs)-1))
}
