package reports

import (
	"fmt"
	"os"
)

// StepSummaryEnv names the file GitHub Actions renders as the job summary
// (https://docs.github.com/actions/using-workflows/workflow-commands-for-github-actions#adding-a-job-summary).
const StepSummaryEnv = "GITHUB_STEP_SUMMARY"

// AppendStepSummary appends summary.md's content for s to the file at path
// (created if missing), as GitHub expects of $GITHUB_STEP_SUMMARY: other
// steps' summaries in the same file are kept. An empty path does nothing.
// The caller treats an error as a warning: the report itself is written.
func AppendStepSummary(path string, s *Summary) error {
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("%s=%s: %w", StepSummaryEnv, path, err)
	}
	_, werr := f.WriteString(Markdown(s) + "\n")
	cerr := f.Close()
	if werr != nil {
		return fmt.Errorf("%s=%s: write: %w", StepSummaryEnv, path, werr)
	}
	if cerr != nil {
		return fmt.Errorf("%s=%s: %w", StepSummaryEnv, path, cerr)
	}
	return nil
}
