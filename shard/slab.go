package shard

import "encoding/binary"

// Entry blocks.
//
// Every list of the graph is stored in blocks: a block holds up to its
// class's capacity of entries, each a 32-bit interned user ID and a 48-bit
// followTime (10 bytes). The IDs of a block sit together (a []uint32 region,
// so a membership scan reads 4 bytes per entry) and the times sit together
// in a 6-bytes-per-entry region. Blocks carry no header: their entry count
// lives in whatever refers to them (a user's setRef or a page entry).
//
// Blocks come from size classes about 20% apart, so a list of n entries
// occupies at most ~1.25n slots, and from large pointer-free chunks, so the
// garbage collector never scans the graph. A block is named by a 32-bit
// handle: class in the top bits, slot in the rest. Handle 0 means "none".

const (
	timeBytes = 6
	maxTime   = 1<<48 - 1 // followTime must fit in 48 bits (until year 10889)

	classShift = 26 // class in bits 26-30; bit 31 marks large lists (see setRef)
	slotMask   = 1<<classShift - 1

	// chunkEntries is the number of entries a class chunk holds, whatever
	// the class: 8192 entries = 80 KiB per chunk.
	chunkEntries = 8192
	// firstChunkEntries is the size a class's newest chunk starts at.
	firstChunkEntries = 512

	// maxBlock is the capacity of the largest class: small lists live in one
	// block, large lists in pages of at most maxBlock entries.
	maxBlock = 128
)

// classCaps are the block capacities, in entries. Index 0 is unused so that
// handle 0 can mean "no block".
var classCaps = [...]int{0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128}

const numClasses = len(classCaps)

// classFor returns the smallest class whose capacity is at least n (n >= 1).
func classFor(n int) int {
	// Linear search over ~20 values is as fast as anything cleverer here.
	for c := 1; c < numClasses; c++ {
		if classCaps[c] >= n {
			return c
		}
	}
	panic("shard: block size over maxBlock")
}

// classMem is the read side of one size class: the chunks that hold its
// blocks. A View keeps copies of these slice headers; the chunks themselves
// are shared and never written where a live View can see.
type classMem struct {
	uids  [][]uint32
	times [][]byte
}

// slabs is the read side of all classes.
type slabs [numClasses]classMem

// blk is a window on one block: len(u) == capacity, len(t) == 6*capacity.
type blk struct {
	u []uint32
	t []byte
}

func (b blk) time(i int) int64 {
	o := i * timeBytes
	return int64(uint64(binary.LittleEndian.Uint32(b.t[o:])) | uint64(binary.LittleEndian.Uint16(b.t[o+4:]))<<32)
}

func (b blk) setTime(i int, t int64) {
	o := i * timeBytes
	binary.LittleEndian.PutUint32(b.t[o:], uint32(t))
	binary.LittleEndian.PutUint16(b.t[o+4:], uint16(uint64(t)>>32))
}

func (b blk) set(i int, uid uint32, t int64) {
	b.u[i] = uid
	b.setTime(i, t)
}

// find returns the index of uid among the first n entries, or -1.
func (b blk) find(n int, uid uint32) int {
	u := b.u[:n]
	for i, v := range u {
		if v == uid {
			return i
		}
	}
	return -1
}

// copyEntries copies n entries from src[si:] to dst[di:] (regions may overlap).
func copyEntries(dst blk, di int, src blk, si, n int) {
	if n <= 0 {
		return
	}
	copy(dst.u[di:di+n], src.u[si:si+n])
	copy(dst.t[di*timeBytes:(di+n)*timeBytes], src.t[si*timeBytes:(si+n)*timeBytes])
}

func (m *slabs) block(h uint32) blk {
	c := int(h >> classShift)
	slot := int(h & slotMask)
	capa := classCaps[c]
	per := chunkEntries / capa
	ch, off := slot/per, (slot%per)*capa
	cm := &m[c]
	return blk{
		u: cm.uids[ch][off : off+capa : off+capa],
		t: cm.times[ch][off*timeBytes : (off+capa)*timeBytes : (off+capa)*timeBytes],
	}
}

// classAlloc is the write side of one size class.
type classAlloc struct {
	gens []uint32 // generation of each slot's current contents
	next uint32   // first never-used slot
	free []uint32 // reusable slots
}

// blockAlloc allocates and frees blocks and tracks their generations for
// copy-on-write. It is owned by a Store.
type blockAlloc struct {
	mem     *slabs
	cls     [numClasses]classAlloc
	pending []uint32 // blocks freed while a View was live
	inUse   int64    // entries of capacity in allocated blocks
}

func (a *blockAlloc) alloc(c int, gen uint32) uint32 {
	ca := &a.cls[c]
	var slot uint32
	if n := len(ca.free); n > 0 {
		slot = ca.free[n-1]
		ca.free = ca.free[:n-1]
		ca.gens[slot] = gen
	} else {
		slot = ca.next
		if slot > slotMask {
			panic("shard: block class exhausted")
		}
		ca.next++
		a.ensureSlot(c, slot)
		ca.gens = append(ca.gens, gen)
	}
	a.inUse += int64(classCaps[c])
	return uint32(c)<<classShift | slot
}

// ensureSlot makes a never-used slot addressable. A class's last chunk
// starts at firstChunkEntries and doubles as it fills, up to chunkEntries,
// so that a Store with few lists (or a class few lists use) does not hold
// 80 KiB per class. A View keeps the chunk it captured, so growing by copy
// never changes what a View reads.
func (a *blockAlloc) ensureSlot(c int, slot uint32) {
	capa := classCaps[c]
	per := uint32(chunkEntries / capa)
	ch, i := slot/per, slot%per
	m := &a.mem[c]
	if i == 0 {
		n := min(per, uint32(max(1, firstChunkEntries/capa))) * uint32(capa)
		m.uids = append(m.uids, make([]uint32, n))
		m.times = append(m.times, make([]byte, n*timeBytes))
		return
	}
	if have := len(m.uids[ch]); int(i+1)*capa > have {
		n := min(per*uint32(capa), uint32(2*have))
		m.uids[ch] = append(make([]uint32, 0, n), m.uids[ch]...)[:n]
		m.times[ch] = append(make([]byte, 0, n*timeBytes), m.times[ch]...)[:n*timeBytes]
	}
}

func (a *blockAlloc) gen(h uint32) uint32 {
	return a.cls[h>>classShift].gens[h&slotMask]
}

// release frees h now, or later if a View may still read it.
func (a *blockAlloc) release(h uint32, deferred bool) {
	if h == 0 {
		return
	}
	a.inUse -= int64(classCaps[h>>classShift])
	if deferred {
		a.pending = append(a.pending, h)
		return
	}
	ca := &a.cls[h>>classShift]
	ca.free = append(ca.free, h&slotMask)
}

// reclaim makes blocks freed during Views reusable. Call only when no View
// is live.
func (a *blockAlloc) reclaim() {
	for _, h := range a.pending {
		ca := &a.cls[h>>classShift]
		ca.free = append(ca.free, h&slotMask)
	}
	a.pending = a.pending[:0]
}

// bytes reports memory held by class chunks.
func (a *blockAlloc) bytes() int64 {
	var n int64
	for c := 1; c < numClasses; c++ {
		for _, u := range a.mem[c].uids {
			n += int64(len(u)) * (4 + timeBytes)
		}
	}
	return n
}

func capOf(h uint32) int { return classCaps[h>>classShift] }
