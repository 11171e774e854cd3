// Package wal is the raft log store of a node: one append-only, segmented
// write-ahead log that holds the raft logs of all the raft groups the node
// runs, one Stream per group, each a raft.LogStore. It is built for write
// throughput: concurrent appends of different groups share one pwrite and
// one fdatasync into a preallocated file (group commit), with no B+tree, no
// free-list and no file-size change to persist.
//
// # Files
//
// The log lives in one directory, which Open locks (flock) against a second
// opener. Segment files are named NNNNNNNNNNNNNNNNNNNN.swal, a zero-padded
// sequence number starting at 1. A segment is preallocated to
// Config.SegmentSize when it is created, with zeros actually written (see
// preallocate for why), and the file and the directory are synced once at
// that point. A request (the records of one call) is never split across
// segments; a segment is made larger than Config.SegmentSize if one request
// needs it. Every write ends with 8 zero bytes, an end marker, so a scan
// stops at the true end of the log.
//
// # Records
//
// Every record carries its stream (see record.go for the byte layout):
//
//	length u32 | crc32c u32 | kind u8 | stream u32 | payload
//
// where length counts the bytes after the crc and the crc covers them.
// Besides entries there are logical deletion markers, because the bytes of
// a stream cannot be erased when other streams' records are interleaved
// with them:
//
//   - DeleteRange writes kindTruncate(newLast) or kindCompact(newFirst)
//     (a full deletion is kindTruncate(0)), durably before it returns;
//   - StoreLogs writes only entry records. An entry that does not continue
//     its stream implies the deletion raft expects of StoreLogs (see
//     Stream.replay), so no marker is needed for it;
//   - relocation (below) writes kindCopy records and a kindReplace marker.
//
// # Guarantees
//
// Per stream: when StoreLogs returns nil, its entries are durable (unless
// Config.NoSync). When DeleteRange returns nil, the deletion is durable: a
// crash cannot bring back deleted entries. A crash in the middle of a call
// leaves each stream in its state before its call in flight, if any, plus a
// prefix (possibly empty) of that call's records. Open never fails because
// of a torn or garbled tail: it keeps the longest valid prefix of the log,
// and logs a warning. It does not tell a torn write from a record corrupted
// in the middle of the log either: the log ends before the first invalid
// record. A missing segment in the middle (which no crash produces) is an
// error rather than a silent loss.
//
// Recovery relies on one invariant: in every segment, every byte after the
// last record is zero. Preallocation makes new segments zero, records are
// never erased in place, and Open zeroes whatever a crashed write left
// after the last valid record. Without it, a later torn write that lost its
// end marker could expose an old record that happens to start exactly
// where the new records end.
//
// # Raft specifics
//
// Stream implements raft.MonotonicLogStore, so raft deletes the whole log
// after installing a snapshot rather than leaving a gap before the next
// entries. FirstIndex and LastIndex behave as raft's InmemStore does for
// the ranges raft deletes, including both returning 0 once everything is
// deleted, after which the stream may restart at any index. A failed write
// or sync is sticky: the Log refuses further changes until it is reopened,
// because after a failed fsync the state of the file is unknown (raft then
// steps down).
//
// # Group commit
//
// StoreLogs and DeleteRange encode their records in the caller's goroutine,
// queue them and wait. A writer goroutine takes everything queued (a
// group), writes it with one pwrite at the end of the active segment and
// starts its fdatasync; a completer goroutine waits for the fdatasyncs in
// order, publishes each group to the streams and wakes its callers. So a
// lone call costs one pwrite and one fdatasync, and N raft groups appending
// at once share one.
//
// Up to Config.SyncDepth groups are in flight: while that many fdatasyncs
// run, new calls queue up and form the next group. Disks, virtual ones
// especially, complete concurrent fdatasyncs of one file in about the time
// of one (measured on the project VM: 850/s one at a time, 3000/s four at a
// time), so a few in flight cut the latency at moderate load, and groups
// still grow with the load once all are busy. A group is published, and
// its callers told, only after every earlier group was: a group's
// fdatasync makes the earlier groups' bytes durable too (they were written
// before it was called), and after a failed one, the later groups fail as
// well. SyncDepth 1 makes it strictly one group at a time.
//
// A group that does not fit in the rest of the active segment continues in
// a new segment. Before the new segment is created, the groups in flight
// are waited for and the group's part in the old segment is written and
// synced, so that a later segment never holds data while an earlier one
// has a torn write (recovery relies on it).
//
// At most one call per stream is in flight (a per-stream mutex, held while
// waiting), so a group holds at most one request per stream, and a crash
// can tear a stream's request only at its end.
//
// # Recovery
//
// Open replays all segments in order, applying every record to its stream
// with Stream.replay, the very function that publishes records during
// normal operation. At the first invalid record (a torn write), the log
// ends: later segments are removed, then the rest of that segment is
// zeroed, restoring the invariant above (the log never erases records, so
// only torn writes can break it). A crash loses only requests that were not
// acknowledged (those of the groups in flight).
//
// # Segment reclamation
//
// Segments are deleted oldest first, each removal made durable (directory
// fsync) before the next, and only while the oldest segment is sealed and
// holds no live entry of any stream (a per-segment count of the live
// entries located there). A stream that is empty, or whose entries are all
// compacted, pins nothing. No checkpoint is needed, because deleting such a
// prefix of the log does not change the outcome of the replay:
//
// Take the state F that replaying the whole log gives, and the state P that
// replaying only the segments after the deleted prefix gives, record by
// record. Within a stream, an entry with a higher index is always located
// further in the log than one with a lower index (appends go to the end,
// deletions keep a contiguous range, and a replacement rewrites the whole
// range in order). So the entries of F located in the deleted prefix form
// the low end of F's range, and P, starting empty, is F without them: an
// entry record that continues F continues P or starts it; one that implies
// a deletion in F implies the same one in P; the markers delete by index
// and do the same in both; a replacement sets both to the same records.
// When the prefix was deleted none of its entries was live, so at the end
// F has none of them and P = F. Any later record keeps P = F: its effect
// depends only on the state, which is the same. The removal order matters:
// replaying a log with a hole, where an old segment survives a deleted
// newer one, could bring back entries that a marker in the deleted segment
// had deleted.
//
// # Relocation
//
// An idle stream that still holds live entries (raft keeps TrailingLogs
// entries after a snapshot, and a quiet group takes no snapshot at all)
// would pin the oldest segment, and with it every later one, forever. So
// when the sealed segments hold more garbage than live entries by two
// segments' worth, the smallest stream (at most 4 SegmentSize of live
// entries) pinning the oldest segment is relocated in the background: its
// live entries are written again at the end of the log as kindCopy records,
// followed by kindReplace(first, last), in requests of at most about 1 MiB
// (so as not to hold up the group commits of the other streams), with no
// other record of the stream in between. On replay, copies are held aside
// and only the kindReplace that follows them makes them the stream's
// entries, all at once; copies that a crash tore before their kindReplace
// are ignored. Before their kindReplace, copies pin nothing, but they are
// newer than the entries they copy, which pin the segments before them, so
// reclamation cannot remove copies whose kindReplace is still to come.
// After it, a segment holding the first copies can be removed once those
// are compacted; the kindReplace then finds only the later copies, which
// are the live ones (see Stream.replay): the argument above, with the
// copies of one relocation counting as entries as soon as they are
// written.
//
// Relocation only starts when the garbage exceeds the live entries, so it
// never runs while the log is mostly live, the usual case of groups that
// compact at similar rates; and a relocated stream moves to the end of the
// log, so it is not relocated again before the rest of the log has been
// written past it. A stream with more live entries than the limit is left
// where it is until raft compacts it.
//
// # Reads and memory
//
// Per live entry, its segment, offset and length (16 bytes). GetLog is one
// pread of the record, checked against its crc, its stream and its index,
// and does not wait for a concurrent group commit. All segment files stay
// open.
package wal
