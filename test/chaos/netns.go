package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// Network gives each node an address and, with namespaces, cuts links
// between them.
type Network struct {
	// Namespaces is true when each node has its own network namespace.
	Namespaces bool
	prefix     string // names of the run's namespaces and links
	subnet     string // "10.199.N." or "127.0.N."
	nodes      int

	mu  sync.Mutex
	cut map[[2]int]bool // links currently blackholed (i<j)
}

// run runs a command and returns its error with the output.
func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// NewNetwork sets up addresses for n nodes. With namespaces it creates
// the hub namespace with a bridge, a namespace per node with a veth into
// the bridge, and a veth from the host into the bridge for the clients.
// id tells runs apart (1-250).
func NewNetwork(n, id int, namespaces bool) (*Network, error) {
	nw := &Network{Namespaces: namespaces, nodes: n, cut: map[[2]int]bool{}, prefix: fmt.Sprintf("fgc%d", id)}
	if !namespaces {
		nw.subnet = fmt.Sprintf("127.0.%d.", id)
		return nw, nil
	}
	nw.subnet = fmt.Sprintf("10.199.%d.", id)
	nw.Close() // leftovers of an earlier run with this id
	hub := nw.prefix + "hub"
	steps := [][]string{
		{"ip", "netns", "add", hub},
		{"ip", "-n", hub, "link", "add", "br0", "type", "bridge"},
		{"ip", "-n", hub, "link", "set", "br0", "up"},
		{"ip", "link", "add", nw.prefix + "h", "type", "veth", "peer", "name", "host", "netns", hub},
		{"ip", "-n", hub, "link", "set", "host", "master", "br0", "up"},
		{"ip", "addr", "add", nw.subnet + "254/24", "dev", nw.prefix + "h"},
		{"ip", "link", "set", nw.prefix + "h", "up"},
	}
	for i := range n {
		ns := nw.ns(i)
		port := fmt.Sprintf("n%d", i)
		steps = append(steps,
			[]string{"ip", "netns", "add", ns},
			[]string{"ip", "-n", ns, "link", "set", "lo", "up"},
			[]string{"ip", "-n", hub, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns},
			[]string{"ip", "-n", hub, "link", "set", port, "master", "br0", "up"},
			[]string{"ip", "-n", ns, "addr", "add", nw.IP(i) + "/24", "dev", "eth0"},
			[]string{"ip", "-n", ns, "link", "set", "eth0", "up"},
		)
	}
	for _, s := range steps {
		if err := run(s[0], s[1:]...); err != nil {
			nw.Close()
			return nil, err
		}
	}
	return nw, nil
}

func (nw *Network) ns(i int) string { return fmt.Sprintf("%sn%d", nw.prefix, i) }

// HostIP is the host's address in the network (the clients', and the
// webhook receiver's).
func (nw *Network) HostIP() string { return nw.subnet + "254" }

// IP is node i's address.
func (nw *Network) IP(i int) string { return fmt.Sprintf("%s%d", nw.subnet, i+1) }

// Command returns a command that runs in node i's network.
func (nw *Network) Command(i int, name string, args ...string) *exec.Cmd {
	if !nw.Namespaces {
		return exec.Command(name, args...)
	}
	// ip netns exec execs the command: the PID is the command's.
	return exec.Command("ip", append([]string{"netns", "exec", nw.ns(i), name}, args...)...)
}

// Partition cuts every link between the groups (nodes in no group keep
// all their links). Links already cut stay cut.
func (nw *Network) Partition(groups ...[]int) error {
	for gi, g := range groups {
		for _, h := range groups[gi+1:] {
			for _, a := range g {
				for _, b := range h {
					if err := nw.Cut(a, b); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// Cut drops all packets between nodes a and b, both ways.
func (nw *Network) Cut(a, b int) error {
	if !nw.Namespaces {
		return fmt.Errorf("partitions need network namespaces")
	}
	if a > b {
		a, b = b, a
	}
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if nw.cut[[2]int{a, b}] {
		return nil
	}
	if err := run("ip", "-n", nw.ns(a), "route", "add", "blackhole", nw.IP(b)+"/32"); err != nil {
		return err
	}
	if err := run("ip", "-n", nw.ns(b), "route", "add", "blackhole", nw.IP(a)+"/32"); err != nil {
		return err
	}
	nw.cut[[2]int{a, b}] = true
	return nil
}

// Heal restores every link.
func (nw *Network) Heal() error {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	var first error
	for l := range nw.cut {
		for _, p := range [][2]int{{l[0], l[1]}, {l[1], l[0]}} {
			if err := run("ip", "-n", nw.ns(p[0]), "route", "del", "blackhole", nw.IP(p[1])+"/32"); err != nil && first == nil {
				first = err
			}
		}
		delete(nw.cut, l)
	}
	return first
}

// Close deletes the namespaces and links (errors ignored: some may not
// exist).
func (nw *Network) Close() {
	if !nw.Namespaces {
		return
	}
	for i := range nw.nodes {
		exec.Command("ip", "netns", "del", nw.ns(i)).Run()
	}
	exec.Command("ip", "link", "del", nw.prefix+"h").Run()
	exec.Command("ip", "netns", "del", nw.prefix+"hub").Run()
}

// CleanStale deletes the namespaces and links of earlier runs that were
// killed before they could clean up: a run's group (fgc<id>...) is stale
// when none of its node namespaces holds a process.
func CleanStale() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	groups := map[string]bool{} // prefix -> has a process
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		if !strings.HasPrefix(name, "fgc") || strings.HasPrefix(name, "fgcprobe") {
			continue
		}
		var prefix string
		switch {
		case strings.HasSuffix(name, "hub"):
			prefix = strings.TrimSuffix(name, "hub")
		case strings.LastIndex(name, "n") > 3:
			prefix = name[:strings.LastIndex(name, "n")]
		default:
			continue
		}
		pids, _ := exec.Command("ip", "netns", "pids", name).Output()
		groups[prefix] = groups[prefix] || len(strings.TrimSpace(string(pids))) > 0
	}
	for prefix, busy := range groups {
		if busy {
			continue
		}
		out, _ := exec.Command("ip", "netns", "list").Output()
		for _, line := range strings.Split(string(out), "\n") {
			name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
			if strings.HasPrefix(name, prefix) && (strings.TrimPrefix(name, prefix) == "hub" || strings.HasPrefix(strings.TrimPrefix(name, prefix), "n")) {
				exec.Command("ip", "netns", "del", name).Run()
			}
		}
		exec.Command("ip", "link", "del", prefix+"h").Run()
	}
}

// NamespacesWork reports whether this process may create network
// namespaces (root with iproute2), and why not.
func NamespacesWork() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("not root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("iproute2 (ip) not found")
	}
	name := fmt.Sprintf("fgcprobe%d", os.Getpid())
	if err := run("ip", "netns", "add", name); err != nil {
		return err
	}
	return run("ip", "netns", "del", name)
}
