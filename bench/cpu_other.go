//go:build !unix

package bench

// selfCPUSeconds is 0 where getrusage does not exist.
func selfCPUSeconds() float64 { return 0 }
