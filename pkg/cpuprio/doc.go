// Package cpuprio lowers the CPU priority of the calling process, for work that should use only
// CPU time nothing else wants: the auth service's password-hash workers, and the load generators
// of the benchmarks, which share the machine with what they measure.
package cpuprio
