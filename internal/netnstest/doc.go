// Package netnstest runs the harness against a clinic on another network:
// the clinic binary in a network namespace the test creates, joined to the
// host by a veth pair with addresses the test assigns, and the same with
// direct UDP blocked inside the namespace so every call goes through a TURN
// relay (pion/turn, in-process). The tests need root and Linux; they skip
// elsewhere, and fail when CI=true.
package netnstest
