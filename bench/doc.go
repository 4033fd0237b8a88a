// Package bench holds frontdoor's load benchmark: the bench/run script, the
// upstream and login-load tools it drives, and the Go benchmark of this
// machine's RSA-2048 signing rate that the login throughput is compared to.
// See bench/README.md.
package bench
