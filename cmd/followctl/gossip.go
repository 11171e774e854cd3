package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/internal/gossipkey"
	"github.com/followgraph/followgraph/wire"
)

// gossip-key lists and rotates the gossip encryption keys of every node of
// the cluster. Each node holds its own keyring, so each step goes to each
// node, and the steps that could cut a node off are checked first on all
// of them: use only once every node holds the key, remove only once no
// node sends with it.

var gossipKeyCommand = &command{
	name: "gossip-key", args: "list|install|use|remove [KEY]", minArgs: 1, maxArgs: 2,
	summary: "list or rotate the gossip encryption keys of every node of the cluster",
	about: "Applies one step to the gossip keyring of every node of the cluster (the\n" +
		"members the --addr node's status lists, itself included) and reports each\n" +
		"node's keys afterwards, by fingerprint (the first 8 bytes of the key's\n" +
		"SHA-256, in hex): keys themselves are never shown. KEY is standard base64 of\n" +
		"16, 24 or 32 bytes (openssl rand -base64 32), given as the argument or with\n" +
		"--key-file.\n\n" +
		"  list          show each node's keys; * marks the primary, the key it sends with\n" +
		"  install KEY   add KEY: the node then accepts gossip encrypted with it too\n" +
		"  use KEY       make KEY the primary; refused unless every node holds KEY\n" +
		"  remove KEY    drop KEY; refused while any node uses it as its primary\n\n" +
		"A rotation without downtime is install NEW, use NEW, remove OLD, each step\n" +
		"done on every node before the next. use and remove ask every node first and\n" +
		"change nothing if one does not answer (a dead node too: bring it back, or\n" +
		"wait until gossip forgets it). The exit status is 1 unless every node\n" +
		"answered and took the step. Keys change at run time and persist in each\n" +
		"node's data directory (gossip-keyring.json); followd's --gossip-key only\n" +
		"seeds a data directory without one.",
	example: "followctl gossip-key install $(openssl rand -base64 32)\n  followctl gossip-key use --key-file new.key\n  followctl gossip-key list --json",
	flags: func(fs *flag.FlagSet, o *options) {
		fs.StringVar(&o.gossip.keyFile, "key-file", "", "read KEY from `FILE` (- for stdin) rather than the command line")
	},
	checkArgs: gossipKeyArgs,
	run:       gossipKeyCmd,
}

func init() { commands = append(commands, gossipKeyCommand) }

// gossipKeyOptions are gossip-key's flags and parsed arguments.
type gossipKeyOptions struct {
	keyFile string
	action  wire.GossipKeyAction
	key     []byte
	stdin   io.Reader // --key-file -: os.Stdin unless a test sets it
}

var gossipActions = map[string]wire.GossipKeyAction{
	"list": wire.GossipKeysList, "install": wire.GossipKeysInstall, "use": wire.GossipKeysUse, "remove": wire.GossipKeysRemove,
}

// gossipKeyArgs parses ACTION and KEY (or --key-file).
func gossipKeyArgs(o *options, args []string) error {
	g := &o.gossip
	action, ok := gossipActions[args[0]]
	if !ok {
		return usageErrorf("gossip-key: unknown action %q: want list, install, use or remove", args[0])
	}
	g.action = action
	hasKey := len(args) == 2 || g.keyFile != ""
	switch {
	case action == wire.GossipKeysList && hasKey:
		return usageErrorf("gossip-key list takes no key")
	case action == wire.GossipKeysList:
		return nil
	case len(args) == 2 && g.keyFile != "":
		return usageErrorf("gossip-key %s: give KEY or --key-file, not both", args[0])
	case !hasKey:
		return usageErrorf("gossip-key %s needs a KEY (or --key-file)", args[0])
	}
	text := ""
	if len(args) == 2 {
		text = args[1]
	} else {
		b, err := readKeyArg(g)
		if err != nil {
			return usageErrorf("gossip-key %s: --key-file: %v", args[0], err)
		}
		text = string(b)
	}
	k, err := gossipkey.Decode(text)
	if err != nil {
		// Never echo the input: it may be most of a key.
		return usageErrorf("gossip-key %s: %v", args[0], err)
	}
	g.key = k
	return nil
}

// maxKeyFile bounds what is read of a key file: a key is 44 characters.
const maxKeyFile = 4096

func readKeyArg(g *gossipKeyOptions) ([]byte, error) {
	var r io.Reader
	if g.keyFile == "-" {
		r = g.stdin
		if r == nil {
			r = os.Stdin
		}
	} else {
		f, err := os.Open(g.keyFile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxKeyFile+1))
	if err == nil && len(b) > maxKeyFile {
		err = fmt.Errorf("over %d bytes: not a key file", maxKeyFile)
	}
	return b, err
}

// gossipKeyOutput is gossip-key's result.
type gossipKeyOutput struct {
	Action string `json:"action"`
	// Key is the fingerprint of KEY ("" for list).
	Key   string          `json:"key"`
	OK    bool            `json:"ok"` // every node answered and took the step
	Nodes []gossipKeyNode `json:"nodes"`
	// Refused says why use or remove changed nothing ("" otherwise).
	Refused string `json:"refused,omitempty"`
}

// gossipKeyNode is one node's outcome.
type gossipKeyNode struct {
	Node string        `json:"node"`
	Addr string        `json:"addr"`
	Keys []gossipKeyFP `json:"keys"` // after the step, or as the check found them
	// Code is the server's result code when the node refused or failed
	// the step (0 for other errors: no answer, a dead node).
	Code  uint32 `json:"code,omitempty"`
	Error string `json:"error,omitempty"`
	ring  *wire.GossipKeyring
}

type gossipKeyFP struct {
	Fingerprint string `json:"fingerprint"`
	Primary     bool   `json:"primary"`
}

func gossipKeyCmd(ctx context.Context, c *client.Client, o *options, _ []string) (output, error) {
	g := &o.gossip
	st, err := c.Status(ctx, "")
	if err != nil {
		return nil, err
	}
	out := gossipKeyOutput{Action: g.action.String()}
	if g.key != nil {
		out.Key = gossipkey.Fingerprint(g.key)
	}
	nodes := clusterNodes(st)
	if g.action == wire.GossipKeysUse || g.action == wire.GossipKeysRemove {
		checked := gossipKeysOn(ctx, c, nodes, wire.GossipKeysList, nil)
		if why := gossipPrecheck(g.action, out.Key, checked); why != "" {
			out.Refused, out.Nodes = why, checked
			return out, nil
		}
	}
	out.Nodes = gossipKeysOn(ctx, c, nodes, g.action, g.key)
	out.OK = !slices.ContainsFunc(out.Nodes, func(n gossipKeyNode) bool { return n.Error != "" })
	return out, nil
}

// clusterNodes lists the nodes of st's cluster, sorted by ID: its members
// (st's node among them), or st's node alone on a single node.
func clusterNodes(st client.Status) []wire.MemberStatus {
	ms := slices.Clone(st.Members)
	if !slices.ContainsFunc(ms, func(m wire.MemberStatus) bool { return m.NodeID == st.NodeID }) {
		ms = append(ms, wire.MemberStatus{NodeID: st.NodeID, ClientAddr: st.Addr, Alive: true})
	}
	slices.SortFunc(ms, func(a, b wire.MemberStatus) int { return strings.Compare(a.NodeID, b.NodeID) })
	return ms
}

// gossipKeysOn sends the step to every node, in parallel, and collects
// each node's answer in node order. A dead node is not asked.
func gossipKeysOn(ctx context.Context, c *client.Client, nodes []wire.MemberStatus, action wire.GossipKeyAction, key []byte) []gossipKeyNode {
	out := make([]gossipKeyNode, len(nodes))
	var wg sync.WaitGroup
	for i, m := range nodes {
		out[i] = gossipKeyNode{Node: m.NodeID, Addr: m.ClientAddr, Keys: []gossipKeyFP{}}
		switch {
		case !m.Alive:
			out[i].Error = "dead in gossip: not asked"
			continue
		case m.ClientAddr == "":
			out[i].Error = "no client address in gossip"
			continue
		}
		wg.Go(func() {
			ring, err := c.GossipKeys(ctx, m.ClientAddr, action, key)
			switch {
			case err != nil:
				out[i].Error = errorMessage(err)
				if ce := (*codes.Error)(nil); errors.As(err, &ce) {
					out[i].Code = uint32(ce.Code)
				}
			case ring.Node != m.NodeID:
				out[i].Error = fmt.Sprintf("%s answers as node %q", m.ClientAddr, ring.Node)
			default:
				out[i].ring = &ring
				for _, k := range ring.Keys {
					out[i].Keys = append(out[i].Keys, gossipKeyFP{Fingerprint: k.Fingerprint, Primary: k.Primary})
				}
			}
		})
	}
	wg.Wait()
	return out
}

// gossipPrecheck returns why action on the key with fingerprint fp must
// not start, given every node's keys: use needs every node to hold the key
// (a node that does not would drop the gossip of those that switched),
// remove needs no node to send with it (its gossip would be dropped by
// those that removed it). Every node must have answered.
func gossipPrecheck(action wire.GossipKeyAction, fp string, nodes []gossipKeyNode) string {
	var silent, lacking, primary []string
	for _, n := range nodes {
		if n.ring == nil {
			silent = append(silent, fmt.Sprintf("%s (%s)", n.Node, n.Error))
			continue
		}
		i := slices.IndexFunc(n.Keys, func(k gossipKeyFP) bool { return k.Fingerprint == fp })
		if i < 0 {
			lacking = append(lacking, n.Node)
		} else if n.Keys[i].Primary {
			primary = append(primary, n.Node)
		}
	}
	switch {
	case len(silent) > 0:
		return fmt.Sprintf("%s changes nothing unless every node answers; no answer from %s", action, strings.Join(silent, ", "))
	case action == wire.GossipKeysUse && len(lacking) > 0:
		return fmt.Sprintf("use: %s do not hold the key: install it on every node first", strings.Join(lacking, ", "))
	case action == wire.GossipKeysRemove && len(primary) > 0:
		return fmt.Sprintf("remove: %s still send with the key: use another key on every node first", strings.Join(primary, ", "))
	}
	return ""
}

func (out gossipKeyOutput) failure() error {
	switch {
	case out.Refused != "":
		return fmt.Errorf("gossip-key %s refused, nothing changed: %s", out.Action, out.Refused)
	case !out.OK:
		return fmt.Errorf("gossip-key %s did not succeed on every node", out.Action)
	}
	return nil
}

func (out gossipKeyOutput) text(w io.Writer) {
	switch {
	case out.Refused != "":
		fmt.Fprintf(w, "REFUSED: %s\n", out.Refused)
	case out.Key != "":
		fmt.Fprintf(w, "%s %s\n", out.Action, out.Key)
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "NODE\tADDR\tKEYS (* primary)\tERROR")
	for _, n := range out.Nodes {
		var keys []string
		for _, k := range n.Keys {
			if k.Primary {
				keys = append(keys, k.Fingerprint+"*")
			} else {
				keys = append(keys, k.Fingerprint)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", n.Node, dash(n.Addr), dash(strings.Join(keys, " ")), dash(n.Error))
	}
	tw.Flush()
}
