// Package chaos is followgraph's fault-injection harness: it runs a real
// cluster of followd processes, drives a recorded mixed workload through
// the Go client while it injects faults from a seeded schedule (SIGKILL,
// SIGSTOP, network partitions, lost data directories, rolling restarts),
// and then checks the history: linearizability of every user's following
// set (porcupine, partitioned per user), no acknowledged write lost, and
// convergence of both sides of every edge (followctl verify).
//
// Partitions need a network per node: with Network.Namespaces each node
// runs in its own network namespace, joined by a bridge that lives in a
// hub namespace (so the host's firewall, which may drop bridged traffic,
// is never involved), and a partition is a blackhole route in the
// namespaces on either side. Without namespaces the nodes share loopback
// and partition faults are left out of the schedule.
//
// The suite runs from `make chaos` and `make soak` (test files with the
// chaos build tag); docs/RELIABILITY.md has the faults and the results.
package chaos
