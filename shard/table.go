package shard

// Copy-on-write tables.
//
// The per-user records and the large-list headers live in fixed-size chunks
// that carry the generation in which they were last copied. A View copies
// only the chunk pointer slice (a few thousand pointers at a million users);
// a writer that wants to change a chunk whose generation a live View shares
// copies that chunk first. This is what makes a snapshot's capture cost
// independent of the graph's size.

const (
	tableChunkBits = 8
	tableChunkSize = 1 << tableChunkBits
)

type tableChunk[T any] struct {
	gen   uint32
	items [tableChunkSize]T
}

// table is a growable array of T in copy-on-write chunks.
type table[T any] struct {
	chunks []*tableChunk[T]
}

func (t *table[T]) get(i uint32) *T {
	return &t.chunks[i>>tableChunkBits].items[i&(tableChunkSize-1)]
}

// mut returns a writable *T, copying its chunk first if the chunk is shared
// with a live View (its generation is not newer than frozen).
func (t *table[T]) mut(i uint32, gen, frozen uint32, shared bool) *T {
	c := t.chunks[i>>tableChunkBits]
	if shared && c.gen <= frozen {
		nc := new(tableChunk[T])
		*nc = *c
		nc.gen = gen
		t.chunks[i>>tableChunkBits] = nc
		c = nc
	}
	return &c.items[i&(tableChunkSize-1)]
}

// ensure makes index i addressable.
func (t *table[T]) ensure(i uint32, gen uint32) {
	for int(i>>tableChunkBits) >= len(t.chunks) {
		t.chunks = append(t.chunks, &tableChunk[T]{gen: gen})
	}
}

// clone copies the chunk pointer slice for a View.
func (t *table[T]) clone() table[T] {
	return table[T]{chunks: append([]*tableChunk[T](nil), t.chunks...)}
}
