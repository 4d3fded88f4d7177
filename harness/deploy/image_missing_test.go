package deploy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/telechaos/telechaos/internal/dockertest"

	"github.com/moby/moby/client"
)

// A missing image is refused before anything is created, naming the image
// and how to build it; the engine is never asked to pull it.
func TestRunMissingImageNeverPulls(t *testing.T) {
	dockertest.Require(t, DockerAvailable)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const img = "telechaos-test/no-such-image:never-built"
	cli, err := newClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	// Watch the engine's image events: a pull attempt shows up as one.
	evctx, stopEv := context.WithCancel(ctx)
	defer stopEv()
	evs := cli.Events(evctx, client.EventsListOptions{})
	before := countManaged(t, ctx, cli)

	start := time.Now()
	d, err := Run(ctx, img)
	if d != nil {
		_ = d.Terminate(context.Background())
	}
	if !errors.Is(err, ErrImageNotFound) || !strings.Contains(err.Error(), img) || !strings.Contains(err.Error(), "make image") {
		t.Fatalf("err = %v, want ErrImageNotFound naming %s and make image", err, img)
	}
	if d != nil {
		t.Error("a deployment was returned: something was created before the image check")
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("took %v", took)
	}
	// Drain the events the engine delivered meanwhile (the channel is not
	// closed on cancel: stop after a quiet spell).
	for drained := false; !drained; {
		select {
		case ev := <-evs.Messages:
			if ev.Type == "image" && strings.Contains(string(ev.Action), "pull") {
				t.Errorf("the engine was asked to pull: %+v", ev)
			}
		case <-evs.Err:
			drained = true
		case <-time.After(500 * time.Millisecond):
			drained = true
		}
	}
	stopEv()
	if after := countManaged(t, ctx, cli); after != before {
		t.Errorf("managed networks/volumes %d before, %d after", before, after)
	}
}

func countManaged(t *testing.T, ctx context.Context, cli interface {
	NetworkList(context.Context, client.NetworkListOptions) (client.NetworkListResult, error)
}) int {
	t.Helper()
	f := client.Filters{}.Add("label", LabelManaged+"=true").Add("label", LabelOwner+"="+ownerID())
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	return len(ns.Items)
}
