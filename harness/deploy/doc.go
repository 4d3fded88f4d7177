// Package deploy runs the reference clinic (or any image that speaks
// docs/api.md and takes the clinic's flags) in a local Docker container, in
// the shape of a testcontainers-go module: [Run] with functional options
// returns a [*Deployment], partly built together with any error so cleanup
// always runs.
//
// The machine this targets has a Docker engine but no registry, so images are
// built FROM scratch with a static binary ([BuildClinicImage]). Everything is
// published on 127.0.0.1 only: HTTP on a random host port, the media UDP port
// pinned host=container. A deployment also offers the container chaos
// primitives the harness needs (kill, stop/start, pause/unpause, network
// disconnect) through the Docker API, and [Sweep] removes what crashed runs
// left behind, found by the label org.telechaos.managed=true.
//
// The same primitives are chaos faults: [NewContainerFault] builds a
// chaos.Fault of kind [FaultKill], [FaultStop], [FaultPause] or
// [FaultDisconnect] whose windows span the outage (start-up included) and
// which retargets the harness's chaos.HTTPProxy when the HTTP port moves;
// [Deployment.ChaosTarget] is a chaos.Stoppable. Package gate (below this
// one, so that deploy never imports the runner) runs scenarios against a
// deployment: the release gate for pipelines and `telechaos run --deploy`.
//
// Importing the package sets TESTCONTAINERS_RYUK_DISABLED=true (Ryuk is an
// image that cannot be pulled here) and TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1
// (otherwise testcontainers may resolve the host to the default gateway,
// which must never receive traffic).
package deploy
