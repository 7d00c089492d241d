package sampler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Serve accepts connections on ln and streams batches from src to each
// client as an Arrow IPC stream (Schema, then one record per batch). src
// is shared: each batch goes to one client only, and a batch whose write
// fails (the client went away) goes to the next client that asks. Batches
// already in a client's socket buffers when it disconnects are lost with
// it. Serve closes ln and every connection when ctx is done and returns
// nil then; it returns src's error (other than ctx's) after closing
// everything.
func Serve(ctx context.Context, ln net.Listener, src Source, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	h := &hub{src: src, turn: make(chan struct{}, 1)}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	defer stop()
	var acceptErr error
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() == nil {
				acceptErr = fmt.Errorf("sampler: accept: %w", err)
				cancel(acceptErr)
			}
			break
		}
		mu.Lock()
		if ctx.Err() != nil {
			mu.Unlock()
			c.Close()
			break
		}
		conns[c] = true
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				c.Close()
			}()
			log.Info("sampler client connected", "remote", c.RemoteAddr().String())
			n, err := h.stream(ctx, c)
			switch {
			case err == nil || ctx.Err() != nil:
			case errors.Is(err, errSource):
				cancel(err)
			default:
				log.Info("sampler client gone", "remote", c.RemoteAddr().String(), "batches", n, "err", err)
			}
		}()
	}
	cancel(nil)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return acceptErr
}

var errSource = errors.New("sampler: source failed")

// hub hands the batches of one source to many clients, one at a time.
type hub struct {
	src     Source
	turn    chan struct{} // a token: who holds it may call src.Next
	mu      sync.Mutex
	pending []*Batch // batches a client failed to take
}

func (h *hub) next(ctx context.Context) (*Batch, error) {
	h.mu.Lock()
	if len(h.pending) > 0 {
		b := h.pending[0]
		h.pending = h.pending[1:]
		h.mu.Unlock()
		return b, nil
	}
	h.mu.Unlock()
	select {
	case h.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-h.turn }()
	b, err := h.src.Next(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %w", errSource, err)
	}
	return b, nil
}

func (h *hub) giveBack(b *Batch) {
	h.mu.Lock()
	h.pending = append(h.pending, b)
	h.mu.Unlock()
}

// stream writes batches to one client until it fails or ctx is done.
func (h *hub) stream(ctx context.Context, c net.Conn) (int, error) {
	w := ipc.NewWriter(c, ipc.WithSchema(Schema), ipc.WithAllocator(memory.DefaultAllocator))
	defer w.Close()
	n := 0
	for {
		b, err := h.next(ctx)
		if err != nil {
			return n, err
		}
		rec := b.Record()
		err = w.Write(rec)
		rec.Release()
		if err != nil {
			h.giveBack(b)
			return n, err
		}
		n++
	}
}

// Remote reads batches from a sampler served by Serve (thresher sample).
// Its methods must not be called concurrently.
type Remote struct {
	conn net.Conn
	rd   *ipc.Reader
	err  error
}

// Dial connects to a sampler at addr (host:port).
func Dial(ctx context.Context, addr string) (*Remote, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sampler: dial %s: %w", addr, err)
	}
	return &Remote{conn: c}, nil
}

// Next reads the next batch. When ctx ends during a read the connection
// is unusable afterwards: Next keeps returning the error; Close it.
func (r *Remote) Next(ctx context.Context) (*Batch, error) {
	if r.err != nil {
		return nil, r.err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = r.conn.SetReadDeadline(time.Unix(1, 0)) })
	b, err := r.read()
	if !stop() { // the read deadline is set: the connection is spent
		if err != nil {
			err = ctx.Err()
		} else {
			r.err = ctx.Err()
		}
	}
	if err != nil {
		r.err = err
		return nil, err
	}
	return b, nil
}

func (r *Remote) read() (b *Batch, err error) {
	defer func() {
		if p := recover(); p != nil {
			b, err = nil, fmt.Errorf("%w: malformed IPC stream: %v", ErrFormat, p)
		}
	}()
	if r.rd == nil {
		rd, err := newIPCReader(r.conn, maxIPCBody)
		if err != nil {
			return nil, fmt.Errorf("sampler: read from %s: %w", r.conn.RemoteAddr(), err)
		}
		r.rd = rd
	}
	if !r.rd.Next() {
		if err := r.rd.Err(); err != nil {
			return nil, fmt.Errorf("sampler: read from %s: %w", r.conn.RemoteAddr(), err)
		}
		return nil, fmt.Errorf("sampler: read from %s: %w", r.conn.RemoteAddr(), io.EOF)
	}
	return FromRecord(r.rd.RecordBatch())
}

// Close closes the connection.
func (r *Remote) Close() error {
	if r.rd != nil {
		r.rd.Release()
		r.rd = nil
	}
	if r.err == nil {
		r.err = net.ErrClosed
	}
	return r.conn.Close()
}

// Limits on what a Remote reads: a message's metadata and body.
const (
	maxIPCMetadata = 16 << 20
	maxIPCBody     = 1 << 30
)

// newIPCReader reads a stream with limits on message sizes (ipc.NewReader
// does not pass its size options on to the message reader it makes).
func newIPCReader(r io.Reader, bodyLimit int64) (*ipc.Reader, error) {
	opts := []ipc.Option{ipc.WithAllocator(cappedAllocator{memory.DefaultAllocator, int(bodyLimit)}),
		ipc.WithMetadataSizeLimit(maxIPCMetadata), ipc.WithBodySizeLimit(bodyLimit)}
	return ipc.NewReaderFromMessageReader(ipc.NewMessageReader(r, opts...), opts...)
}

// cappedAllocator refuses (panics, which the readers recover) allocations
// above a limit: arrow-go sizes some buffers by lengths read from the
// stream before checking them against the message body.
type cappedAllocator struct {
	memory.Allocator
	limit int
}

func (a cappedAllocator) Allocate(size int) []byte {
	if size > a.limit || size < 0 {
		panic(fmt.Sprintf("allocation of %d bytes above the limit of %d", size, a.limit))
	}
	return a.Allocator.Allocate(size)
}

func (a cappedAllocator) Reallocate(size int, b []byte) []byte {
	if size > a.limit || size < 0 {
		panic(fmt.Sprintf("allocation of %d bytes above the limit of %d", size, a.limit))
	}
	return a.Allocator.Reallocate(size, b)
}

// decodeStream decodes every batch of an IPC stream as a Remote does, with
// a limit on message bodies; for tests.
func decodeStream(rd io.Reader, bodyLimit int64) (out []*Batch, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("%w: malformed IPC stream: %v", ErrFormat, p)
		}
	}()
	r, err := newIPCReader(rd, bodyLimit)
	if err != nil {
		return nil, err
	}
	defer r.Release()
	for r.Next() {
		b, err := FromRecord(r.RecordBatch())
		if err != nil {
			return out, err
		}
		out = append(out, b)
	}
	return out, r.Err()
}
