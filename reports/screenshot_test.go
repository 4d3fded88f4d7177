package reports

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestScreenshotHeadless opens index.html in Debian's chromium, headless and
// offline, and checks a PNG came out. Set TELECHAOS_SCREENSHOT_DIR to keep
// the report and the screenshot for a human to look at.
func TestScreenshotHeadless(t *testing.T) {
	if testing.Short() {
		t.Skip("short: no browser")
	}
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium not installed under CI=true (scripts/install-prom.sh installs it)")
		}
		t.Skip("chromium not installed (apt-get install -y chromium); skipped outside CI")
	}
	dir := t.TempDir()
	if keep := os.Getenv("TELECHAOS_SCREENSHOT_DIR"); keep != "" {
		dir = keep
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := Render(dir, richSample()); err != nil {
		t.Fatal(err)
	}
	page, _ := filepath.Abs(filepath.Join(dir, HTMLFile))
	png := filepath.Join(dir, "screenshot.png")
	os.Remove(png)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-dev-shm-usage", "--hide-scrollbars",
		"--user-data-dir="+filepath.Join(t.TempDir(), "profile"),
		"--screenshot="+png, "--window-size=1280,2400", "file://"+page)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	b, err := os.ReadFile(png)
	if err != nil {
		t.Fatalf("no screenshot written: %v\n%s", err, out)
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) || len(b) < 20_000 {
		t.Errorf("screenshot is not a plausible PNG (%d bytes)", len(b))
	}
	t.Logf("screenshot %s (%d bytes)", png, len(b))
}
