package deploy_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/telechaos/telechaos/harness/deploy"
)

// A release gate: build the clinic image, run it, kill it mid-run and bring
// it back on the same data. (Not run by go test: it needs Docker and builds
// an image.)
func Example() {
	ctx := context.Background()
	if err := deploy.DockerAvailable(ctx); err != nil {
		log.Fatal(err)
	}
	image, err := deploy.BuildClinicImage(ctx, ".", "telechaos/clinic:dev")
	if err != nil {
		log.Fatal(err)
	}
	d, err := deploy.Run(ctx, image, deploy.WithBugs("list-scope:0.5"), deploy.WithSeed(42))
	defer func() { _ = d.Terminate(context.Background()) }() // also after a failed Run
	if err != nil {
		log.Fatal(err)
	}
	resp, err := http.Get(d.URL() + "/healthz")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println("media on udp", d.UDPPort())

	if err := d.Kill(ctx); err != nil {
		log.Fatal(err)
	}
	if err := d.Start(ctx); err != nil { // waits for /healthz again
		log.Fatal(err)
	}
	fmt.Println("back at", d.URL()) // the HTTP port may have changed
}

// Sweep at start-up removes what crashed runs left; runs still going keep
// their containers.
func ExampleSweep() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := deploy.Sweep(ctx)
	if err != nil {
		log.Printf("sweep: %v", err)
	}
	log.Printf("removed %d leftovers", n)
}
