// Package models holds telechaos' pure domain logic: the domain types, the
// ownership ledger that says who may see what, the patient behaviour model and
// the watermark codec that makes every media frame say whose it is.
//
// It does no I/O and imports nothing of ours. The clinic (the system under test)
// never imports it: an oracle that shares the target's code shares its bugs.
package models
