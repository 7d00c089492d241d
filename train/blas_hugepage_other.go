//go:build !linux

package train

// hugePages is a no-op outside Linux.
func hugePages([]float32) {}
