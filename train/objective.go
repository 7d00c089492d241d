package train

// objective is one training objective of the Learner. Learner.compute
// runs what every objective shares, once per micro-batch: it featurises
// and pools both views of every example and runs the online and momentum
// encoders forward; then each objective in turn computes its loss on that
// pass and adds its gradient with respect to the online outputs into the
// pass (dz for the normalised embeddings z, dy for the raw outputs y),
// scaled by its weight and 1/AccumSteps; one backward pass then carries the
// sum through the MLP into the embedding rows. Parameters of an objective's
// own (the masked-token output table) are its own: it accumulates their
// gradients in loss and steps them in update.
//
// The contrastive objective (contrastive.go) and the masked-token
// objective (maskedtoken.go) implement it; a new objective is a new file
// and a line in Learner.alloc.
type objective interface {
	// featurise prepares the objective's inputs of example i of the
	// micro-batch, on worker w (the rows of its views are i and b+i).
	featurise(p *pass, w, i int, e *Example)
	// loss computes the objective over the pass, adds its gradients, and
	// records its figures (and its weighted loss) in st.
	loss(p *pass, batch, negatives []Example, st *StepStats)
	// update applies the objective's own parameters' accumulated
	// gradients of sparse shard k; the caller holds the write lock.
	update(k int, lr, eps float32)
}

var (
	_ objective = (*contrastive)(nil)
	_ objective = (*maskedToken)(nil)
)

// pass is the shared forward pass of one micro-batch, as the objectives
// see it. The online rows are nq = dirs x b: row i is view A of example i
// and, when symmetric, row b+i view B; key row i is view B of example i
// (and row b+i view A). sc.cq and sc.ck hold the online and momentum
// encoders' outputs.
type pass struct {
	b, dirs, nq int
	// dz is the loss's gradient with respect to the online rows' z
	// (nq x OutDim), dy with respect to their y (nil when no objective
	// has one).
	dz, dy []float32
	dyBuf  *[]float32
}

// gradY returns dy, allocated and zeroed by its first caller in the pass.
func (p *pass) gradY(od int) []float32 {
	if p.dy == nil {
		*p.dyBuf = grow(*p.dyBuf, p.nq*od)
		p.dy = (*p.dyBuf)[:p.nq*od]
		clear(p.dy)
	}
	return p.dy
}
