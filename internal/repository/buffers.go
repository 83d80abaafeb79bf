package repository

// BufferList keeps byte buffers for reuse. Unlike a sync.Pool it keeps them
// across garbage collections: a backup collects often (GOGC=25), and a
// buffer of several MiB got again from the heap is cleared, or faulted in
// from the kernel, before it is written over. It keeps no more than were
// in use at once, up to its bound.
type BufferList struct {
	size int
	free chan *[]byte
}

// NewBufferList returns a list that keeps at most keep buffers; a new
// buffer has length size.
func NewBufferList(size, keep int) *BufferList {
	return &BufferList{size: size, free: make(chan *[]byte, keep)}
}

// Get returns a kept buffer, or a new one of length size.
func (l *BufferList) Get() *[]byte {
	select {
	case b := <-l.free:
		return b
	default:
		b := make([]byte, l.size)
		return &b
	}
}

// Put gives b back; beyond what the list keeps it is left to the collector.
func (l *BufferList) Put(b *[]byte) {
	select {
	case l.free <- b:
	default:
	}
}
