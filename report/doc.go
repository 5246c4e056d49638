// Package report renders probe results for people (text, ladder diagrams,
// the table of the 11 states a run of walks covered, script results,
// scan tables), for machines (JSON lines, JUnit, pcapng, nmap's XML and
// grepable formats) and for browsers (one self-contained HTML page). It
// only formats: every value it prints was decided by the probe packages
// (walk, conform, script, firewall, scan, send).
package report
