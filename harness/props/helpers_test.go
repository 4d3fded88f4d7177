package props

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/telechaos/telechaos/harness/driver"
)

// chosen are the flags set on the command line, noted before any test sets
// one itself.
var chosen = map[string]bool{}

func TestMain(m *testing.M) {
	flag.Parse()
	flag.Visit(func(f *flag.Flag) { chosen[f.Name] = true })
	goleak.VerifyTestMain(m)
}

// userSet reports whether the person running go test chose a rapid flag
// (command line or RAPID_* environment variable): then it is theirs.
func userSet(name string) bool {
	env := "RAPID_" + strings.ToUpper(strings.TrimPrefix(name, "rapid."))
	_, inEnv := os.LookupEnv(env)
	return chosen[name] || inEnv
}

// withRapidFlags sets rapid's flags for one test and restores them after:
// defaults only where the user did not choose, force always. Tests in this
// package do not run in parallel, so the global flags are theirs meanwhile.
func withRapidFlags(t *testing.T, defaults, force map[string]string) {
	t.Helper()
	apply := func(name, v string) {
		f := flag.Lookup(name)
		if f == nil {
			t.Fatalf("no flag %s", name)
		}
		old := f.Value.String()
		if err := flag.Set(name, v); err != nil {
			t.Fatalf("set %s: %v", name, err)
		}
		t.Cleanup(func() { _ = flag.Set(name, old) })
	}
	for k, v := range defaults {
		if !userSet(k) {
			apply(k, v)
		}
	}
	for k, v := range force {
		apply(k, v)
	}
}

// captureTB is a rapid.TB for a check that is EXPECTED to fail: it records
// the failure instead of failing the test. Its Name gives rapid's fail-file
// path; the checks run with fail files off, so nothing is left behind.
type captureTB struct {
	name   string
	mu     sync.Mutex
	failed bool
	errs   []string
	logs   []string
}

func (c *captureTB) Helper()      {}
func (c *captureTB) Name() string { return c.name }
func (c *captureTB) Logf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.logs) < 400 {
		c.logs = append(c.logs, fmt.Sprintf(format, args...))
	}
}
func (c *captureTB) Log(args ...any)                  { c.Logf("%s", fmt.Sprint(args...)) }
func (c *captureTB) Skipf(format string, args ...any) { c.Logf("skip: "+format, args...) }
func (c *captureTB) Skip(args ...any)                 { c.Log(args...) }
func (c *captureTB) SkipNow()                         {}
func (c *captureTB) Errorf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failed = true
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}
func (c *captureTB) Error(args ...any)                 { c.Errorf("%s", fmt.Sprint(args...)) }
func (c *captureTB) Fatalf(format string, args ...any) { c.Errorf(format, args...) }
func (c *captureTB) Fatal(args ...any)                 { c.Error(args...) }
func (c *captureTB) FailNow()                          { c.Fail() }
func (c *captureTB) Fail() {
	c.mu.Lock()
	c.failed = true
	c.mu.Unlock()
}
func (c *captureTB) Failed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed
}

var (
	mediaOnce sync.Once
	mediaF    *driver.MediaFactory
	mediaErr  error
)

// media is one WebRTC client factory for the package's checks.
func media(t *testing.T) *driver.MediaFactory {
	t.Helper()
	mediaOnce.Do(func() { mediaF, mediaErr = driver.NewMediaFactory(driver.MediaOptions{}) })
	if mediaErr != nil {
		t.Fatal(mediaErr)
	}
	return mediaF
}
