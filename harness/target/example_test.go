package target_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/telechaos/telechaos/harness/target"
)

// A driver of your own registers its scheme once (in an init function, with
// MustRegister); every run, repro and property then opens "lab://..." as it
// opens "embedded" or a URL. This one reaches its lab's system over the
// HTTP driver; a Control would let the harness crash and restart it.
func ExampleRegister() {
	lab := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer lab.Close()
	err := target.Register("example-lab", target.OpenerFunc(func(ctx context.Context, ref string, opts target.Options) (*target.Opened, error) {
		bench := strings.TrimPrefix(ref, "example-lab://")
		if bench == "" {
			return nil, fmt.Errorf("%w: %q names no bench", target.ErrBadRef, ref)
		}
		// Look the bench up in your lab; here it is the test server.
		return target.Open(ctx, lab.URL, opts)
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	op, err := target.Open(context.Background(), "example-lab://bench-3", target.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer op.Close()
	fmt.Println("ref:", op.Ref, "healthy:", op.Target.Health(context.Background()) == nil, "control:", op.Control != nil)

	_, err = target.Open(context.Background(), "gopher://bench-3", target.Options{})
	fmt.Println(err != nil)
	// Output:
	// ref: example-lab://bench-3 healthy: true control: false
	// true
}
