package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/internal/gossipkey"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
)

// Gossip encryption.
//
// With a keyring, memberlist encrypts every gossip message, UDP and TCP,
// with AES-GCM under the keyring's primary key, and drops any message that
// is not encrypted or does not decrypt under one of the keyring's keys
// (GossipVerifyIncoming and GossipVerifyOutgoing): a process without a key,
// or with another one, can neither join nor read the metadata (addresses,
// shards, cluster ID) the members gossip.
//
// The keyring lives in the data directory (gossipKeyringFile) from the
// moment the node has a key, so that keys rotated at run time (install,
// use, remove: followctl gossip-key) survive a restart. The configured key
// (--gossip-key) only seeds a directory that has no keyring yet. A seed
// key missing from an existing keyring is ignored with a warning rather
// than installed: a key removed because it leaked must not come back
// because a unit file still names it.
//
// Rotation without downtime follows from the keyring's rule: a node
// accepts any of its keys and sends with its primary. Install the new key
// on every node (all still send with the old one), make it the primary on
// every node (each accepts both meanwhile), then remove the old key.

// gossipKeyringFile holds the keyring in the data directory.
const gossipKeyringFile = "gossip-keyring.json"

// MaxGossipKeys bounds a keyring: memberlist tries every key on each
// incoming message that does not decrypt under the primary, and a rotation
// needs two.
const MaxGossipKeys = 8

// Sentinel errors of the keyring operations; all carry codes.InvalidParam,
// and their messages say which rule refused the request.
var (
	// ErrGossipUnencrypted: the node runs without gossip encryption, and
	// it cannot be turned on at run time (a node that starts encrypting
	// is cut off from every member that does not).
	ErrGossipUnencrypted = codes.New(codes.InvalidParam, "gossip encryption is off on this node: every node must be started with --gossip-key to turn it on")
	// ErrGossipKeyUnknown: use of a key the node does not hold.
	ErrGossipKeyUnknown = codes.New(codes.InvalidParam, "the key is not in this node's gossip keyring: install it first")
	// ErrGossipKeyPrimary: removal of the key the node sends with.
	ErrGossipKeyPrimary = codes.New(codes.InvalidParam, "the key is this node's primary gossip key: use another key first")
	// ErrGossipKeyringFull: an install beyond MaxGossipKeys.
	ErrGossipKeyringFull = codes.New(codes.InvalidParam, "the gossip keyring is full (%d keys): remove a key first", MaxGossipKeys)
)

// GossipKey is a key of a node's keyring as it may be shown: by
// fingerprint (gossipkey.Fingerprint), never the key itself.
type GossipKey struct {
	Fingerprint string
	Primary     bool // the key the node encrypts with
}

// keyringFile is the JSON of gossipKeyringFile.
type keyringFile struct {
	Version int `json:"version"`
	// Keys are base64; the first is the primary.
	Keys []string `json:"keys"`
}

// gossipKeyring is a node's keyring: memberlist's, and its durable copy.
// Changes are written to the file first and applied to memberlist after,
// so that a failed write changes nothing.
type gossipKeyring struct {
	dir  string
	log  hclog.Logger
	ring *memberlist.Keyring

	mu   sync.Mutex
	keys [][]byte // the primary first; what the file holds
}

// openGossipKeyring loads the data directory's keyring, or seeds one with
// seed. It returns nil (gossip in the clear) when there is neither.
func openGossipKeyring(dir string, seed []byte, log hclog.Logger) (*gossipKeyring, error) {
	keys, found, err := readKeyring(dir)
	if err != nil {
		return nil, err
	}
	switch {
	case !found && len(seed) == 0:
		log.Warn("gossip is not encrypted: anyone who can reach the gossip port can join and read the members' metadata (set --gossip-key)")
		return nil, nil
	case !found:
		keys = [][]byte{slices.Clone(seed)}
		if err := writeKeyring(dir, keys); err != nil {
			return nil, err
		}
		log.Info("gossip encryption on, keyring created from the configured key", "primary", gossipkey.Fingerprint(seed), "file", gossipKeyringFile)
	case len(seed) > 0 && !slices.ContainsFunc(keys, func(k []byte) bool { return bytes.Equal(k, seed) }):
		log.Warn("the configured gossip key is not in the data directory's keyring: ignoring it (the keyring wins; install it with followctl gossip-key install)",
			"configured", gossipkey.Fingerprint(seed), "primary", gossipkey.Fingerprint(keys[0]), "keys", len(keys))
	default:
		log.Info("gossip encryption on, keyring from the data directory", "primary", gossipkey.Fingerprint(keys[0]), "keys", len(keys))
	}
	ring, err := memberlist.NewKeyring(cloneKeys(keys[1:]), slices.Clone(keys[0]))
	if err != nil {
		return nil, fmt.Errorf("cluster: gossip keyring: %w", err)
	}
	return &gossipKeyring{dir: dir, log: log, ring: ring, keys: keys}, nil
}

// readKeyring reads the data directory's keyring file.
func readKeyring(dir string) (keys [][]byte, found bool, err error) {
	path := filepath.Join(dir, gossipKeyringFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	keys, err = parseKeyring(b)
	if err != nil {
		return nil, false, fmt.Errorf("cluster: %s: %w", path, err)
	}
	return keys, true, nil
}

// parseKeyring decodes the keyring file: version 1, 1 to MaxGossipKeys
// valid keys, none twice (the first is the primary).
func parseKeyring(b []byte) ([][]byte, error) {
	var f keyringFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	if f.Version != 1 || len(f.Keys) == 0 || len(f.Keys) > MaxGossipKeys {
		return nil, fmt.Errorf("want version 1 and 1 to %d keys, got version %d and %d keys", MaxGossipKeys, f.Version, len(f.Keys))
	}
	var keys [][]byte
	for i, s := range f.Keys {
		k, err := gossipkey.Decode(s)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		if slices.ContainsFunc(keys, func(o []byte) bool { return bytes.Equal(o, k) }) {
			return nil, fmt.Errorf("key %d is there twice", i)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// writeKeyring writes the keyring file atomically and durably, readable
// by its owner only (it holds the keys).
func writeKeyring(dir string, keys [][]byte) error {
	f := keyringFile{Version: 1}
	for _, k := range keys {
		f.Keys = append(f.Keys, gossipkey.Encode(k))
	}
	b, _ := json.MarshalIndent(f, "", "  ")
	path := filepath.Join(dir, gossipKeyringFile)
	tmp := path + ".tmp"
	// A leftover temporary file may have other permissions: start anew.
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	if err := syncFile(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncFile(dir)
}

func cloneKeys(keys [][]byte) [][]byte {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = slices.Clone(k)
	}
	return out
}

// list returns the keys by fingerprint, the primary first.
func (g *gossipKeyring) list() []GossipKey {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]GossipKey, len(g.keys))
	for i, k := range g.keys {
		out[i] = GossipKey{Fingerprint: gossipkey.Fingerprint(k), Primary: i == 0}
	}
	return out
}

func (g *gossipKeyring) index(key []byte) int {
	return slices.IndexFunc(g.keys, func(k []byte) bool { return bytes.Equal(k, key) })
}

// install adds key as a secondary key; installing a key held already
// changes nothing.
func (g *gossipKeyring) install(key []byte) error {
	if err := memberlist.ValidateKey(key); err != nil {
		return codes.New(codes.InvalidParam, "gossip key: %v", err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.index(key) >= 0 {
		return nil
	}
	if len(g.keys) >= MaxGossipKeys {
		return ErrGossipKeyringFull
	}
	next := append(cloneKeys(g.keys), slices.Clone(key))
	if err := g.commit(next); err != nil {
		return err
	}
	if err := g.ring.AddKey(slices.Clone(key)); err != nil {
		return codes.New(codes.Internal, "gossip keyring: %v", err)
	}
	g.log.Info("gossip key installed", "key", gossipkey.Fingerprint(key), "keys", len(g.keys))
	return nil
}

// use makes key, which the node must hold, the primary.
func (g *gossipKeyring) use(key []byte) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	i := g.index(key)
	switch {
	case i < 0:
		return ErrGossipKeyUnknown
	case i == 0:
		return nil
	}
	next := cloneKeys(g.keys)
	next[0], next[i] = next[i], next[0]
	if err := g.commit(next); err != nil {
		return err
	}
	if err := g.ring.UseKey(slices.Clone(key)); err != nil {
		return codes.New(codes.Internal, "gossip keyring: %v", err)
	}
	g.log.Info("gossip primary key changed", "primary", gossipkey.Fingerprint(key), "keys", len(g.keys))
	return nil
}

// remove drops key, unless it is the primary; removing a key the node does
// not hold changes nothing.
func (g *gossipKeyring) remove(key []byte) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	i := g.index(key)
	switch {
	case i == 0:
		return ErrGossipKeyPrimary
	case i < 0:
		return nil
	}
	next := slices.Delete(cloneKeys(g.keys), i, i+1)
	if err := g.commit(next); err != nil {
		return err
	}
	// memberlist's RemoveKey shifts the keys inside the slice that
	// GetKeys hands out, which its readers use without the lock. UseKey
	// first replaces that slice with a fresh one, so that the shift lands
	// in a slice no reader has had for longer than this call.
	primary := slices.Clone(g.keys[0])
	if err := g.ring.UseKey(primary); err != nil {
		return codes.New(codes.Internal, "gossip keyring: %v", err)
	}
	if err := g.ring.RemoveKey(slices.Clone(key)); err != nil {
		return codes.New(codes.Internal, "gossip keyring: %v", err)
	}
	g.log.Info("gossip key removed", "key", gossipkey.Fingerprint(key), "keys", len(g.keys))
	return nil
}

// commit makes next the keyring, on disk first. g.mu is held.
func (g *gossipKeyring) commit(next [][]byte) error {
	if err := writeKeyring(g.dir, next); err != nil {
		g.log.Error("cannot write the gossip keyring; nothing changed", "error", err)
		return codes.New(codes.Internal, "writing the gossip keyring: %v", err)
	}
	g.keys = next
	return nil
}

// GossipKeys lists this node's gossip keys, the primary first (by
// fingerprint). It fails with ErrGossipUnencrypted on a node that gossips
// in the clear, and with codes.InvalidParam on a single node.
func (n *Node) GossipKeys() ([]GossipKey, error) {
	g, err := n.keyring()
	if err != nil {
		return nil, err
	}
	return g.list(), nil
}

// InstallGossipKey adds key to this node's keyring as a secondary key:
// the node then accepts gossip encrypted with it. Idempotent.
func (n *Node) InstallGossipKey(key []byte) error {
	return n.withKeyring(func(g *gossipKeyring) error { return g.install(key) })
}

// UseGossipKey makes key, which must be installed, the key this node
// encrypts its gossip with. Every other node must hold it first.
func (n *Node) UseGossipKey(key []byte) error {
	return n.withKeyring(func(g *gossipKeyring) error { return g.use(key) })
}

// RemoveGossipKey drops key from this node's keyring; the primary cannot be
// removed. Removing a key the node does not hold succeeds.
func (n *Node) RemoveGossipKey(key []byte) error {
	return n.withKeyring(func(g *gossipKeyring) error { return g.remove(key) })
}

func (n *Node) withKeyring(fn func(*gossipKeyring) error) error {
	g, err := n.keyring()
	if err != nil {
		return err
	}
	return fn(g)
}

func (n *Node) keyring() (*gossipKeyring, error) {
	switch {
	case !n.cfg.clusterMode():
		return nil, codes.New(codes.InvalidParam, "a single node does not gossip: it has no gossip keyring")
	case n.gossipKeys == nil:
		return nil, ErrGossipUnencrypted
	}
	return n.gossipKeys, nil
}
