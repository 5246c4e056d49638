// Package report renders probe results for people (text, ladder diagrams)
// and machines (JSON lines, JUnit, pcapng). It only formats: every value it
// prints was decided by package probe.
package report
