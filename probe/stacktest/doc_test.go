// Package stacktest holds the test that runs the whole suite, walks,
// conformance checks and conformance scripts, against every TCP stack the
// lab can run (package lab's Stacks: the Linux kernel and gVisor's
// netstack). A verdict of tcpwalk's is true only if it holds on every stack
// that follows the RFC: a check that passes on Linux and fails on a correct
// netstack is a defect of the check, not of netstack.
package stacktest_test
