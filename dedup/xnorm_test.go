package dedup

import (
	"testing"
)

func BenchmarkXNormSplit(b *testing.B) {
	texts := loadStream(b)
	var asc, non []string
	for _, t := range texts {
		if isASCII(t) {
			asc = append(asc, t)
		} else {
			non = append(non, t)
		}
	}
	for name, set := range map[string][]string{"ascii": asc, "non": non} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(meanBytes(set))
			var n normalizer
			var buf []byte
			for i := 0; i < b.N; i++ {
				buf = n.append(buf[:0], set[i%len(set)], PunctStrip)
			}
		})
	}
}
