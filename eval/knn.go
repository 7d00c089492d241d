package eval

import "sort"

// DefaultKs is the grid of neighbour counts the kNN probe chooses from on
// the dev split.
var DefaultKs = []int{1, 3, 5, 10, 20}

// Neighbour is one training row near a query: its index and cosine similarity.
type Neighbour struct {
	Row int
	Sim float32
}

// Neighbours returns, for every row of query, the kmax rows of train most
// similar by cosine (most similar first; ties: the lower row). Rows of
// either matrix need not be normalised.
func Neighbours(train, query *Matrix, kmax int) [][]Neighbour {
	tr, q := train.normalized(), query.normalized()
	kmax = min(kmax, tr.Rows)
	out := make([][]Neighbour, q.Rows)
	sims := make([]float32, tr.Rows)
	var post *postings
	if tr.Sparse() {
		post = newPostings(tr)
	}
	for i := range out {
		clear(sims)
		if tr.Sparse() {
			for t := q.Ptr[i]; t < q.Ptr[i+1]; t++ {
				c, v := q.Idx[t], q.Val[t]
				for u := post.start[c]; u < post.start[c+1]; u++ {
					sims[post.row[u]] += v * post.val[u]
				}
			}
		} else {
			d := tr.Cols
			qi := q.Dense[i*d : (i+1)*d]
			for r := range sims {
				tj := tr.Dense[r*d : (r+1)*d]
				var s float32
				for j, v := range qi {
					s += v * tj[j]
				}
				sims[r] = s
			}
		}
		out[i] = topK(sims, kmax)
	}
	return out
}

// postings is a column-major (CSC) copy of a sparse matrix.
type postings struct {
	start []int // column c's entries are start[c]..start[c+1]
	row   []int32
	val   []float32
}

func newPostings(m *Matrix) *postings {
	p := &postings{start: make([]int, m.Cols+1), row: make([]int32, len(m.Idx)), val: make([]float32, len(m.Idx))}
	for _, c := range m.Idx {
		p.start[c+1]++
	}
	for c := 0; c < m.Cols; c++ {
		p.start[c+1] += p.start[c]
	}
	fill := append([]int(nil), p.start[:m.Cols]...)
	for r := 0; r < m.Rows; r++ {
		for t := m.Ptr[r]; t < m.Ptr[r+1]; t++ {
			c := m.Idx[t]
			p.row[fill[c]], p.val[fill[c]] = int32(r), m.Val[t]
			fill[c]++
		}
	}
	return p
}

// topK returns the k largest similarities, largest first, ties by row.
func topK(sims []float32, k int) []Neighbour {
	top := make([]Neighbour, 0, k+1)
	for r, s := range sims {
		if len(top) == k && s <= top[k-1].Sim {
			continue
		}
		pos := sort.Search(len(top), func(i int) bool { return top[i].Sim < s })
		top = append(top, Neighbour{})
		copy(top[pos+1:], top[pos:])
		top[pos] = Neighbour{Row: r, Sim: s}
		if len(top) > k {
			top = top[:k]
		}
	}
	return top
}

// KNNPredict votes among each query's first k neighbours: the class with
// the most neighbours wins; ties go to the higher summed similarity, then
// the lower class index.
func KNNPredict(nbs [][]Neighbour, trainY []int, classes, k int) []int {
	pred := make([]int, len(nbs))
	votes := make([]int, classes)
	sims := make([]float64, classes)
	for i, nb := range nbs {
		clear(votes)
		clear(sims)
		for _, n := range nb[:min(k, len(nb))] {
			votes[trainY[n.Row]]++
			sims[trainY[n.Row]] += float64(n.Sim)
		}
		best := 0
		for c := 1; c < classes; c++ {
			if votes[c] > votes[best] || (votes[c] == votes[best] && sims[c] > sims[best]) {
				best = c
			}
		}
		pred[i] = best
	}
	return pred
}

// SelectK returns the k of ks with the highest dev accuracy (ties: the
// smaller k, ks ascending), given the dev rows' neighbours, and the dev
// accuracy of every k.
func SelectK(devNbs [][]Neighbour, trainY []int, classes int, devY []int, ks []int) (int, []float64) {
	accs := make([]float64, len(ks))
	best, bestAcc := ks[0], -1.0
	for i, k := range ks {
		accs[i] = Accuracy(devY, KNNPredict(devNbs, trainY, classes, k))
		if accs[i] > bestAcc {
			best, bestAcc = k, accs[i]
		}
	}
	return best, accs
}
