// Package bench is telechaos' performance suite behind `telechaos bench` and
// `make bench`: the loopback UDP floor, the media scale search (concurrent
// consultations with two-way media, loss, switch p95, setup rate), media-free
// and mixed user scale with harness memory per user, client CPU per operation
// side by side with k6, vegeta and wrk against the same clinic process (each
// pinned to its own core), the cost of the oracle and metrics, and the time
// to detect switch-reuse.
//
// Every figure is measured here, in this run; a figure that could not be
// measured is null with the reason in Report.Notes, never estimated. Every
// load loop is bounded in count and time and talks only to 127.0.0.1.
package bench
